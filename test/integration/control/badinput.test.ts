/** Bad input gets a precise 4xx with a message, and nothing changes. Real API, conductor and agents. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RequestContext } from '../../../src/bus/context.js';
import { Transport } from '../../../src/bus/transport.js';
import { ConductorRPCAPI } from '../../../src/conductor/rpcapi.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { sleep } from '../../../src/common/sleep.js';
import { admin, api, startMigration, token, waitKnown, waitMigration } from '../../helpers/ferry.js';

const c1 = engine('compute1');
const name = uniqueName('bad-input');
let startedAt = '';

async function migrationsOf(container: string): Promise<Migration[]> {
  return (await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${container}`)).body.migrations;
}

function expectError(r: { status: number; body: unknown; headers: Headers }, status: number, message: RegExp) {
  expect(r.status).toBe(status);
  const e = (r.body as { error: { code: number; title: string; message: string } }).error;
  expect(e.code).toBe(status);
  expect(typeof e.title).toBe('string');
  expect(e.message).toMatch(message);
  expect(r.headers.get('x-openstack-request-id')).toMatch(/^req-[0-9a-f-]{36}$/);
}

beforeAll(async () => {
  const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name });
  await ct.start();
  startedAt = (await ct.inspect()).State.StartedAt;
  await waitKnown(name, 'compute1');
});

afterAll(async () => {
  // Nothing changed: the container still runs where it was, never restarted, and no migration was recorded.
  const st = (await c1.getContainer(name).inspect()).State;
  expect(st.Running).toBe(true);
  expect(st.StartedAt).toBe(startedAt);
  await removeQuietly(c1, name);
});

describe('bad input', () => {
  it('unknown container -> 404', async () => {
    expectError(await admin('POST', '/v1/containers/no-such-container-here/migrate', {}), 404, /no-such-container-here.*not found/);
  });

  it('unknown target host -> 404', async () => {
    expectError(await admin('POST', `/v1/containers/${name}/migrate`, { host: 'compute9' }), 404, /compute9/);
  });

  it('target = source -> 400 saying what to change', async () => {
    expectError(await admin('POST', `/v1/containers/${name}/migrate`, { host: 'compute1' }), 400, /already runs on "compute1"/);
  });

  it('malformed JSON -> 400', async () => {
    const r = await api('POST', `/v1/containers/${name}/migrate`, { token: await token('admin'), rawBody: '{"host": ' });
    expectError(r, 400, /JSON/i);
  });

  it('wrong field types and unknown fields -> 400', async () => {
    expectError(await admin('POST', `/v1/containers/${name}/migrate`, { host: 5 }), 400, /host/);
    expectError(await admin('POST', `/v1/containers/${name}/migrate`, { hots: 'compute2' }), 400, /hots/);
  });

  it('unknown migration id -> 404, for GET and DELETE', async () => {
    expectError(await admin('GET', '/v1/migrations/5b0f4f7e-9a38-4f43-a3a4-000000000000'), 404, /could not be found/);
    expectError(await admin('DELETE', '/v1/migrations/5b0f4f7e-9a38-4f43-a3a4-000000000000'), 404, /could not be found/);
  });

  it('bad filter -> 400', async () => {
    expectError(await admin('GET', '/v1/migrations?status=exploded'), 400, /status/);
  });

  it('a target host whose heartbeats stopped is down -> 409', async () => {
    // A host that reported once and then fell silent, as a crashed ferry-compute would.
    const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
    await transport.connect();
    try {
      const conductor = new ConductorRPCAPI(transport);
      await conductor.reportState(RequestContext.admin(), 'ghost-host', {
        docker_version: '20.10.24',
        api_version: '1.41',
        criu_version: '4.2.1',
        criu_ok: true,
        architecture: 'x86_64',
        migration_address: '127.0.0.1:1',
        containers: [],
      });
    } finally {
      await transport.close();
    }
    const hosts = async () => (await admin<{ hosts: { name: string; state: string }[] }>('GET', '/v1/hosts')).body.hosts;
    await sleep(500);
    expect((await hosts()).find((h) => h.name === 'ghost-host')?.state).toBe('up');
    const deadline = Date.now() + 60_000;
    while ((await hosts()).find((h) => h.name === 'ghost-host')?.state !== 'down' && Date.now() < deadline) await sleep(1000);
    expect((await hosts()).find((h) => h.name === 'ghost-host')?.state).toBe('down');
    expectError(await admin('POST', `/v1/containers/${name}/migrate`, { host: 'ghost-host' }), 409, /ghost-host.*down/);
  });

  it('none of the above recorded a migration', async () => {
    expect(await migrationsOf(name)).toEqual([]);
  });
});

describe('abort of a finished migration', () => {
  const other = uniqueName('done');
  afterAll(async () => {
    await removeQuietly(c1, other);
    await removeQuietly(engine('compute2'), other);
  });

  it('-> 409, and the record stays as it was', async () => {
    const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name: other });
    await ct.start();
    await waitKnown(other, 'compute1');
    const m = await waitMigration((await startMigration(other)).uuid);
    expect(m.status).toBe('completed');
    expectError(await admin('DELETE', `/v1/migrations/${m.uuid}`), 409, /already completed/);
    const again = (await admin<{ migration: Migration }>('GET', `/v1/migrations/${m.uuid}`)).body.migration;
    expect(again.status).toBe('completed');
    expect(again.abort_requested).toBe(false);
  });

  it('migrating a container that is already migrating -> 409', async () => {
    // `other` now runs on compute2; start a move back and ask again at once.
    await waitKnown(other, 'compute2');
    const m = await startMigration(other, 'compute1');
    expectError(await admin('POST', `/v1/containers/${other}/migrate`, { host: 'compute1' }), 409, /already being migrated/);
    expect((await waitMigration(m.uuid)).status).toBe('completed');
  });
});
