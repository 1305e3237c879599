/**
 * Host maintenance in the conductor: enabling/disabling hosts, evacuation bookkeeping and the
 * per-host concurrency of sources and targets, with an in-memory database and a scripted
 * ComputeAPI whose steps take a little time (fakes are fine for this pure logic).
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import {
  EvacuationNotFound,
  HostDisabled,
  HostNotFound,
  InvalidInput,
  MigrationPreCheckError,
  NoValidHost,
  PostCopyUnsupported,
} from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import type { ComputeMethod, ComputeResult } from '../../../src/compute/methods.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import { nextToStart, planContainers } from '../../../src/conductor/evacuation.js';
import { ConductorManager } from '../../../src/conductor/manager.js';
import type { EvacuationEvent } from '../../../src/conductor/notifications.js';
import { SqliteRepository, type ContainerRecord } from '../../../src/conductor/repository.js';
import { ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import { countByStatus, finalStatus, type Evacuation, type EvacuationContainer } from '../../../src/objects/evacuation.js';
import type { HostState } from '../../../src/objects/host.js';

const log = pino({ level: 'silent' });
const ctx = () => new RequestContext({ roles: ['admin'], is_admin: true });

function state(containers: HostState['containers']): HostState {
  return { docker_version: '20.10', api_version: '1.41', criu_version: '4.2.1', criu_ok: true, architecture: 'x86_64', migration_address: 'x:1', containers };
}

const running = (id: string, name: string) => ({ id, name, image: 'img', status: 'running' });

/**
 * A compute API whose every step answers after `stepMs`, with a new container id per migration,
 * that counts how many migrations each host works on at once (from the first step to the last).
 */
class TimedCompute implements ComputeAPI {
  readonly busy = new Map<string, Set<string>>(); // host -> migrations it works on now
  readonly peak = new Map<string, number>();
  peakTotal = 0;
  private readonly inFlight = new Set<string>();
  constructor(
    private readonly stepMs = 5,
    private readonly refuse: (migrationId: string, method: ComputeMethod) => Error | undefined = () => undefined,
  ) {}

  private enter(host: string, id: string) {
    const s = this.busy.get(host) ?? new Set<string>();
    s.add(id);
    this.busy.set(host, s);
    this.peak.set(host, Math.max(this.peak.get(host) ?? 0, s.size));
    this.inFlight.add(id);
    this.peakTotal = Math.max(this.peakTotal, this.inFlight.size);
  }

  private leave(id: string) {
    for (const s of this.busy.values()) s.delete(id);
    this.inFlight.delete(id);
  }

  async call<M extends ComputeMethod>(_ctx: RequestContext, host: string, method: M, args: unknown): Promise<ComputeResult<M>> {
    const id = String((args as { migration_id?: string }).migration_id);
    this.enter(host, id);
    await sleep(this.stepMs);
    const err = this.refuse(id, method);
    if (err) {
      if (method.startsWith('check_')) this.leave(id);
      throw err;
    }
    const newId = `new${id.replace(/-/g, '').slice(0, 9)}`;
    const results: { [K in ComputeMethod]: unknown } = {
      check_can_migrate_destination: { dest: {}, image_present: true },
      check_can_migrate_source: { source: {}, spec: {}, export: { address: 'a', token: 't' } },
      pre_migration: {
        dest_host: host,
        container_id: newId,
        upload: { address: 'a', token: 't' },
        image_transferred: false,
        image_bytes: 0,
        image_ms: 0,
        create_ms: 1,
        connections_preserved: true,
      },
      live_migration: {
        mode: 'stop-and-copy',
        page_server: null,
        memory_total_bytes: 50,
        container_id: 'x',
        checkpoint_name: 'ck',
        fast_checkpoint: false,
        frozen_at: 1000,
        checkpoint_ms: 3,
        transfer_ms: 1,
        memory_bytes: 50,
        rootfs_bytes: 1,
        volume_bytes: 0,
        transferred_bytes: 51,
        parts: [],
      },
      post_migration_at_destination: {
        container_id: newId,
        running: true,
        restored_at: 1010,
        place_ms: 1,
        restore_ms: 4,
        garp_sent: true,
        connections_preserved: true,
        post_copy: false,
      },
      post_copy_status: { state: 'complete', error: null, completed_at: 1020 },
      cleanup_source: { container_removed: true, volumes_removed: [] },
      rollback_at_destination: { container_removed: true, volumes_removed: [], image_removed: false },
      rollback_at_source: { container_id: 'x', running: true, from_checkpoint: true, state_kept: true },
    };
    if (method === 'cleanup_source' || method.startsWith('rollback_')) this.leave(id);
    return results[method] as ComputeResult<M>;
  }
}

