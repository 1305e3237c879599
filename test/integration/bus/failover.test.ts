/**
 * RabbitMQ as deployed: the dev cloud runs two independent brokers and every service's
 * transport_url lists both (TLS: 5671 first, then 5674). The first broker is stopped by its PID
 * (`ferry-devcloud stop rabbitmq`) while migrations run, then again (SIGKILL) in the middle of
 * an evacuation of compute1: every service moves to the second broker, declares its queues and
 * consumers there, the migrations end correctly (one running copy, state intact, status
 * completed) and notifications still arrive. When the first broker is back, every service moves
 * back to it ([oslo_messaging_rabbit] failback_interval), and the cloud is left as it was: both
 * brokers up, compute1 enabled, this file's containers gone, other containers the evacuation
 * moved migrated back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { NotificationListener, type Notification } from '../../../src/bus/listener.js';
import { Transport } from '../../../src/bus/transport.js';
import { sleep } from '../../../src/common/sleep.js';
import { brokerPid, rabbitctl } from '../../../src/devcloud/rabbit.js';
import type { Evacuation } from '../../../src/objects/evacuation.js';
import { isFinal } from '../../../src/objects/migration.js';
import { cloud, runDevcloud } from '../../helpers/cloud.js';
import { containerOn, engine, lastNumber, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, startMigration, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { enableHosts, moveBack, setHost } from '../../helpers/hosts.js';
import { assertInvariant, checkRow, cleanUp, recordRow, redisOn1, useFaults, type RedisSubject, type Verdict } from '../faults/harness.js';

jest.setTimeout(300_000);

// The services' (TLS) ports.
const FIRST = '127.0.0.1:5671';
const SECOND = '127.0.0.1:5674';
/** The AMQP connection name of each Ferry service of the dev cloud (`<service>:<[DEFAULT] host>`). */
const SERVICES = ['ferry-api:controller', 'ferry-conductor:controller', 'ferry-compute:compute1', 'ferry-compute:compute2'];

const c1 = engine('compute1');
const c2 = engine('compute2');

/** `ferry-devcloud <args>` as an operator runs it. */
async function devcloud(args: string[]): Promise<void> {
  await runDevcloud(args, { timeoutMs: 180_000 });
}

/** The services that have an AMQP connection to `broker` now. */
async function servicesOn(broker: 'rabbitmq' | 'rabbitmq2'): Promise<string[]> {
  const r = await rabbitctl(['list_connections', 'client_properties', '--no-table-headers', '--quiet'], broker);
  return SERVICES.filter((n) => r.stdout.includes(`"connection_name","${n}"`));
}

/**
 * The topics the services consume. A service is on a broker once it consumes there, not merely
 * connected: a call published before the conductor re-declared its queue on a restarted broker is
 * unroutable and dropped, and the caller times out (504) — a fresh-clone run hit exactly that.
 */
const TOPICS = ['ferry-conductor', 'ferry-compute.compute1', 'ferry-compute.compute2'];

async function waitServicesOn(broker: 'rabbitmq' | 'rabbitmq2', timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let on: string[] = [];
  let consumed: string[] = [];
  while (Date.now() < deadline) {
    on = await servicesOn(broker).catch(() => []);
    const queues = await queuesOn(broker).catch(() => new Map<string, number>());
    consumed = TOPICS.filter((q) => (queues.get(q) ?? 0) >= 1);
    if (on.length === SERVICES.length && consumed.length === TOPICS.length) return;
    await sleep(500);
  }
  throw new Error(
    `after ${timeoutMs} ms only ${JSON.stringify(on)} of ${JSON.stringify(SERVICES)} are connected to ${broker}, and only ${JSON.stringify(consumed)} of ${JSON.stringify(TOPICS)} consumed there`,
  );
}

/** Queue name -> consumer count on one broker. */
async function queuesOn(broker: 'rabbitmq' | 'rabbitmq2'): Promise<Map<string, number>> {
  const r = await rabbitctl(['list_queues', '-p', 'ferry', 'name', 'consumers', '--no-table-headers', '--quiet'], broker);
  return new Map(
    r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((p) => p.length === 2)
      .map(([n, c]) => [n, Number(c)]),
  );
}

