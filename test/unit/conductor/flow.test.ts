/** The conductor's flow and service with an in-memory database and a scripted ComputeAPI (fakes are fine for pure logic). */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { MessagingTimeout, MessagingUnavailable, RestoreFailed, RollbackFailed, TargetRunsContainer, TransferFailed } from '../../../src/common/errors.js';
import type { ComputeMethod, ComputeResult } from '../../../src/compute/methods.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import { MigrationFlow, type EventName } from '../../../src/conductor/flow.js';
import { SqliteRepository, type Repository } from '../../../src/conductor/repository.js';
import { ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { HostState } from '../../../src/objects/host.js';

const log = pino({ level: 'silent' });

function repo() {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  return new SqliteRepository(db);
}

function state(containers: HostState['containers']): HostState {
  return { docker_version: '20.10', api_version: '1.41', criu_version: '4.2.1', criu_ok: true, architecture: 'x86_64', migration_address: 'x:1', containers };
}

type Calls = string[];
type Method = ComputeMethod;

const RESULTS: { [M in Method]: ComputeResult<M> } = {
  check_can_migrate_destination: { dest: {} as never, image_present: true },
  check_can_migrate_source: { source: {} as never, spec: {} as never, export: { address: 'a', token: 't' } },
  pre_migration: {
    dest_host: 'c2',
    container_id: 'new',
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
    memory_total_bytes: 5000,
    container_id: 'abc',
    checkpoint_name: 'ck',
    fast_checkpoint: false,
    frozen_at: 1000,
    checkpoint_ms: 300,
    transfer_ms: 100,
    memory_bytes: 5000,
    rootfs_bytes: 10,
    volume_bytes: 0,
    transferred_bytes: 5010,
    parts: [],
  },
  post_migration_at_destination: {
    container_id: 'new',
    running: true,
    restored_at: 1900,
    place_ms: 5,
    restore_ms: 400,
    garp_sent: true,
    connections_preserved: true,
    post_copy: false,
  },
  post_copy_status: { state: 'complete', error: null, completed_at: 2000 },
  cleanup_source: { container_removed: true, volumes_removed: [] },
  rollback_at_destination: { container_removed: true, volumes_removed: [], image_removed: false },
  rollback_at_source: { container_id: 'abc', running: true, from_checkpoint: true, state_kept: true },
};

/** A failure: always this error, or, as a function, the error for the n-th call of that method (undefined = answer). */
type Failure = Error | ((n: number) => Error | undefined);

function fakeCompute(calls: Calls, fail: Partial<Record<Method, Failure>> = {}, hooks: Partial<Record<Method, () => void>> = {}): ComputeAPI {
  const counts = new Map<string, number>();
  return {
    async call<M extends Method>(_ctx: RequestContext, host: string, method: M): Promise<ComputeResult<M>> {
      calls.push(`${method}@${host}`);
      const n = (counts.get(method) ?? 0) + 1;
      counts.set(method, n);
      hooks[method]?.();
      const f = fail[method];
      const err = typeof f === 'function' ? f(n) : f;
      if (err) throw err;
      return RESULTS[method];
    },
  };
}

const FAST_RETRY = { deadlineMs: 300, backoffMs: 10 };

async function setup(compute: ComputeAPI, repository = repo()) {
  const r = repository;
  const events: EventName[] = [];
  const svc = new ConductorService(r, compute, async (_c, e) => void events.push(e), { maxConcurrentPerHost: 1, serviceDownTime: 30, retry: FAST_RETRY }, log);
  await svc.reportState(
    'c1',
    state([
      { id: 'abc', name: 'web', image: 'img', status: 'running' },
      { id: 'def', name: 'db', image: 'img', status: 'running' },
    ]),
  );
  await svc.reportState('c2', state([]));
  return { r, svc, events };
}

describe('migration flow', () => {
  it('runs every step in order and records timings', async () => {
    const calls: Calls = [];
    const { svc, events } = await setup(fakeCompute(calls));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    expect(m0).toMatchObject({ status: 'accepted', source_host: 'c1', dest_host: 'c2' });
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m).toMatchObject({ status: 'completed', freeze_ms: 900, checkpoint_ms: 300, transfer_ms: 100, restore_ms: 400, memory_bytes: 5000, progress: 100 });
    expect(calls).toEqual([
      'check_can_migrate_destination@c2',
      'check_can_migrate_source@c1',
      'check_can_migrate_destination@c2',
      'pre_migration@c2',
      'live_migration@c1',
      'post_migration_at_destination@c2',
      'cleanup_source@c1',
    ]);
    expect(events[0]).toBe('live_migration.start');
    expect(events[events.length - 1]).toBe('live_migration.end');
    expect((await svc.listContainers()).find((c) => c.name === 'web')?.host).toBe('c2');
  });

  it("records the disk pre-copy's rounds and bytes from the source's answer, and null when the disk moved in the freeze", async () => {
    const { svc } = await setup(fakeCompute([]));
    const plain = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    expect(await svc.getMigration(plain.uuid)).toMatchObject({ status: 'completed', disk_rounds: null, disk_live_bytes: null, disk_frozen_bytes: null });
    const precopied: Calls = [];
    const compute = fakeCompute(precopied);
    const withPrecopy: ComputeAPI = {
      async call(ctx, host, method, ...rest) {
        const r = await compute.call(ctx, host, method, ...rest);
        return method === 'live_migration' ? { ...r, disk_precopy: { rounds: 3, live_bytes: 300_000_000, frozen_bytes: 2_000_000 } } : r;
      },
    };
    const { svc: svc2 } = await setup(withPrecopy);
    const m0 = await svc2.migrateOnLiveState(new RequestContext(), 'web');
    await svc2.whenIdle();
    expect(await svc2.getMigration(m0.uuid)).toMatchObject({ status: 'completed', disk_rounds: 3, disk_live_bytes: 300_000_000, disk_frozen_bytes: 2_000_000 });
  });

  it("a failure before the freeze cleans the target and settles the source's record; the source is never frozen", async () => {
    const calls: Calls = [];
    const { svc, events } = await setup(fakeCompute(calls, { pre_migration: new TransferFailed('image stream cut') }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    expect(await svc.getMigration(m0.uuid)).toMatchObject({ status: 'failed', error: 'image stream cut' });
    expect(calls).not.toContain('live_migration@c1');
    // The source only checked it: its record is settled (the agent then touches no container, agent-foreign.test.ts).
    expect(calls.slice(-2)).toEqual(['rollback_at_destination@c2', 'rollback_at_source@c1']);
    expect(events).toContain('live_migration.error');
  });

  it('a failure after the freeze rolls back: target first, then the source from its checkpoint', async () => {
    const calls: Calls = [];
    const { svc, events } = await setup(fakeCompute(calls, { post_migration_at_destination: new RestoreFailed('criu restore failed') }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m.status).toBe('failed');
    expect(m.phase).toBe('rolled-back');
    expect(m.error).toMatch(/criu restore failed; rolled back to c1/);
    const tail = calls.slice(calls.indexOf('post_migration_at_destination@c2'));
    expect(tail).toEqual(['post_migration_at_destination@c2', 'rollback_at_destination@c2', 'rollback_at_source@c1']);
    expect(events).toEqual(expect.arrayContaining(['live_migration_rollback.start', 'live_migration_rollback.end', 'live_migration.error']));
  });

  it('once the target runs the container, a later failure never rolls it back', async () => {
    const calls: Calls = [];
    const { svc } = await setup(fakeCompute(calls, { cleanup_source: new Error('source agent gone') }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m.status).toBe('completed');
    expect(m.error).toMatch(/removing the stopped container on c1 failed/);
    expect(calls).not.toContain('rollback_at_destination@c2');
  });

  it('abort before the freeze cancels; abort after it rolls back', async () => {
    const calls: Calls = [];
    let svcRef: ConductorService | null = null;
    let uuid = '';
    const compute = fakeCompute(calls, {}, { pre_migration: () => void svcRef!.abort(new RequestContext(), uuid) });
    const { svc } = await setup(compute);
    svcRef = svc;
    uuid = (await svc.migrateOnLiveState(new RequestContext(), 'web')).uuid;
    await svc.whenIdle();
    expect((await svc.getMigration(uuid)).status).toBe('cancelled');
    expect(calls).not.toContain('live_migration@c1');

    const calls2: Calls = [];
    const compute2 = fakeCompute(calls2, {}, { live_migration: () => void svc2.abort(new RequestContext(), uuid2) });
    const { svc: svc2 } = await setup(compute2);
    const uuid2 = (await svc2.migrateOnLiveState(new RequestContext(), 'web')).uuid;
    await svc2.whenIdle();
    expect(await svc2.getMigration(uuid2)).toMatchObject({ status: 'cancelled', phase: 'rolled-back' });
    expect(calls2.slice(-2)).toEqual(['rollback_at_destination@c2', 'rollback_at_source@c1']);
  });

  it('an abort accepted between the flow reading the record and its step into the restore is honoured', async () => {
    // The race of the fault matrix's "abort racing completion", made exact: the flow reads the record
    // after the freeze, then the abort is accepted, then the flow steps into the restore.
    let armed = false;
    let racer: ConductorService | null = null;
    let uuid = '';
    let answered: Promise<unknown> = Promise.resolve();
    const lateAbort = <R extends Repository>(base: R): R =>
      new Proxy(base, {
        get(target, key) {
          if (key === 'fenced') return (...a: Parameters<Repository['fenced']>) => lateAbort(target.fenced(...a));
          if (key === 'getMigration') {
            return async (id: string) => {
              const m = await target.getMigration(id);
              if (armed) {
                armed = false;
                answered = racer!.abort(new RequestContext(), uuid);
                await answered;
              }
              return m;
            };
          }
          const v = Reflect.get(target, key) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    const calls: Calls = [];
    const { svc } = await setup(fakeCompute(calls, {}, { live_migration: () => void (armed = true) }), lateAbort(repo()));
    racer = svc;
    uuid = (await svc.migrateOnLiveState(new RequestContext(), 'web')).uuid;
    await svc.whenIdle();
    await expect(answered).resolves.toMatchObject({ abort_requested: true });
    expect(await svc.getMigration(uuid)).toMatchObject({ status: 'cancelled', phase: 'rolled-back' });
    expect(calls).not.toContain('post_migration_at_destination@c2');
    expect(calls.slice(-2)).toEqual(['rollback_at_destination@c2', 'rollback_at_source@c1']);
  });

  it('resumes a migration left in `running` by a crashed conductor, skipping finished steps', async () => {
    const { r, svc } = await setup(fakeCompute([]));
    // Accepted and driven up to the freeze by a conductor that then died: checks and pre_migration are recorded.
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    const done = await r.getSteps(m0.uuid);
    const crashed = {
      ...(await r.getMigration(m0.uuid))!,
      uuid: '11111111-2222-4333-8444-555555555555',
      status: 'running' as const,
      phase: 'checkpoint' as const,
    };
    await r.createMigration(crashed);
    for (const k of ['started_at', 'check_dest', 'check_source', 'check_dest_spec', 'pre']) await r.saveStep(crashed.uuid, k, done[k]);
    const calls: Calls = [];
    const m = await new MigrationFlow({ repo: r, compute: fakeCompute(calls), notify: async () => undefined, log }, new RequestContext(), crashed.uuid).run();
    expect(m.status).toBe('completed');
    expect(calls).toEqual(['live_migration@c1', 'post_migration_at_destination@c2', 'cleanup_source@c1']);
  });

  it('queues the second migration from the same source host until the first ends', async () => {
    const calls: Calls = [];
    const { svc } = await setup(fakeCompute(calls));
    const a = await svc.migrateOnLiveState(new RequestContext(), 'web');
    const b = await svc.migrateOnLiveState(new RequestContext(), 'db');
    expect((await svc.getMigration(b.uuid)).status).toBe('accepted');
    await svc.whenIdle();
    expect((await svc.getMigration(a.uuid)).status).toBe('completed');
    expect((await svc.getMigration(b.uuid)).status).toBe('completed');
    // All of a's steps came before any of b's.
    expect(calls.indexOf('cleanup_source@c1')).toBeLessThan(calls.lastIndexOf('check_can_migrate_source@c1'));
  });
});

describe('migrate() refusals', () => {
  it('names what is wrong', async () => {
    const { svc } = await setup(fakeCompute([]));
    const ctx = new RequestContext();
    await expect(svc.migrateOnLiveState(ctx, 'nope')).rejects.toThrow(/"nope" was not found/);
    await expect(svc.migrateOnLiveState(ctx, 'web', 'c1')).rejects.toThrow(/already runs on "c1"/);
    await expect(svc.migrateOnLiveState(ctx, 'web', 'c9')).rejects.toThrow(/"c9" is not known/);
    await svc.migrateOnLiveState(ctx, 'web');
    await expect(svc.migrateOnLiveState(ctx, 'web')).rejects.toThrow(/already being migrated/);
  });
});

describe('abort refusals', () => {
  it('refuses once the restore on the target has begun, and after the end', async () => {
    const { svc } = await setup(fakeCompute([]));
    let uuid = '';
    let refused: Error | null = null;
    const { svc: svc2 } = await setup(
      fakeCompute(
        [],
        {},
        {
          post_migration_at_destination: () => {
            svc2.abort(new RequestContext(), uuid).catch((e: Error) => (refused = e));
          },
        },
      ),
    );
    uuid = (await svc2.migrateOnLiveState(new RequestContext(), 'web')).uuid;
    await svc2.whenIdle();
    expect((await svc2.getMigration(uuid)).status).toBe('completed');
    expect(String(refused)).toMatch(/too late to abort/);
    const done = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    await expect(svc.abort(new RequestContext(), done.uuid)).rejects.toThrow(/already completed/);
  });
});

/** The safety rules of the flow: removing any of them fails one of these. */
describe('safety rules', () => {
  const timeout = () => new MessagingTimeout('Timed out waiting for a reply');

  it('a step with an unknown outcome is asked again, and the migration goes on', async () => {
    const calls: Calls = [];
    const { svc } = await setup(fakeCompute(calls, { live_migration: (n) => (n === 1 ? new MessagingUnavailable('connection to RabbitMQ lost') : undefined) }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    expect((await svc.getMigration(m0.uuid)).status).toBe('completed');
    expect(calls.filter((c) => c === 'live_migration@c1')).toHaveLength(2);
  });

  it('a restore whose outcome stays unknown ends in error, and the source is never restarted', async () => {
    const calls: Calls = [];
    const { svc, events } = await setup(fakeCompute(calls, { post_migration_at_destination: timeout, rollback_at_destination: timeout }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m.status).toBe('error');
    expect(m.error).toMatch(/could not confirm that it holds no running copy/);
    expect(m.error).toMatch(/was NOT restarted/);
    expect(calls).not.toContain('rollback_at_source@c1');
    expect(events).toContain('live_migration.error');
  });

  it('after the freeze the source restores only once the target confirmed its copy is gone', async () => {
    const calls: Calls = [];
    const { svc } = await setup(fakeCompute(calls, { live_migration: new TransferFailed('cut'), rollback_at_destination: new RollbackFailed('engine gone') }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    expect((await svc.getMigration(m0.uuid)).status).toBe('error');
    expect(calls).not.toContain('rollback_at_source@c1');
  });

  it('never rolls back once the target runs: a target that refuses the rollback is adopted', async () => {
    const calls: Calls = [];
    const { svc } = await setup(
      fakeCompute(calls, {
        post_migration_at_destination: (n) => (n === 1 ? new RestoreFailed('verify said exited') : undefined),
        rollback_at_destination: new TargetRunsContainer('web already runs on c2'),
      }),
    );
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m.status).toBe('completed');
    expect(calls).not.toContain('rollback_at_source@c1');
    expect(calls.slice(-2)).toEqual(['post_migration_at_destination@c2', 'cleanup_source@c1']);
    expect((await svc.listContainers()).find((c) => c.name === 'web')?.host).toBe('c2');
  });

  it('a source that cannot take the container back ends in error, not failed', async () => {
    const calls: Calls = [];
    const { svc } = await setup(
      fakeCompute(calls, { post_migration_at_destination: new RestoreFailed('criu'), rollback_at_source: new RollbackFailed('gone') }),
    );
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m.status).toBe('error');
    expect(m.error).toMatch(/restoring web on c1 did not succeed/);
  });

  it('a target that lost the upload grant (restarted) is asked for a fresh one, once', async () => {
    const calls: Calls = [];
    const refused = new TransferFailed('target refused the plan: 403: no upload was granted', { status: 403 });
    const { svc } = await setup(fakeCompute(calls, { live_migration: (n) => (n === 1 ? refused : undefined) }));
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    expect((await svc.getMigration(m0.uuid)).status).toBe('completed');
    const tail = calls.slice(calls.indexOf('live_migration@c1'));
    expect(tail.slice(0, 3)).toEqual(['live_migration@c1', 'pre_migration@c2', 'live_migration@c1']);
    // Any other transfer failure is not retried this way: it rolls back.
    const calls2: Calls = [];
    const { svc: svc2 } = await setup(fakeCompute(calls2, { live_migration: new TransferFailed('digest mismatch', { status: 422 }) }));
    const m1 = await svc2.migrateOnLiveState(new RequestContext(), 'web');
    await svc2.whenIdle();
    expect((await svc2.getMigration(m1.uuid)).status).toBe('failed');
    expect(calls2.filter((c) => c === 'pre_migration@c2')).toHaveLength(1);
  });

  it('a database failure inside a flow does not stop the conductor', async () => {
    const r = repo();
    const failing = Object.create(r) as SqliteRepository;
    let broken = true;
    failing.updateMigration = async (uuid, patch) => {
      if (patch.status === 'failed' && broken) {
        broken = false;
        throw new Error('disk I/O error');
      }
      return await r.updateMigration(uuid, patch);
    };
    const { svc } = await setup(fakeCompute([], { pre_migration: new TransferFailed('x') }), failing);
    const m0 = await svc.migrateOnLiveState(new RequestContext(), 'web');
    await svc.whenIdle();
    expect((await svc.getMigration(m0.uuid)).status).not.toBe('completed');
    // The conductor goes on: the next migration runs.
    const m1 = await svc.migrateOnLiveState(new RequestContext(), 'db');
    await svc.whenIdle();
    expect((await svc.getMigration(m1.uuid)).status).toBe('failed');
  });
});
