/**
 * Host maintenance on the development cloud, end to end through ferry-api, the conductor over
 * RabbitMQ, the compute agents, Docker and CRIU:
 *  - a disabled compute2 is never chosen: with only two hosts a migrate without a host is a 409
 *    that says why, and so is an evacuation of compute1; bad input is a clear 4xx;
 *  - compute1 running counters, Redis with a sentinel key, the stream read over one TCP
 *    connection on the fabric, and one stopped container is evacuated with max_parallel 2
 *    through REST: the running ones end on compute2 running with their state, the stopped one
 *    is listed as not moved, never more than 2 migrations are in flight, notifications tell it;
 *  - a smaller set once through `openstack container host evacuate compute1 --wait`.
 * Afterwards both hosts are enabled, this file's containers removed, and any other container the
 * evacuations moved is migrated back to compute1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { NotificationListener, type Notification } from '../../../src/bus/listener.js';
import { Transport } from '../../../src/bus/transport.js';
import { sleep } from '../../../src/common/sleep.js';
import type { Evacuation } from '../../../src/objects/evacuation.js';
import type { ComputeHost } from '../../../src/objects/host.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, logs, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, waitKnown } from '../../helpers/ferry.js';
import { enableHosts, moveBack, setHost } from '../../helpers/hosts.js';
import { openstack } from '../osc/helpers.js';

jest.setTimeout(180_000);

const c1 = engine('compute1');
const c2 = engine('compute2');
const STREAM_IP = '10.250.0.61';
const STREAM_MAC = '02:42:0a:fa:00:3d';

async function lastCount(d: ReturnType<typeof engine>, id: string): Promise<number> {
  const lines = (await logs(d, id)).trim().split('\n');
  return Number(lines[lines.length - 1]);
}

async function hostRecord(name: string): Promise<ComputeHost | undefined> {
  const r = await admin<{ hosts: ComputeHost[] }>('GET', '/v1/hosts');
  return r.body.hosts.find((h) => h.name === name);
}

/** Poll the evacuation to its end; also returns the most migrations it ever had in flight at once. */
async function waitEvacuation(uuid: string, timeoutMs = 120_000): Promise<{ e: Evacuation; peak: number }> {
  const deadline = Date.now() + timeoutMs;
  let peak = 0;
  for (;;) {
    const r = await admin<{ evacuation: Evacuation }>('GET', `/v1/evacuations/${uuid}`);
    expect(r.status).toBe(200);
    const e = r.body.evacuation;
    peak = Math.max(peak, e.counts.migrating);
    if (e.status !== 'running') return { e, peak };
    if (Date.now() > deadline) throw new Error(`evacuation ${uuid} still running after ${timeoutMs} ms: ${JSON.stringify(e.counts)}`);
    await sleep(200);
  }
}

/** Wait until the conductor lists `name` on `host` in `status` (waitKnown waits for running ones only). */
async function waitListed(name: string, host: string, status: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin<{ containers: { name: string; host: string; status: string }[] }>('GET', '/v1/containers');
    if (r.body.containers?.some((c) => c.name === name && c.host === host && c.status === status)) return;
    if (Date.now() > deadline) throw new Error(`the conductor never listed ${name} as ${status} on ${host}`);
    await sleep(300);
  }
}

async function startCounter(name: string) {
  const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name, Env: ['COUNTER_INTERVAL=0.2'] });
  await ct.start();
  return ct.id;
}

async function startRedis(name: string, sentinel: string) {
  const ct = await c1.createContainer({ Image: 'ferry/redis:latest', name });
  await ct.start();
  for (let i = 0; i < 50; i++) {
    if ((await execOut(c1, ct.id, ['redis-cli', 'PING']).catch(() => '')) === 'PONG') break;
    await sleep(100);
  }
  expect(await execOut(c1, ct.id, ['redis-cli', 'DEBUG', 'POPULATE', '20000'])).toBe('OK');
  expect(await execOut(c1, ct.id, ['redis-cli', 'SET', 'sentinel', sentinel])).toBe('OK');
  return ct.id;
}

async function expectCounterWentOn(name: string, before: number) {
  const moved = await containerOn(c2, name);
  expect(moved?.State).toBe('running');
  expect(await containerOn(c1, name)).toBeNull();
  const first = await lastCount(c2, moved!.Id);
  await sleep(600);
  const later = await lastCount(c2, moved!.Id);
  expect(first).toBeGreaterThanOrEqual(before); // from where it was, not from 0
  expect(later).toBeGreaterThan(first); // and it keeps counting
}

