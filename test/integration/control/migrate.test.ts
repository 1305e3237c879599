/**
 * End to end through the real services: a Keystone token, ferry-api, the conductor over
 * RabbitMQ, the compute agents, Docker and CRIU. The counter and Redis migrate; the state
 * survives; the records carry timings and bytes; notifications announce it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { NotificationListener, type Notification } from '../../../src/bus/listener.js';
import { Transport } from '../../../src/bus/transport.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, lastNumber, logs, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { sleep } from '../../../src/common/sleep.js';
import { admin, startMigration, waitKnown, waitMigration } from '../../helpers/ferry.js';

const c1 = engine('compute1');
const c2 = engine('compute2');

function expectTimed(m: Migration) {
  expect(m.status).toBe('completed');
  for (const k of ['freeze_ms', 'checkpoint_ms', 'transfer_ms', 'restore_ms', 'total_ms'] as const) {
    expect(typeof m[k]).toBe('number');
    expect(m[k] as number).toBeGreaterThan(0);
  }
  expect(m.memory_bytes as number).toBeGreaterThan(0);
  expect(m.transferred_bytes as number).toBeGreaterThanOrEqual(m.memory_bytes as number);
  expect(m.progress).toBe(100);
}

describe('live migration through the REST API', () => {
  const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
  const seen: Notification[] = [];
  const listener = new NotificationListener(
    transport,
    { topics: ['notifications'], priorities: ['info', 'error'], pool: `ferry-test-${randomUUID().slice(0, 8)}` },
    async (n) => {
      seen.push(n);
      return 'handled' as const;
    },
  );
  const counter = uniqueName('rest-counter');
  const redis = uniqueName('rest-redis');

  beforeAll(async () => {
    await transport.connect();
    await listener.start();
  });

  afterAll(async () => {
    await listener.stop();
    await transport.close();
    for (const n of [counter, redis]) {
      await removeQuietly(c1, n);
      await removeQuietly(c2, n);
    }
  });

  it('moves the counter: it keeps counting, the record has timings and bytes, notifications announce it', async () => {
    const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name: counter, Env: ['COUNTER_INTERVAL=0.2'] });
    await ct.start();
    await waitKnown(counter, 'compute1');
    await sleep(1000);

    const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${counter}/migrate`, {});
    expect(r.status).toBe(202);
    const m0 = r.body.migration;
    expect(r.headers.get('location')).toBe(`/v1/migrations/${m0.uuid}`);
    expect(m0).toMatchObject({ status: 'accepted', source_host: 'compute1', dest_host: 'compute2', container_name: counter });

    const m = await waitMigration(m0.uuid);
    expectTimed(m);
    const lastOnSource = await lastNumber(c1, ct.id).catch(() => NaN); // the source may already be removed
    const moved = await containerOn(c2, counter);
    expect(moved?.State).toBe('running');
    expect(await containerOn(c1, counter)).toBeNull();
    await sleep(1000);
    const after = (await logs(c2, moved!.Id)).trim().split('\n').map(Number);
    expect(after[0]).toBeGreaterThan(3); // not from 0: it went on
    if (!Number.isNaN(lastOnSource)) expect(after[0]).toBeGreaterThanOrEqual(lastOnSource);
    expect(after[after.length - 1]).toBeGreaterThan(after[0]); // and keeps counting

    // Notifications: start and end for this migration, versioned payload, our publisher.
    const deadline = Date.now() + 10_000;
    const mine = () => seen.filter((n) => (n.payload as Record<string, { uuid?: string }>)['ferry_object.data']?.uuid === m.uuid);
    while (!mine().some((n) => n.eventType === 'container.live_migration.end') && Date.now() < deadline) await sleep(100);
    const events = mine().map((n) => n.eventType);
    expect(events).toEqual(
      expect.arrayContaining([
        'container.live_migration.start',
        'container.live_migration_pre.start',
        'container.live_migration_pre.end',
        'container.live_migration_post_dest.start',
        'container.live_migration_post_dest.end',
        'container.live_migration.end',
      ]),
    );
    const end = mine().find((n) => n.eventType === 'container.live_migration.end')!;
    expect(end.publisherId).toMatch(/^ferry-conductor:/);
    expect(end.priority).toBe('info');
    expect(end.payload).toMatchObject({
      'ferry_object.name': 'ContainerMigrationPayload',
      'ferry_object.namespace': 'ferry',
      'ferry_object.version': '1.0',
      'ferry_object.data': { uuid: m.uuid, status: 'completed', source_host: 'compute1', dest_host: 'compute2' },
    });

    // The list shows it, filtered by container and by status.
    const list = await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${counter}&status=completed`);
    expect(list.status).toBe(200);
    expect(list.body.migrations.map((x) => x.uuid)).toEqual([m.uuid]);
  });

  it('moves Redis with 100,000 keys and a write acknowledged just before', async () => {
    const ct = await c1.createContainer({ Image: 'ferry/redis:latest', name: redis });
    await ct.start();
    await sleep(500);
    expect(await execOut(c1, ct.id, ['redis-cli', 'DEBUG', 'POPULATE', '100000'])).toBe('OK');
    expect(await execOut(c1, ct.id, ['redis-cli', 'SET', 'acked', 'just-before'])).toBe('OK');
    await waitKnown(redis, 'compute1');

    const m0 = await startMigration(redis, 'compute2');
    const m = await waitMigration(m0.uuid);
    expectTimed(m);
    expect(m.memory_bytes as number).toBeGreaterThan(5_000_000);
    const moved = await containerOn(c2, redis);
    expect(moved?.State).toBe('running');
    expect(await execOut(c2, moved!.Id, ['redis-cli', 'DBSIZE'])).toBe('100001');
    expect(await execOut(c2, moved!.Id, ['redis-cli', 'GET', 'acked'])).toBe('just-before');
    expect(await execOut(c2, moved!.Id, ['redis-cli', 'GET', 'key:99999'])).toBe('value:99999');
  });
});