async function setup(opts: { maxPerHost?: number; compute?: TimedCompute; hosts?: Record<string, HostState['containers']> } = {}) {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const repo = new SqliteRepository(db);
  const compute = opts.compute ?? new TimedCompute();
  const events: { event: EvacuationEvent; e: Evacuation }[] = [];
  const svc = new ConductorService(
    repo,
    compute,
    async () => undefined,
    { maxConcurrentPerHost: opts.maxPerHost ?? 10, serviceDownTime: 30, retry: { deadlineMs: 300, backoffMs: 10 } },
    log,
    undefined,
    async (_c, event, e) => void events.push({ event, e }),
  );
  const hosts = opts.hosts ?? { c1: [], c2: [] };
  for (const [name, containers] of Object.entries(hosts)) await svc.reportState(name, state(containers));
  return { repo, svc, compute, events };
}

function item(status: EvacuationContainer['status'], id = Math.random().toString(16).slice(2)): EvacuationContainer {
  return { container_id: id, container_name: id, container_status: 'running', status, migration_uuid: null, dest_host: null, reason: null, updated_at: '' };
}

describe('evacuation bookkeeping (pure)', () => {
  it('plans running containers as pending and lists every other one as not moved, with the reason', async () => {
    const recs: ContainerRecord[] = [
      { id: 'b1', name: 'b', host: 'c1', image: 'i', status: 'running', updated_at: '' },
      { id: 'a1', name: 'a', host: 'c1', image: 'i', status: 'exited', updated_at: '' },
      { id: 'c1', name: 'c', host: 'c1', image: 'i', status: 'paused', updated_at: '' },
    ];
    const plan = planContainers(recs, 'T');
    expect(plan.map((p) => [p.container_name, p.status])).toEqual([
      ['a', 'not-moved'],
      ['b', 'pending'],
      ['c', 'not-moved'],
    ]);
    expect(plan[0].reason).toMatch(/^not running \(exited\), not moved/);
    expect(plan[1].reason).toBeNull();
  });

  it('starts no more than max_parallel at once', async () => {
    const e = { max_parallel: 2, containers: [item('migrating'), item('pending'), item('pending'), item('completed')] };
    expect(nextToStart(e)).toHaveLength(1);
    expect(nextToStart({ ...e, max_parallel: 1 })).toHaveLength(0);
    expect(nextToStart({ ...e, max_parallel: 5 })).toHaveLength(2);
  });

  it('counts by status (zeros included) and ends completed only when every running container moved', async () => {
    const items = [item('completed'), item('not-moved'), item('completed')];
    expect(countByStatus(items)).toMatchObject({ completed: 2, 'not-moved': 1, refused: 0, failed: 0, pending: 0 });
    expect(finalStatus(items)).toBe('completed');
    expect(finalStatus([...items, item('refused')])).toBe('incomplete');
    expect(finalStatus([...items, item('failed')])).toBe('incomplete');
    expect(finalStatus([...items, item('migrating')])).toBe('running');
    expect(finalStatus([])).toBe('completed');
  });
});

