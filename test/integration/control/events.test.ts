/**
 * Live container state on the real development cloud: each ferry-compute follows its Docker
 * engine's event stream and tells the conductor at once, so a container started with
 * `docker run` can be migrated straight away and one removed behind Ferry's back leaves the
 * listing within a second; when the event stream (engine restarted) or the bus comes back,
 * the agent sends a full inventory straight away.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RequestContext } from '../../../src/common/context.js';
import { Transport } from '../../../src/bus/transport.js';
import { ConductorRPCAPI } from '../../../src/conductor/rpcapi.js';
import { startEngine, stopEngine } from '../../../src/devcloud/hosts.js';
import { DOCKER_CLI } from '../../../src/devcloud/layout.js';
import { rabbitctl } from '../../../src/devcloud/rabbit.js';
import type { ComputeHost, Container } from '../../../src/objects/host.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud, host } from '../../helpers/cloud.js';
import { sleep } from '../../../src/common/sleep.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { ferry, waitMigration } from '../../helpers/ferry.js';

jest.setTimeout(600_000);

const names: string[] = [];

/** The docker CLI against one dev-cloud host's engine (as a user would type it). */
function docker(hostName: string, args: string[]): string {
  const r = spawnSync(DOCKER_CLI, ['-H', host(hostName).docker_host, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} on ${hostName}: ${r.stderr}`);
  return r.stdout.trim();
}

async function containers(): Promise<Container[]> {
  const r = await ferry().request<{ containers: Container[] }>('GET', '/v1/containers');
  expect(r.status).toBe(200);
  return r.body.containers;
}

/** Polls the listing every 20 ms until `cond` holds; returns how long it took (ms), or throws after `ms`. */
async function within(ms: number, what: string, cond: (list: Container[]) => boolean): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (cond(await containers())) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not seen within ${ms} ms`);
    await sleep(20);
  }
}

/** Waits (up to 3 s: the agent logs once the broker confirmed the cast) until the agent logged a full inventory for `reason` since `since`. */
async function inventoryLogged(hostName: string, since: number, reason: string): Promise<string[]> {
  for (let i = 0; i < 60 && !inventoriesSent(hostName, since).includes(reason); i++) await sleep(50);
  return inventoriesSent(hostName, since);
}

