/**
 * Versioned notifications on the development cloud (real RabbitMQ, conductor, agents, Docker,
 * CRIU): a listener on `versioned_notifications.*` hears real migrations — one that completes,
 * one whose restore fails and is rolled back, one forced to complete in post-copy, an evacuation
 * that completes and one whose migration is aborted — and every notification has the shape of
 * its sample in docs/notifications/samples/, and every sample is heard at least once.
 * Waits poll with generous deadlines; no order between notifications is assumed.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { NotificationListener, type Notification } from '../../../src/bus/listener.js';
import { Transport } from '../../../src/bus/transport.js';
import { sleep } from '../../../src/common/sleep.js';
import { VERSIONED_EVENTS } from '../../../src/conductor/notifications.js';
import type { Evacuation } from '../../../src/objects/evacuation.js';
import { cloud } from '../../helpers/cloud.js';
import { containerOn, engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, ferry, startMigration, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { enableHosts, moveBack, setHost } from '../../helpers/hosts.js';
import { loadSamples, sampleDifferences } from '../../helpers/notification-samples.js';
import { ensureImage, useFaults } from '../faults/harness.js';

jest.setTimeout(300_000);

const c1 = engine('compute1');
const c2 = engine('compute2');
const samples = loadSamples();
const tag = uniqueName('vn');
const mine = new Set<string>();
/** Other containers an evacuation moved to compute2: brought back afterwards. */
const foreign = new Set<string>();

async function counterOn1(suffix: string): Promise<string> {
  const name = `${tag}-${suffix}`;
  mine.add(name);
  const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name, Env: ['COUNTER_INTERVAL=0.2'] });
  await ct.start();
  await waitKnown(name, 'compute1');
  return name;
}

function dataOf(n: Notification): Record<string, unknown> {
  return ((n.payload as Record<string, unknown> | null)?.['ferry_object.data'] ?? {}) as Record<string, unknown>;
}

/** Poll until every evacuation container has its end; the evacuation as it ended. */
async function waitEvacuation(uuid: string, timeoutMs = 180_000): Promise<Evacuation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = (await admin<{ evacuation: Evacuation }>('GET', `/v1/evacuations/${uuid}`)).body.evacuation;
    if (e.status !== 'running') return e;
    if (Date.now() > deadline) throw new Error(`evacuation ${uuid} still running after ${timeoutMs} ms: ${JSON.stringify(e.counts)}`);
    await sleep(300);
  }
}