describe('host enable/disable', () => {
  it('disables and enables a host; a heartbeat keeps the status; enabling clears the reason', async () => {
    const { svc } = await setup();
    expect(await svc.setHostStatus('c2', 'disabled', 'kernel upgrade')).toMatchObject({ name: 'c2', status: 'disabled', disabled_reason: 'kernel upgrade' });
    await svc.reportState('c2', state([]));
    expect((await svc.listHosts()).find((h) => h.name === 'c2')).toMatchObject({ status: 'disabled', disabled_reason: 'kernel upgrade' });
    expect(await svc.setHostStatus('c2', 'enabled')).toMatchObject({ status: 'enabled', disabled_reason: null });
  });

  it('refuses an unknown host (404) and bad values (400)', async () => {
    const { svc } = await setup();
    await expect(svc.setHostStatus('nope', 'disabled')).rejects.toThrow(HostNotFound);
    // Bad values are refused by set_host_status's schema, before the service.
    const mgr = new ConductorManager(svc);
    const set = (args: Record<string, unknown>) => () => mgr.dispatch(ctx(), 'set_host_status', { host: 'c2', ...args });
    expect(set({ status: 'off' })).toThrow(InvalidInput);
    expect(set({ status: 'enabled', disabled_reason: 'why' })).toThrow(/only for "status": "disabled"/);
    expect(set({ status: 'enabled', disabled_reason: 'why' })).toThrow(InvalidInput);
    expect(set({ status: 'disabled', disabled_reason: 'x'.repeat(256) })).toThrow(/at most 255/);
    expect(set({ host: ' ', status: 'disabled' })).toThrow(/argument "host" must be a compute host name/);
    expect((await svc.listHosts()).find((h) => h.name === 'c2')?.status).toBe('enabled');
  });

  it('a migrate never lands on a disabled host: with none left it is refused with the reason', async () => {
    const { svc } = await setup({ hosts: { c1: [running('aaa111', 'web')], c2: [] } });
    await svc.setHostStatus('c2', 'disabled', 'maintenance');
    await expect(svc.migrateOnLiveState(ctx(), 'web')).rejects.toThrow(NoValidHost);
    await expect(svc.migrateOnLiveState(ctx(), 'web')).rejects.toThrow(/c2 is disabled \(maintenance\)/);
    await expect(svc.migrateOnLiveState(ctx(), 'web', 'c2')).rejects.toThrow(HostDisabled);
  });
});

describe('scheduling in the conductor', () => {
  it('spreads migrations accepted together over the hosts (migrations on their way count)', async () => {
    const { svc } = await setup({
      hosts: { c1: [running('aaa111', 'a'), running('bbb222', 'b'), running('ccc333', 'c'), running('ddd444', 'd')], c2: [], c3: [] },
    });
    const dests: (string | null)[] = [];
    for (const n of ['a', 'b', 'c', 'd']) dests.push((await svc.migrateOnLiveState(ctx(), n)).dest_host);
    expect(dests.sort()).toEqual(['c2', 'c2', 'c3', 'c3']);
    await svc.whenIdle();
  });

  it('a target host runs at most max_concurrent_migrations_per_host at once, the rest queue and complete', async () => {
    const compute = new TimedCompute(10);
    const { svc } = await setup({ maxPerHost: 1, compute, hosts: { c1: [running('aaa111', 'a')], c3: [running('bbb222', 'b')], c2: [] } });
    await svc.setHostStatus('c3', 'enabled');
    const m1 = await svc.migrateOnLiveState(ctx(), 'a', 'c2');
    const m2 = await svc.migrateOnLiveState(ctx(), 'b', 'c2'); // another source, the same target: queued, not refused
    expect(m2.status).toBe('accepted');
    await svc.whenIdle();
    expect((await svc.getMigration(m1.uuid)).status).toBe('completed');
    expect((await svc.getMigration(m2.uuid)).status).toBe('completed');
    expect(compute.peak.get('c2')).toBe(1);
  });

  it('without the limit the same two run at once (the measure above can see concurrency)', async () => {
    const compute = new TimedCompute(10);
    const { svc } = await setup({ maxPerHost: 2, compute, hosts: { c1: [running('aaa111', 'a')], c3: [running('bbb222', 'b')], c2: [] } });
    await svc.migrateOnLiveState(ctx(), 'a', 'c2');
    await svc.migrateOnLiveState(ctx(), 'b', 'c2');
    await svc.whenIdle();
    expect(compute.peak.get('c2')).toBe(2);
  });
});