/** `full inventory sent` lines of a compute agent's log since `since` (epoch ms), with their reasons. */
function inventoriesSent(hostName: string, since: number): string[] {
  const file = path.join(cloud().state_dir, 'log', `ferry-compute-${hostName}.log`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"full inventory sent"'))
    .map((l) => JSON.parse(l) as { time: number; reason: string })
    .filter((l) => l.time >= since)
    .map((l) => l.reason);
}

describe('live container state from the engines’ event streams', () => {
  const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
  const conductor = new ConductorRPCAPI(transport);

  /** A container the conductor is told of (as if compute2's engine reported it) that no engine has. */
  async function plantGhost(): Promise<string> {
    const name = uniqueName('ghost');
    await conductor.containerEvent(RequestContext.admin(), 'compute2', {
      kind: 'start',
      id: randomBytes(32).toString('hex'),
      name,
      image: 'ferry/counter:latest',
      status: 'running',
      at: new Date().toISOString(),
    });
    await within(1000, `the planted ${name}`, (l) => l.some((c) => c.name === name));
    return name;
  }

  beforeAll(async () => {
    await transport.connect();
    await ferry().token();
  });

  afterAll(async () => {
    await transport.close();
    for (const n of names) for (const h of ['compute1', 'compute2']) await removeQuietly(engine(h), n);
  });

  it('a container created, started, renamed, stopped and removed behind Ferry’s back is listed as it is within a second, each time', async () => {
    const name = uniqueName('behind');
    const renamed = `${name}-renamed`;
    names.push(name, renamed);
    // The host list's count is the live one: it agrees with the listing (other tests may add containers meanwhile).
    const countAgrees = async (): Promise<boolean> => {
      const hosts = (await ferry().request<{ hosts: ComputeHost[] }>('GET', '/v1/hosts')).body.hosts;
      const listed = (await containers()).filter((c) => c.host === 'compute1').length;
      return hosts.find((h) => h.name === 'compute1')!.containers === listed;
    };
    const agree = async () => {
      for (let i = 0; i < 20 && !(await countAgrees()); i++) await sleep(50);
      expect(await countAgrees()).toBe(true);
    };
    docker('compute1', ['create', '--name', name, '-e', 'COUNTER_INTERVAL=0.2', 'ferry/counter:latest']);
    await within(1000, 'created', (l) => l.some((c) => c.name === name && c.host === 'compute1' && c.status === 'created'));
    await agree();
    docker('compute1', ['start', name]);
    await within(1000, 'started', (l) => l.some((c) => c.name === name && c.status === 'running'));
    docker('compute1', ['rename', name, renamed]);
    await within(1000, 'renamed', (l) => l.some((c) => c.name === renamed) && !l.some((c) => c.name === name));
    docker('compute1', ['stop', '-t', '1', renamed]);
    await within(1000, 'stopped', (l) => l.some((c) => c.name === renamed && c.status === 'exited'));
    docker('compute1', ['rm', '-f', renamed]);
    const gone = await within(1000, 'removed', (l) => !l.some((c) => c.name === renamed));
    expect(gone).toBeLessThan(1000);
    await agree();
  });

  it('a running container removed behind Ferry’s back (docker rm -f) leaves the listing within a second', async () => {
    const name = uniqueName('rmf');
    names.push(name);
    docker('compute1', ['run', '-d', '--name', name, 'ferry/counter:latest']);
    await within(1000, 'running', (l) => l.some((c) => c.name === name && c.status === 'running'));
    const t0 = Date.now();
    docker('compute1', ['rm', '-f', name]);
    await within(1000, 'removed', (l) => !l.some((c) => c.name === name));
    expect(Date.now() - t0).toBeLessThan(1500); // docker rm itself included
    const r = await ferry().request<{ error: { message: string } }>('POST', `/v1/containers/${name}/migrate`, { body: {} });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(/was not found on any compute host \(asked compute1, compute2 just now\)/);
  });

  it('run, then migrate at once: accepted within a second of `docker run`, no 409, no 404 — 20 times in a row', async () => {
    const answers: number[] = [];
    for (let i = 0; i < 20; i++) {
      const name = uniqueName(`runmig${i}`);
      names.push(name);
      docker('compute1', ['run', '-d', '--name', name, '-e', 'COUNTER_INTERVAL=0.2', 'ferry/counter:latest']);
      const t0 = Date.now();
      const r = await ferry().request<{ migration: Migration; error?: { message: string } }>('POST', `/v1/containers/${name}/migrate`, {
        body: { host: 'compute2' },
      });
      answers.push(Date.now() - t0);
      expect([i, r.status, r.body.error?.message ?? null]).toEqual([i, 202, null]);
      expect(Date.now() - t0).toBeLessThan(1000);
      const m = await waitMigration(r.body.migration.uuid, undefined, 120_000);
      expect([i, m.status, m.error]).toEqual([i, 'completed', null]);
      expect(docker('compute2', ['inspect', '-f', '{{.State.Running}}', name])).toBe('true');
      docker('compute2', ['rm', '-f', name]);
    }
    expect(answers).toHaveLength(20);
  });

  it('an event stream cut (compute2’s engine restarted) is followed by a full inventory straight away', async () => {
    const t0 = Date.now();
    await stopEngine('compute2');
    // While the engine is down nothing can repair the conductor's view: not the heartbeat, not events.
    const ghost = await plantGhost();
    await sleep(1500);
    expect((await containers()).some((c) => c.name === ghost)).toBe(true);
    await startEngine('compute2', () => undefined);
    const up = Date.now();
    await within(3000, 'the full inventory after the reconnect', (l) => !l.some((c) => c.name === ghost));
    expect(await inventoryLogged('compute2', t0, 'event stream reconnected')).toContain('event stream reconnected');
    // The stream follows again: a new container shows up at once.
    const name = uniqueName('after-restart');
    names.push(name);
    docker('compute2', ['run', '-d', '--name', name, 'ferry/counter:latest']);
    await within(1000, 'a container started after the restart', (l) => l.some((c) => c.name === name && c.host === 'compute2' && c.status === 'running'));
    docker('compute2', ['rm', '-f', name]);
    expect(Date.now() - up).toBeLessThan(30_000);
  });

  it('a bus reconnect (compute2’s AMQP connection closed by the broker) is followed by a full inventory straight away', async () => {
    const t0 = Date.now();
    const ghost = await plantGhost();
    const list = await rabbitctl(['list_connections', 'pid', 'client_properties', '--no-table-headers', '--quiet']);
    const line = list.stdout.split('\n').find((l) => l.includes('"connection_name","ferry-compute:compute2"'));
    expect(line).toBeDefined();
    await rabbitctl(['close_connection', line!.split('\t')[0], 'events test: bus reconnect']);
    await within(3000, 'the full inventory after the bus reconnect', (l) => !l.some((c) => c.name === ghost));
    expect(await inventoryLogged('compute2', t0, 'bus reconnected')).toContain('bus reconnected');
  });
});