describe('versioned notifications from real migrations and evacuations', () => {
  const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
  const seen: Notification[] = [];
  /** Every notification that does not have its sample's shape, with what differs. */
  const problems: string[] = [];
  const listener = new NotificationListener(
    transport,
    { topics: ['versioned_notifications'], priorities: ['info', 'error'], pool: `ferry-test-vn-${randomUUID().slice(0, 8)}` },
    async (n) => {
      seen.push(n);
      const sample = samples.get(n.eventType);
      if (!sample) problems.push(`${n.eventType}: no sample in docs/notifications/samples`);
      else for (const d of sampleDifferences(sample, n)) problems.push(`${n.eventType}: ${d}`);
      return 'handled' as const;
    },
  );

  /** The event types heard about the object `uuid`, once each of `want` is among them (polls up to `timeoutMs`). */
  async function heard(uuid: string, want: string[], timeoutMs = 60_000): Promise<Notification[]> {
    const deadline = Date.now() + timeoutMs;
    const ours = () => seen.filter((n) => dataOf(n).uuid === uuid);
    while (!want.every((w) => ours().some((n) => n.eventType === w)) && Date.now() < deadline) await sleep(200);
    expect(ours().map((n) => n.eventType)).toEqual(expect.arrayContaining(want));
    return ours();
  }

  beforeAll(async () => {
    await ensureImage('compute2', 'ferry/counter:latest');
    await transport.connect();
    await listener.start();
    for (const h of ['compute1', 'compute2']) expect((await setHost(h, 'enabled')).status).toBe(200);
  });

  afterAll(async () => {
    await useFaults({});
    await enableHosts(['compute1', 'compute2']);
    for (const n of mine) {
      await removeQuietly(c1, n);
      await removeQuietly(c2, n);
    }
    await moveBack(foreign);
    await listener.stop();
    await transport.close();
  });

  it('a migration that completes: start, pre, post_dest and end, with the record', async () => {
    await useFaults({});
    const name = await counterOn1('plain');
    const m0 = await startMigration(name, 'compute2');
    const m = await waitMigration(m0.uuid);
    expect(m.status).toBe('completed');
    const ours = await heard(m.uuid, [
      'container.live_migration.start',
      'container.live_migration_pre.start',
      'container.live_migration_pre.end',
      'container.live_migration_post_dest.start',
      'container.live_migration_post_dest.end',
      'container.live_migration.end',
    ]);
    const end = ours.find((n) => n.eventType === 'container.live_migration.end')!;
    expect(end.priority).toBe('info');
    expect(end.publisherId).toMatch(/^ferry-conductor:/);
    expect(end.payload).toMatchObject({ 'ferry_object.name': 'ContainerMigrationPayload', 'ferry_object.namespace': 'ferry', 'ferry_object.version': '1.1' });
    expect(dataOf(end)).toMatchObject({ uuid: m.uuid, status: 'completed', source_host: 'compute1', dest_host: 'compute2', container_name: name, fault: null });
  });

  it('an evacuation that completes: host.evacuate.start and end, with each container', async () => {
    await useFaults({});
    const name = await counterOn1('evac-done');
    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', {});
    expect(r.status).toBe(202);
    const e = await waitEvacuation(r.body.evacuation.uuid);
    for (const c of e.containers) if (!mine.has(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    expect(e.containers.find((c) => c.container_name === name)).toMatchObject({ status: 'completed', dest_host: 'compute2' });
    expect(e.status).toBe('completed');
    const ours = await heard(e.uuid, ['host.evacuate.start', 'host.evacuate.end']);
    const end = ours.find((n) => n.eventType === 'host.evacuate.end')!;
    expect(dataOf(end)).toMatchObject({ uuid: e.uuid, host: 'compute1', status: 'completed' });
    const listed = (dataOf(end).containers as Record<string, Record<string, unknown>>[]).map((c) => c['ferry_object.data']);
    expect(listed).toEqual(expect.arrayContaining([expect.objectContaining({ container_name: name, status: 'completed' })]));
    expect((await setHost('compute1', 'enabled')).status).toBe(200);
  });

  it('a restore that fails: rolled back; rollback start and end, then the error with its fault', async () => {
    await useFaults({ compute2: { failRestore: true } });
    const name = await counterOn1('rollback');
    const m0 = await startMigration(name, 'compute2');
    const m = await waitMigration(m0.uuid);
    expect(m).toMatchObject({ status: 'failed', phase: 'rolled-back' });
    const ours = await heard(m.uuid, ['container.live_migration_rollback.start', 'container.live_migration_rollback.end', 'container.live_migration.error']);
    const error = ours.find((n) => n.eventType === 'container.live_migration.error')!;
    expect(error.priority).toBe('error');
    expect(dataOf(error)).toMatchObject({ status: 'failed', phase: 'rolled-back' });
    expect(dataOf(error).fault).toMatchObject({ 'ferry_object.name': 'ExceptionPayload', 'ferry_object.data': { module_name: 'ferry.conductor.flow' } });
    // Back on compute1: out of the way of the evacuation below.
    expect((await containerOn(c1, name))?.State).toBe('running');
    await removeQuietly(c1, name);
  });

  it('force-complete before the freeze: force_complete start and end, the end in post-copy', async () => {
    // The target's preparation is held so that the request finds the migration before the freeze.
    await useFaults({ compute2: { delayPreMigrationMs: 8000 } });
    const name = await counterOn1('forced');
    const m0 = await startMigration(name, 'compute2');
    await waitMigration(m0.uuid, (m) => m.status === 'pre-migrating', 60_000);
    expect(await ferry().forceComplete(m0.uuid)).toMatchObject({ mode: 'post-copy' });
    const m = await waitMigration(m0.uuid);
    expect(m).toMatchObject({ status: 'completed', mode: 'post-copy' });
    const ours = await heard(m.uuid, [
      'container.live_migration_force_complete.start',
      'container.live_migration_force_complete.end',
      'container.live_migration.end',
    ]);
    expect(dataOf(ours.find((n) => n.eventType === 'container.live_migration_force_complete.end')!)).toMatchObject({ mode: 'post-copy' });
  });

  it('an evacuation whose migration is aborted: abort start and end, then host.evacuate.error', async () => {
    await useFaults({ compute2: { delayPreMigrationMs: 8000 } });
    const name = await counterOn1('evac-abort');
    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', {});
    expect(r.status).toBe(202);
    const uuid = r.body.evacuation.uuid;
    // Our container's migration, once the target holds it in its preparation (before the freeze).
    let migration: string | null = null;
    const deadline = Date.now() + 60_000;
    while (!migration && Date.now() < deadline) {
      const e = (await admin<{ evacuation: Evacuation }>('GET', `/v1/evacuations/${uuid}`)).body.evacuation;
      migration = e.containers.find((c) => c.container_name === name)?.migration_uuid ?? null;
      if (!migration) await sleep(200);
    }
    expect(migration).not.toBeNull();
    await waitMigration(migration!, (m) => m.status === 'pre-migrating' && m.phase === 'prepare', 60_000);
    expect((await admin('DELETE', `/v1/migrations/${migration}`)).status).toBe(202);
    expect((await waitMigration(migration!)).status).toBe('cancelled');
    const e = await waitEvacuation(uuid);
    for (const c of e.containers) if (!mine.has(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    expect(e.status).toBe('incomplete');
    await heard(migration!, ['container.live_migration_abort.start', 'container.live_migration_abort.end']);
    const ours = await heard(uuid, ['host.evacuate.start', 'host.evacuate.error']);
    const error = ours.find((n) => n.eventType === 'host.evacuate.error')!;
    expect(error.priority).toBe('error');
    expect(dataOf(error)).toMatchObject({ status: 'incomplete' });
    expect((await setHost('compute1', 'enabled')).status).toBe(200);
  });

  it('every notification had its sample’s shape, and every sample was heard', () => {
    expect(problems).toEqual([]);
    const heardTypes = new Set(seen.map((n) => n.eventType));
    expect(VERSIONED_EVENTS.map((e) => e.eventType).filter((t) => !heardTypes.has(t))).toEqual([]);
  });
});