describe('evacuation', () => {
  const six = () => ({
    c1: [
      running('aaa111', 'a'),
      running('bbb222', 'b'),
      running('ccc333', 'c'),
      running('ddd444', 'd'),
      running('eee555', 'e'),
      { id: 'fff666', name: 'stopped', image: 'img', status: 'exited' },
    ],
    c2: [],
  });

  it('moves every running container, at most max_parallel at once, lists the stopped one, disables the host, notifies', async () => {
    const compute = new TimedCompute(5);
    const { svc, events } = await setup({ compute, hosts: six() });
    const e0 = await svc.evacuate(ctx(), 'c1', { max_parallel: 2 });
    expect(e0).toMatchObject({ host: 'c1', status: 'running', max_parallel: 2, host_disabled: true });
    expect(e0.containers).toHaveLength(6);
    expect((await svc.listHosts()).find((h) => h.name === 'c1')).toMatchObject({ status: 'disabled', disabled_reason: `evacuating (evacuation ${e0.uuid})` });
    const e = await svc.whenEvacuated(e0.uuid);
    expect(e.status).toBe('completed');
    expect(e.counts).toMatchObject({ completed: 5, 'not-moved': 1, refused: 0, failed: 0, pending: 0, migrating: 0 });
    expect(e.containers.find((c) => c.container_name === 'stopped')).toMatchObject({ status: 'not-moved', migration_uuid: null });
    for (const c of e.containers.filter((x) => x.status === 'completed')) {
      expect(c.dest_host).toBe('c2');
      expect(await svc.getMigration(c.migration_uuid as string)).toMatchObject({ status: 'completed', source_host: 'c1', dest_host: 'c2' });
    }
    expect(compute.peakTotal).toBeLessThanOrEqual(2);
    expect(compute.peakTotal).toBe(2);
    expect(events.map((x) => x.event)).toEqual(['host.evacuate.start', 'host.evacuate.end']);
    expect(events[1].e.counts.completed).toBe(5);
    // Only the stopped container is left on c1; the host stays disabled for the maintenance.
    expect((await svc.listContainers()).filter((c) => c.host === 'c1').map((c) => c.name)).toEqual(['stopped']);
    expect((await svc.listHosts()).find((h) => h.name === 'c1')?.status).toBe('disabled');
    expect(await svc.getEvacuation(e0.uuid)).toEqual(e);
    expect((await svc.listEvacuations({ host: 'c1' })).map((x) => x.uuid)).toEqual([e0.uuid]);
  });

  it("each migration of an evacuation carries its container's project (the admin's only for an unlabelled one); the moved record keeps it", async () => {
    const { svc } = await setup({
      hosts: {
        c1: [{ ...running('aaa111', 'a'), project_id: 'p-demo' }, { ...running('bbb222', 'b'), project_id: 'p-other' }, running('ccc333', 'c')],
        c2: [],
      },
    });
    const admin = new RequestContext({ roles: ['admin'], is_admin: true, user_id: 'u-admin', project_id: 'p-admin' });
    const e = await svc.whenEvacuated((await svc.evacuate(admin, 'c1', { max_parallel: 3 })).uuid);
    expect(e.counts.completed).toBe(3);
    const projects = await Promise.all(e.containers.map(async (c) => [c.container_name, (await svc.getMigration(c.migration_uuid as string)).project_id]));
    expect(projects).toEqual([
      ['a', 'p-demo'],
      ['b', 'p-other'],
      ['c', 'p-admin'],
    ]);
    expect((await svc.listMigrations({ project_id: 'p-demo' })).map((m) => m.container_name)).toEqual(['a']);
    expect((await svc.listContainers({ project_id: 'p-demo' })).map((c) => `${c.host}/${c.name}`)).toEqual(['c2/a']);
  });

  it('max_parallel 1 moves one at a time', async () => {
    const compute = new TimedCompute(3);
    const { svc } = await setup({ compute, hosts: six() });
    const e = await svc.whenEvacuated((await svc.evacuate(ctx(), 'c1', { max_parallel: 1 })).uuid);
    expect(e.counts.completed).toBe(5);
    expect(compute.peakTotal).toBe(1);
  });

  it('lists containers the pre-checks refused with the reason, never skips them, and ends incomplete with an error notification', async () => {
    let sourceChecks = 0;
    let refusedId: string | undefined;
    const compute = new TimedCompute(3, (id, method) => {
      // The host's own pre-check refuses one container of the evacuation (the first check is the busy migration's).
      if (method === 'check_can_migrate_source' && (++sourceChecks === 2 || refusedId === id)) {
        refusedId = id;
        return new MigrationPreCheckError('container has a TTY attached; CRIU cannot checkpoint it');
      }
      return undefined;
    });
    const { svc, events } = await setup({ compute, hosts: six() });
    // The conductor's own check refuses another: it is already being migrated (first in the evacuation's order).
    const busy = await svc.migrateOnLiveState(ctx(), 'a', 'c2');
    const e = await svc.whenEvacuated((await svc.evacuate(ctx(), 'c1', { max_parallel: 3 })).uuid);
    await svc.whenIdle();
    expect(e.status).toBe('incomplete');
    const byName = Object.fromEntries(e.containers.map((c) => [c.container_name, c]));
    expect(byName.a).toMatchObject({ status: 'refused', migration_uuid: null });
    expect(byName.a.reason).toMatch(new RegExp(`already being migrated \\(migration ${busy.uuid}`));
    const failed = e.containers.filter((c) => c.status === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].reason).toMatch(/^migration failed: .*TTY attached/);
    expect(e.counts).toMatchObject({ completed: 3, failed: 1, refused: 1, 'not-moved': 1 });
    expect(events.map((x) => x.event)).toEqual(['host.evacuate.start', 'host.evacuate.error']);
  });

  it('sends every container to target_host when named', async () => {
    const { svc } = await setup({ hosts: { c1: [running('aaa111', 'a'), running('bbb222', 'b')], c2: [], c3: [] } });
    const e = await svc.whenEvacuated((await svc.evacuate(ctx(), 'c1', { target_host: 'c3', max_parallel: 2 })).uuid);
    expect(e.containers.map((c) => c.dest_host)).toEqual(['c3', 'c3']);
    expect(e.target_host).toBe('c3');
  });

  it('an already disabled host is evacuated without touching its status', async () => {
    const { svc } = await setup({ hosts: { c1: [running('aaa111', 'a')], c2: [] } });
    await svc.setHostStatus('c1', 'disabled', 'disk replacement');
    const e = await svc.whenEvacuated((await svc.evacuate(ctx(), 'c1')).uuid);
    expect(e).toMatchObject({ status: 'completed', host_disabled: false, max_parallel: 1 });
    expect((await svc.listHosts()).find((h) => h.name === 'c1')).toMatchObject({ status: 'disabled', disabled_reason: 'disk replacement' });
  });

  it('refuses bad requests at once and changes nothing', async () => {
    const { svc, repo } = await setup({ hosts: { c1: [running('aaa111', 'a')], c2: [] } });
    await expect(svc.evacuate(ctx(), 'nope')).rejects.toThrow(HostNotFound);
    // Bad arguments are refused by evacuate_host's schema, before the service.
    const mgr = new ConductorManager(svc);
    expect(() => mgr.dispatch(ctx(), 'evacuate_host', { host: 'c1', max_parallel: 0 })).toThrow(/"max_parallel" must be an integer from 1 to 64/);
    expect(() => mgr.dispatch(ctx(), 'evacuate_host', { host: 'c1', max_parallel: 1.5 })).toThrow(InvalidInput);
    expect(() => mgr.dispatch(ctx(), 'evacuate_host', { host: 'c1', target_host: '' })).toThrow(/argument "target_host" must be a compute host name/);
    await expect(svc.evacuate(ctx(), 'c1', { target_host: 'c1' })).rejects.toThrow(/already runs on "c1"/);
    await expect(svc.evacuate(ctx(), 'c1', { target_host: 'zz' })).rejects.toThrow(HostNotFound);
    await expect(svc.evacuate(ctx(), 'c1', { post_copy: true })).rejects.toThrow(PostCopyUnsupported);
    await svc.setHostStatus('c2', 'disabled', 'maintenance');
    await expect(svc.evacuate(ctx(), 'c1')).rejects.toThrow(NoValidHost);
    await expect(svc.evacuate(ctx(), 'c1')).rejects.toThrow(/c2 is disabled \(maintenance\)/);
    await expect(svc.evacuate(ctx(), 'c1', { target_host: 'c2' })).rejects.toThrow(HostDisabled);
    expect(await repo.listEvacuations()).toEqual([]);
    expect((await svc.listHosts()).find((h) => h.name === 'c1')?.status).toBe('enabled');
    await expect(svc.getEvacuation('00000000-0000-4000-8000-000000000000')).rejects.toThrow(EvacuationNotFound);
  });

  it('a restarted conductor goes on with an evacuation left running', async () => {
    const db = openDatabase('sqlite:///:memory:');
    syncSchema(db);
    const repo = new SqliteRepository(db);
    const svcOf = () => new ConductorService(repo, new TimedCompute(2), async () => undefined, { maxConcurrentPerHost: 5, serviceDownTime: 30 }, log);
    const first = svcOf();
    await first.reportState('c1', state([running('aaa111', 'a'), running('bbb222', 'b')]));
    await first.reportState('c2', state([]));
    const e0 = await first.evacuate(ctx(), 'c1', { max_parallel: 1 });
    await first.whenEvacuated(e0.uuid);
    // As if the conductor had died with the second container still pending:
    await repo.updateEvacuation(e0.uuid, { status: 'running' });
    await repo.updateEvacuationContainer(e0.uuid, 'bbb222', { status: 'pending', migration_uuid: null, dest_host: null });
    await repo.saveHostReport('c1', state([running('bbb222', 'b')]), new Date().toISOString());
    const second = svcOf();
    await second.recover();
    const e = await second.whenEvacuated(e0.uuid);
    expect(e.status).toBe('completed');
    expect(e.counts.completed).toBe(2);
  });

  it('the manager checks evacuate_host and set_host_status arguments (schema) before the service', async () => {
    const { svc } = await setup();
    const mgr = new ConductorManager(svc);
    expect(() => mgr.dispatch(ctx(), 'evacuate_host', { host: 'c1', max_parallel: 0 })).toThrow(/argument "max_parallel" must be an integer from 1 to 64/);
    expect(() => mgr.dispatch(ctx(), 'evacuate_host', { host: 'c1', max_parallel: '2' })).toThrow(/argument "max_parallel"/);
    expect(() => mgr.dispatch(ctx(), 'evacuate_host', { host: 'c1', post_copy: 'yes' })).toThrow(/argument "post_copy" must be true or false/);
    expect(() => mgr.dispatch(ctx(), 'set_host_status', { host: 'c1', status: 'off' })).toThrow(/argument "status" must be one of enabled, disabled/);
    expect(() => mgr.dispatch(ctx(), 'get_evacuation', {})).toThrow(/argument "evacuation_id" is required/);
    await expect(mgr.dispatch(ctx(), 'set_host_status', { host: 'c2', status: 'disabled', disabled_reason: 'r' })).resolves.toMatchObject({
      status: 'disabled',
    });
  });
});