async function getEvacuation(uuid: string): Promise<Evacuation | null> {
  const r = await admin<{ evacuation: Evacuation }>('GET', `/v1/evacuations/${uuid}`);
  // 503/504: the API cannot reach the conductor while the services change brokers; ask again.
  if (r.status === 503 || r.status === 504) return null;
  expect(r.status).toBe(200);
  return r.body.evacuation;
}

async function waitEvacuation(uuid: string, until: (e: Evacuation) => boolean, timeoutMs: number): Promise<Evacuation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = await getEvacuation(uuid);
    if (e && (until(e) || e.status !== 'running')) return e;
    if (Date.now() > deadline) throw new Error(`evacuation ${uuid} still running after ${timeoutMs} ms: ${JSON.stringify(e?.counts)}`);
    await sleep(200);
  }
}

describe('two RabbitMQ brokers: the first one stopped', () => {
  // A client like the services: both brokers, back to the first one 2 s after it returns.
  const transport = Transport.fromUrl(cloud().rabbit.services_transport_url, {
    exchange: 'ferry',
    failbackSeconds: 2,
    connectionName: `ferry-failover-test:${process.pid}`,
  });
  const hostsSeen: string[] = [];
  transport.on('connected', (h: string) => hostsSeen.push(h));
  const pool = `ferry-test-failover-${randomUUID().slice(0, 8)}`;
  const seen: Notification[] = [];
  const listener = new NotificationListener(transport, { topics: ['notifications'], priorities: ['info', 'error'], pool }, async (n) => {
    seen.push(n);
    return 'handled' as const;
  });
  const counters: string[] = [];
  /** Other containers the evacuation moved to compute2: brought back afterwards. */
  const foreign = new Set<string>();

  const about = (uuid: string) => seen.filter((n) => (n.payload as Record<string, { uuid?: string }>)['ferry_object.data']?.uuid === uuid);
  async function notified(uuid: string, eventType: RegExp): Promise<string[]> {
    const deadline = Date.now() + 15_000;
    while (!about(uuid).some((n) => eventType.test(n.eventType)) && Date.now() < deadline) await sleep(100);
    return about(uuid).map((n) => n.eventType);
  }

  beforeAll(async () => {
    expect(cloud().rabbit.brokers.map((b) => [b.name, b.port, b.state])).toEqual([
      ['rabbitmq', 5672, 'up'],
      ['rabbitmq2', 5673, 'up'],
    ]);
    await transport.connect();
    await listener.start();
    expect(transport.connectedHost).toBe(FIRST);
    await useFaults({});
    // Every service starts on the first broker (and so has both in its transport_url).
    await waitServicesOn('rabbitmq');
    expect(await servicesOn('rabbitmq2')).toEqual([]);
  });

  afterAll(async () => {
    // Both brokers up again, the services back on the first.
    if (brokerPid('rabbitmq') === null) await devcloud(['start', 'rabbitmq']);
    await waitServicesOn('rabbitmq', 60_000).catch(() => undefined);
    await enableHosts(['compute1']);
    await moveBack(foreign, 120_000);
    for (const n of counters) {
      await removeQuietly(c1, n);
      await removeQuietly(c2, n);
    }
    await cleanUp();
    await listener.stop();
    await transport.close();
  }, 600_000);

  test('stopped by its PID mid-migration: the services move to the second broker, the migrations complete, notifications arrive', async () => {
    // The source holds the migration in `running` for 6 s after the checkpoint: the window.
    await useFaults({ compute1: { delayAfterCheckpointMs: 6000 } });
    await waitServicesOn('rabbitmq');
    const subjects: RedisSubject[] = [await redisOn1('failover-a'), await redisOn1('failover-b')];
    const started = await Promise.all(subjects.map((s) => startMigration(s.name, 'compute2')));
    const first = await waitMigration(started[0].uuid, (m) => m.status === 'running' || isFinal(m.status), 60_000);
    expect(first.status).toBe('running');

    await devcloud(['stop', 'rabbitmq']);
    expect(brokerPid('rabbitmq')).toBeNull();
    expect(brokerPid('rabbitmq2')).not.toBeNull();

    await waitServicesOn('rabbitmq2');
    for (const [i, s] of subjects.entries()) {
      const end = await waitMigration(started[i].uuid);
      await checkRow('first of two RabbitMQ brokers stopped', i === 0 ? 'transfer' : 'queued (accepted)', end, s, { status: 'completed', host: 'compute2' });
      // The end was announced after the move: the notifier and our listener work on the second broker.
      expect(await notified(end.uuid, /^container\.live_migration\.end$/)).toContain('container.live_migration.end');
    }
    // Our client went where the services went, and declared its queue and consumer there, as the
    // conductor did for its topic.
    expect(transport.connectedHost).toBe(SECOND);
    expect(hostsSeen[0]).toBe(FIRST);
    expect(hostsSeen[hostsSeen.length - 1]).toBe(SECOND);
    const queues = await queuesOn('rabbitmq2');
    expect(queues.get(pool)).toBe(1);
    expect(queues.get('ferry-conductor') ?? 0).toBeGreaterThanOrEqual(1);
    expect(queues.get('ferry-compute.compute1') ?? 0).toBeGreaterThanOrEqual(1);

    // Back up: every service (and our client) moves back to the first broker.
    await devcloud(['start', 'rabbitmq']);
    await waitServicesOn('rabbitmq');
    for (let i = 0; i < 100 && transport.connectedHost !== FIRST; i++) await sleep(100);
    expect(transport.connectedHost).toBe(FIRST);
    await useFaults({});
  });

  test('killed mid-evacuation: the evacuation completes, every container runs on compute2', async () => {
    await waitServicesOn('rabbitmq');
    expect(transport.connectedHost).toBe(FIRST);
    const tag = uniqueName('failover-evac');
    for (const n of [`${tag}-counter1`, `${tag}-counter2`]) {
      counters.push(n);
      const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name: n, Env: ['COUNTER_INTERVAL=0.2'] });
      await ct.start();
    }
    const redis: RedisSubject[] = [await redisOn1('failover-evac-a', 20_000), await redisOn1('failover-evac-b', 20_000)];
    for (const n of counters) await waitKnown(n, 'compute1');
    const ours = new Set([...counters, ...redis.map((s) => s.name)]);
    const before = new Map<string, number>();
    for (const n of counters) before.set(n, await lastNumber(c1, n));

    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', { max_parallel: 2 });
    expect(r.status).toBe(202);
    const uuid = r.body.evacuation.uuid;

    // Mid-way: one container moved, the rest still to go.
    const mid = await waitEvacuation(uuid, (e) => e.counts.completed >= 1, 180_000);
    expect(mid.status).toBe('running');
    expect(mid.counts.pending + mid.counts.migrating).toBeGreaterThanOrEqual(1);
    await devcloud(['stop', 'rabbitmq', '--kill']);
    expect(brokerPid('rabbitmq')).toBeNull();
    await waitServicesOn('rabbitmq2');

    const e = await waitEvacuation(uuid, () => false, 240_000);
    for (const c of e.containers) if (!ours.has(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    const byName = new Map(e.containers.map((c) => [c.container_name, c]));
    for (const n of ours) expect(byName.get(n)).toMatchObject({ status: 'completed', dest_host: 'compute2', reason: null });
    expect(e.counts.pending + e.counts.migrating).toBe(0);
    expect(['completed', 'incomplete']).toContain(e.status);

    const verdicts: Verdict[] = [];
    for (const s of redis) {
      const m = await waitMigration(byName.get(s.name)!.migration_uuid!);
      verdicts.push(await assertInvariant(m, s, { status: 'completed', host: 'compute2' }));
    }
    for (const n of counters) {
      const moved = await containerOn(c2, n);
      expect(moved?.State).toBe('running');
      expect(await containerOn(c1, n)).toBeNull();
      const a = await lastNumber(c2, moved!.Id);
      await sleep(600);
      expect(a).toBeGreaterThanOrEqual(before.get(n)!); // from where it was, not from 0
      expect(await lastNumber(c2, moved!.Id)).toBeGreaterThan(a); // and it keeps counting
    }
    const events = await notified(uuid, /^host\.evacuate\.(end|error)$/);
    expect(events[0]).toBe('host.evacuate.start');
    expect(events).toContain(e.status === 'completed' ? 'host.evacuate.end' : 'host.evacuate.error');
    expect(transport.connectedHost).toBe(SECOND);
    recordRow('first of two RabbitMQ brokers SIGKILLed', 'evacuation of 4 (its 2 Redis)', { status: 'completed', host: 'compute2' }, verdicts);

    await devcloud(['start', 'rabbitmq']);
    await waitServicesOn('rabbitmq');
    expect((await setHost('compute1', 'enabled')).status).toBe(200);
  });
});