async function expectRedisKept(name: string, sentinel: string) {
  const moved = await containerOn(c2, name);
  expect(moved?.State).toBe('running');
  expect(await execOut(c2, moved!.Id, ['redis-cli', 'GET', 'sentinel'])).toBe(sentinel);
  expect(await execOut(c2, moved!.Id, ['redis-cli', 'DBSIZE'])).toBe('20001');
}

describe('host maintenance on the development cloud', () => {
  const tag = uniqueName('evac');
  const names = {
    counters: [`${tag}-counter1`, `${tag}-counter2`, `${tag}-counter3`],
    redis: `${tag}-redis`,
    stream: `${tag}-stream`,
    stopped: `${tag}-stopped`,
    cliCounter: `${tag}-cli-counter`,
    cliRedis: `${tag}-cli-redis`,
  };
  const mine = new Set([...names.counters, names.redis, names.stream, names.stopped, names.cliCounter, names.cliRedis]);
  const sentinel = `kept-${randomUUID()}`;
  const cliSentinel = `kept-${randomUUID()}`;
  /** Other containers the evacuations moved to compute2: brought back afterwards. */
  const foreign = new Set<string>();

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
  let client: ChildProcess | null = null;
  const streamLines: number[] = [];

  beforeAll(async () => {
    await transport.connect();
    await listener.start();
    for (const h of ['compute1', 'compute2']) {
      const r = await setHost(h, 'enabled');
      expect(r.status).toBe(200);
    }
    for (const n of names.counters) await startCounter(n);
    await startRedis(names.redis, sentinel);
    const stream = await c1.createContainer({
      Image: 'ferry/stream:latest',
      name: names.stream,
      Env: ['STREAM_INTERVAL_US=50000'],
      HostConfig: { NetworkMode: cloud().fabric.network },
      NetworkingConfig: { EndpointsConfig: { [cloud().fabric.network]: { IPAMConfig: { IPv4Address: STREAM_IP } } } },
      MacAddress: STREAM_MAC,
    } as Parameters<typeof c1.createContainer>[0]);
    await stream.start();
    const stopped = await c1.createContainer({ Image: 'ferry/counter:latest', name: names.stopped });
    await stopped.start();
    await stopped.stop({ t: 0 });
    for (const n of [...names.counters, names.redis, names.stream]) await waitKnown(n, 'compute1');
    await waitListed(names.stopped, 'compute1', 'exited');
  });

  afterAll(async () => {
    if (client && client.exitCode === null && client.pid) process.kill(client.pid, 'SIGTERM');
    // Both hosts enabled again, even if ferry-api is restarting just now.
    await enableHosts(['compute1', 'compute2']);
    for (const n of mine) {
      await removeQuietly(c1, n);
      await removeQuietly(c2, n);
    }
    // Whatever else the evacuations moved goes back where it was.
    await moveBack(foreign);
    await listener.stop();
    await transport.close();
  });

  it('never chooses a disabled host: a migrate and an evacuation are refused with the reason; bad input is a 4xx', async () => {
    const reason = `maintenance by ${tag}`;
    try {
      const d = await setHost('compute2', 'disabled', reason);
      expect(d.status).toBe(200);
      expect(d.body.host).toMatchObject({ name: 'compute2', status: 'disabled', disabled_reason: reason });
      expect(await hostRecord('compute2')).toMatchObject({ status: 'disabled', disabled_reason: reason });

      const auto = await admin<{ error: { message: string } }>('POST', `/v1/containers/${names.counters[0]}/migrate`, {});
      expect(auto.status).toBe(409);
      expect(auto.body.error.message).toContain(`compute2 is disabled (${reason})`);
      const named = await admin<{ error: { message: string; ferry_code: string } }>('POST', `/v1/containers/${names.counters[0]}/migrate`, {
        host: 'compute2',
      });
      expect(named.status).toBe(409);
      expect(named.body.error.ferry_code).toBe('host_disabled');
      expect(named.body.error.message).toContain(`"compute2" is disabled (${reason})`);
      const evac = await admin<{ error: { message: string } }>('POST', '/v1/hosts/compute1/evacuate', {});
      expect(evac.status).toBe(409);
      expect(evac.body.error.message).toContain(`compute2 is disabled (${reason})`);
    } finally {
      expect((await setHost('compute2', 'enabled')).status).toBe(200);
    }
    expect(await hostRecord('compute2')).toMatchObject({ status: 'enabled', disabled_reason: null });
    // Nothing was started by the refusals.
    const list = await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${names.counters[0]}`);
    expect(list.body.migrations).toEqual([]);

    expect((await admin('PUT', '/v1/hosts/no-such-host', { status: 'disabled' })).status).toBe(404);
    expect((await admin('PUT', '/v1/hosts/compute2', { status: 'off' })).status).toBe(400);
    expect((await admin('POST', '/v1/hosts/no-such-host/evacuate', {})).status).toBe(404);
    const bad = await admin<{ error: { message: string } }>('POST', '/v1/hosts/compute1/evacuate', { max_parallel: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/max_parallel/);
    expect((await admin('POST', '/v1/hosts/compute1/evacuate', { target_host: 'compute1' })).status).toBe(400);
    expect((await admin('GET', `/v1/evacuations/${randomUUID()}`)).status).toBe(404);
  });

  it('evacuates compute1 through REST with max_parallel 2: every running container on compute2 with its state, the stopped one listed', async () => {
    // The stream's client reads over one TCP connection from the tenant side of the fabric
    // (connected again while the stream is not listening yet: a refused nc exits at once).
    let clientExited = false;
    for (let attempt = 0; attempt < 20 && streamLines.length === 0; attempt++) {
      let buf = '';
      clientExited = false;
      const nc = spawn('ip', ['netns', 'exec', cloud().fabric.client_netns, 'busybox', 'nc', STREAM_IP, '9000'], { stdio: ['pipe', 'pipe', 'pipe'] });
      client = nc;
      nc.stdout!.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        for (const p of parts) if (p.trim()) streamLines.push(Number(p.trim()));
      });
      nc.on('exit', () => (clientExited = true));
      for (let i = 0; i < 20 && streamLines.length === 0 && !clientExited; i++) await sleep(100);
      if (streamLines.length === 0 && nc.exitCode === null && nc.pid) process.kill(nc.pid, 'SIGTERM');
      if (streamLines.length === 0) await sleep(300);
    }
    for (let i = 0; i < 100 && streamLines.length < 10; i++) await sleep(100);
    expect(streamLines.length).toBeGreaterThanOrEqual(10);

    const before = new Map<string, number>();
    for (const n of names.counters) before.set(n, await lastCount(c1, (await containerOn(c1, n))!.Id));

    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', { max_parallel: 2 });
    expect(r.status).toBe(202);
    const e0 = r.body.evacuation;
    expect(r.headers.get('location')).toBe(`/v1/evacuations/${e0.uuid}`);
    expect(e0).toMatchObject({ host: 'compute1', max_parallel: 2, status: 'running', host_disabled: true });
    // Disabled first, so that nothing lands on it meanwhile.
    expect(await hostRecord('compute1')).toMatchObject({ status: 'disabled', disabled_reason: `evacuating (evacuation ${e0.uuid})` });

    const { e, peak } = await waitEvacuation(e0.uuid);
    for (const c of e.containers) if (!mine.has(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    const byName = new Map(e.containers.map((c) => [c.container_name, c]));
    // Every container of compute1 is listed, none is left pending or migrating.
    expect(e.counts.pending + e.counts.migrating).toBe(0);
    expect(Object.values(e.counts).reduce((a, b) => a + b, 0)).toBe(e.containers.length);
    for (const n of [...names.counters, names.redis, names.stream]) {
      expect(byName.get(n)).toMatchObject({ status: 'completed', dest_host: 'compute2', reason: null });
      const m = (await admin<{ migration: Migration }>('GET', `/v1/migrations/${byName.get(n)!.migration_uuid}`)).body.migration;
      expect(m).toMatchObject({ status: 'completed', source_host: 'compute1', dest_host: 'compute2' });
    }
    expect(byName.get(names.stopped)).toMatchObject({ status: 'not-moved', migration_uuid: null, container_status: 'exited' });
    expect(byName.get(names.stopped)!.reason).toMatch(/^not running \(exited\), not moved/);
    const allMoved = e.containers.every((c) => c.status === 'completed' || c.status === 'not-moved');
    expect(e.status).toBe(allMoved ? 'completed' : 'incomplete');
    expect(peak).toBeLessThanOrEqual(2);
    expect(await hostRecord('compute1')).toMatchObject({ status: 'disabled' });

    // State intact on compute2.
    for (const n of names.counters) await expectCounterWentOn(n, before.get(n)!);
    await expectRedisKept(names.redis, sentinel);
    expect((await containerOn(c2, names.stream))?.State).toBe('running');
    const atMove = streamLines.length;
    for (let i = 0; i < 100 && streamLines.length < atMove + 20; i++) await sleep(100);
    expect(streamLines.length).toBeGreaterThanOrEqual(atMove + 20);
    expect(clientExited).toBe(false);
    streamLines.forEach((n, i) => expect(n).toBe(i + 1)); // one connection: nothing missing or repeated

    // Notifications: start, then end (or error when another container could not be moved), with the record.
    const deadline = Date.now() + 10_000;
    const ours = () => seen.filter((n) => (n.payload as Record<string, { uuid?: string }>)['ferry_object.data']?.uuid === e0.uuid);
    while (ours().length < 2 && Date.now() < deadline) await sleep(100);
    expect(ours().map((n) => n.eventType)).toEqual(['host.evacuate.start', allMoved ? 'host.evacuate.end' : 'host.evacuate.error']);
    expect(ours()[1].payload).toMatchObject({
      'ferry_object.name': 'HostEvacuationPayload',
      'ferry_object.data': { uuid: e0.uuid, host: 'compute1', status: e.status },
    });
    expect(ours()[0].publisherId).toMatch(/^ferry-conductor:/);

    const listed = await admin<{ evacuations: Evacuation[] }>('GET', '/v1/evacuations?host=compute1');
    expect(listed.body.evacuations[0].uuid).toBe(e0.uuid);
    expect((await setHost('compute1', 'enabled')).status).toBe(200);
  });

  it('evacuates a smaller set through `openstack container host evacuate compute1 --wait`', async () => {
    await startCounter(names.cliCounter);
    await startRedis(names.cliRedis, cliSentinel);
    await waitKnown(names.cliCounter, 'compute1');
    await waitKnown(names.cliRedis, 'compute1');
    const before = await lastCount(c1, (await containerOn(c1, names.cliCounter))!.Id);

    const r = await openstack(['container', 'host', 'evacuate', 'compute1', '--max-parallel', '2', '--wait', '-f', 'json']);
    const e = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const line of r.stderr.split('\n')) {
      const m = /^\[\d+\/\d+\] (\S+)\s+compute1 -> compute2\s+completed/.exec(line);
      if (m && !mine.has(m[1])) foreign.add(m[1]);
    }
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^Evacuating compute1: \d+ containers?, \d+ to move, at most 2 at a time \(evacuation [0-9a-f-]{36}\)$/);
    // One progress line per container: ours moved, the stopped one (still on compute1) not moved.
    expect(lines.filter((l) => /^\[\d+\/\d+\] /.test(l))).toHaveLength(Number(/: (\d+) containers?/.exec(lines[0])![1]));
    for (const n of [names.cliCounter, names.cliRedis]) {
      expect(lines).toEqual(
        expect.arrayContaining([expect.stringMatching(new RegExp(`^\\[\\d+/\\d+\\] ${n}\\s+compute1 -> compute2\\s+completed, downtime \\d+ ms$`))]),
      );
    }
    expect(lines).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^\\[\\d+/\\d+\\] ${names.stopped}\\s+not running \\(exited\\), not moved`))]),
    );
    expect(lines[lines.length - 1]).toMatch(new RegExp(`^Evacuation ${String(e.uuid)} of compute1 (completed|incomplete): .*\\d+ completed`));
    expect(r.code).toBe(e.status === 'completed' ? 0 : 1);
    expect(e).toMatchObject({ host: 'compute1', max_parallel: 2 });

    await expectCounterWentOn(names.cliCounter, before);
    await expectRedisKept(names.cliRedis, cliSentinel);
    expect(await hostRecord('compute1')).toMatchObject({ status: 'disabled' });

    const enable = await openstack(['container', 'host', 'set', '--enable', 'compute1']);
    expect(enable.code).toBe(0);
    expect(await hostRecord('compute1')).toMatchObject({ status: 'enabled', disabled_reason: null });
    const unknown = await openstack(['container', 'host', 'evacuate', 'no-such-host']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/"no-such-host" is not known.*HTTP 404/);
  });
});
