/**
 * Post-copy in the conductor: the flow's order and its failure rules, force-complete and the
 * completion timeout, over a scripted ComputeAPI (pure logic; the real thing is proven on the
 * dev cloud by test/integration/control/postcopy.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { InvalidMigrationState, PostCopyUnsupported, RestoreFailed } from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import type { HostModes } from '../../../src/compute/driver.js';
import type { ComputeMethod, ComputeResult } from '../../../src/compute/methods.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import type { MemoryArrivalResult } from '../../../src/compute/steps.js';
import type { FlowDeps } from '../../../src/conductor/flow.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { ConductorService, type ConductorOptions } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { HostState } from '../../../src/objects/host.js';
import { hostState } from '../../helpers/host-state.js';

const log = pino({ level: 'silent' });
const ctx = () => new RequestContext();

const YES: HostModes = { post_copy: { ok: true, reason: null }, pre_copy: { ok: false, reason: 'no mem_dirty_track' } };
const state = (containers: HostState['containers'], modes: HostModes | null = YES) => hostState(containers, modes);
const NOT_PERMITTED: HostModes = {
  post_copy: { ok: false, reason: 'post-copy is not permitted on c2 ([compute] permit_post_copy = false)' },
  pre_copy: YES.pre_copy,
};

interface Script {
  /** What each post_copy_status call answers, in order (the last one repeats). */
  statuses?: MemoryArrivalResult['state'][];
  /** post_migration_at_destination fails with this (the target never ran the container). */
  restoreFails?: Error;
  /** Called when live_migration runs (e.g. to ask for something while the freeze is under way). */
  onLive?: () => void;
  /** live_migration waits this long (ms). */
  liveMs?: number;
}

/** The agents' answers as a post-copy-capable pair of hosts would give them. */
function compute(calls: string[], script: Script = {}): ComputeAPI {
  let status = 0;
  return {
    async call<M extends ComputeMethod>(_c: RequestContext, host: string, method: M, args: unknown): Promise<ComputeResult<M>> {
      const a = args as { mode?: string; page_server?: unknown };
      calls.push(`${method}@${host}${a.mode ? `:${a.mode}` : ''}${a.page_server ? ':lazy' : ''}`);
      const lazy = a.mode === 'post-copy';
      const results: { [K in ComputeMethod]: unknown } = {
        check_can_migrate_destination: { dest: {}, image_present: true },
        check_can_migrate_source: { source: {}, spec: {}, export: { address: 'a', token: 't' } },
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
          mode: lazy ? 'post-copy' : 'stop-and-copy',
          page_server: lazy ? { address: '127.0.0.1', port: 40000 } : null,
          memory_total_bytes: lazy ? 100_000_000 : 5000,
          container_id: 'abc',
          checkpoint_name: 'ck',
          fast_checkpoint: true,
          frozen_at: 1000,
          checkpoint_ms: 200,
          transfer_ms: 20,
          memory_bytes: lazy ? 1_300_000 : 5000,
          rootfs_bytes: 10,
          volume_bytes: 0,
          transferred_bytes: 1_300_010,
          parts: [],
        },
        post_migration_at_destination: {
          container_id: 'new',
          running: true,
          restored_at: 1500,
          place_ms: 5,
          restore_ms: 300,
          garp_sent: true,
          connections_preserved: true,
          post_copy: Boolean(a.page_server),
        },
        post_copy_status: null,
        cleanup_source: { container_removed: true, volumes_removed: [] },
        rollback_at_destination: { container_removed: true, volumes_removed: [], image_removed: false },
        rollback_at_source: { container_id: 'abc', running: true, from_checkpoint: false, state_kept: true },
      };
      if (method === 'live_migration') {
        script.onLive?.();
        if (script.liveMs) await sleep(script.liveMs);
      }
      if (method === 'post_migration_at_destination' && script.restoreFails) throw script.restoreFails;
      if (method === 'post_copy_status') {
        const seq = script.statuses ?? ['fetching', 'complete'];
        const st = seq[Math.min(status++, seq.length - 1)];
        const resident = st === 'fetching' ? Math.min(100_000_000, status * 30_000_000) : null;
        return {
          state: st,
          error: st === 'failed' ? 'the page server closed the connection' : null,
          completed_at: st === 'complete' ? 2000 : null,
          resident_bytes: resident,
        } as ComputeResult<M>;
      }
      return results[method] as ComputeResult<M>;
    },
  };
}

async function setup(
  c: ComputeAPI,
  opts: Partial<ConductorOptions> = {},
  destModes: HostModes | null = YES,
  notify: FlowDeps['notify'] = async () => undefined,
) {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const repo = new SqliteRepository(db);
  const svc = new ConductorService(
    repo,
    c,
    notify,
    { maxConcurrentPerHost: 2, serviceDownTime: 30, retry: { deadlineMs: 300, backoffMs: 10, settlePollMs: 5 }, ...opts },
    log,
  );
  await svc.reportState('c1', state([{ id: 'abc', name: 'web', image: 'img', status: 'running' }]));
  await svc.reportState('c2', state([], destModes));
  return { repo, svc };
}

describe('post-copy through the flow', () => {
  it('restores on the target before the pages, stays running/post-copy until every page arrived, then cleans the source', async () => {
    const calls: string[] = [];
    const { svc, repo } = await setup(compute(calls, { statuses: ['fetching', 'fetching', 'complete'] }));
    const m0 = await svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true });
    expect(m0.mode).toBe('post-copy');
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m).toMatchObject({
      status: 'completed',
      mode: 'post-copy',
      freeze_ms: 500,
      memory_total_bytes: 100_000_000,
      memory_processed_bytes: 100_000_000,
      memory_remaining_bytes: 0,
    });
    expect(calls.slice(4)).toEqual([
      'live_migration@c1:post-copy',
      'post_migration_at_destination@c2:lazy',
      'post_copy_status@c2',
      'post_copy_status@c2',
      'post_copy_status@c2',
      'cleanup_source@c1',
    ]);
    expect((await repo.getSteps(m0.uuid)).post_copy_done).toMatchObject({ state: 'complete' });
  });

  it("follows the pages as they arrive: memory_processed/remaining_bytes from the target's resident memory", async () => {
    const seen: [number | null, number | null][] = [];
    const c = compute([], { statuses: ['fetching', 'fetching', 'fetching', 'complete'] });
    const { svc } = await setup({
      call: async (cx, host, method, args) => {
        if (method === 'post_copy_status') {
          const m = (await svc.listMigrations())[0];
          seen.push([m.memory_processed_bytes, m.memory_remaining_bytes]);
        }
        return c.call(cx, host, method, args);
      },
    });
    const m0 = await svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true });
    await svc.whenIdle();
    // Before the first answer only the images (1.3 MB) had moved; then 30 MB, 60 MB, 90 MB of 100 MB resident.
    expect(seen).toEqual([
      [1_300_000, 98_700_000],
      [30_000_000, 70_000_000],
      [60_000_000, 40_000_000],
      [90_000_000, 10_000_000],
    ]);
    expect(await svc.getMigration(m0.uuid)).toMatchObject({ memory_processed_bytes: 100_000_000, memory_remaining_bytes: 0 });
  });

  it('a post-copy that cannot finish ends in error, never completed nor rolled back (the target ran it)', async () => {
    const calls: string[] = [];
    const { svc } = await setup(compute(calls, { statuses: ['fetching', 'failed'] }));
    const m0 = await svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true });
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m.status).toBe('error');
    expect(m.phase).toBe('needs-operator');
    expect(m.error).toMatch(/post-copy of web did not finish: .*page server closed the connection/);
    expect(m.error).toMatch(/Ferry does not choose a copy/);
    expect(calls).not.toContain('rollback_at_source@c1');
    expect(calls).not.toContain('cleanup_source@c1');
  });

  it('a target whose lazy restore fails before its process ran is rolled back, then the source resumes', async () => {
    const calls: string[] = [];
    const { svc } = await setup(compute(calls, { restoreFails: new RestoreFailed('the lazy-pages daemon could not reach the page server') }));
    const m0 = await svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true });
    await svc.whenIdle();
    const m = await svc.getMigration(m0.uuid);
    expect(m).toMatchObject({ status: 'failed', phase: 'rolled-back' });
    expect(calls.slice(-2)).toEqual(['rollback_at_destination@c2', 'rollback_at_source@c1']);
  });

  it('abort is refused once the target runs the container in post-copy', async () => {
    const calls: string[] = [];
    let refusal: unknown;
    const c = compute(calls, { statuses: ['fetching', 'fetching', 'fetching', 'complete'] });
    const { svc } = await setup({
      call: async (cx, host, method, args) => {
        if (method === 'post_copy_status' && refusal === undefined) refusal = await svc.abort(ctx(), uuid).catch((e: unknown) => e);
        return c.call(cx, host, method, args);
      },
    });
    const uuid = (await svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true })).uuid;
    await svc.whenIdle();
    expect(refusal).toBeInstanceOf(InvalidMigrationState);
    expect((refusal as Error).message).toMatch(/in post-copy; too late to abort/);
    expect((await svc.getMigration(uuid)).status).toBe('completed');
  });

  it('post-copy is refused at once, with the reason, when a host does not permit it; nothing is recorded', async () => {
    const { svc } = await setup(compute([]), {}, NOT_PERMITTED);
    await expect(svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true })).rejects.toThrow(PostCopyUnsupported);
    await expect(svc.migrateOnLiveState(ctx(), 'web', null, { post_copy: true })).rejects.toThrow(/permit_post_copy = false/);
    expect(await svc.listMigrations()).toEqual([]);
    const { svc: old } = await setup(compute([]), {}, null);
    await expect(old.migrateOnLiveState(ctx(), 'web', null, { post_copy: true })).rejects.toThrow(/c2 did not report its migration modes/);
  });
});

describe('force-complete and the completion timeout', () => {
  it('force-complete before the freeze switches the migration to post-copy', async () => {
    const calls: string[] = [];
    let forced: unknown;
    const c = compute(calls);
    const { svc } = await setup({
      call: async (cx, host, method, args) => {
        if (method === 'pre_migration') forced = await svc.forceComplete(ctx(), uuid);
        return c.call(cx, host, method, args);
      },
    });
    const uuid = (await svc.migrateOnLiveState(ctx(), 'web')).uuid;
    await svc.whenIdle();
    expect(forced).toMatchObject({ mode: 'post-copy', status: 'pre-migrating' });
    expect(await svc.getMigration(uuid)).toMatchObject({ status: 'completed', mode: 'post-copy' });
    expect(calls).toContain('live_migration@c1:post-copy');
  });

  it('force-complete is announced: start with the migration as it was, end switched to post-copy; a refused one is not', async () => {
    const events: string[] = [];
    const notify: FlowDeps['notify'] = async (_c, event, m) => {
      if (event.startsWith('live_migration_force_complete')) events.push(`${event} ${m.mode}`);
    };
    const c = compute([]);
    const { svc } = await setup(
      {
        call: async (cx, host, method, args) => {
          if (method === 'pre_migration') await svc.forceComplete(ctx(), uuid);
          return c.call(cx, host, method, args);
        },
      },
      {},
      YES,
      notify,
    );
    const uuid = (await svc.migrateOnLiveState(ctx(), 'web')).uuid;
    await svc.whenIdle();
    expect(events).toEqual(['live_migration_force_complete.start stop-and-copy', 'live_migration_force_complete.end post-copy']);
    await expect(svc.forceComplete(ctx(), uuid)).rejects.toThrow(/already completed/);
    expect(events).toHaveLength(2);
  });

  it('force-complete after the freeze of a stop-and-copy is refused (409), as is one on a finished migration', async () => {
    let refusal: unknown;
    const c = compute([]);
    const { svc } = await setup({
      call: async (cx, host, method, args) => {
        if (method === 'post_migration_at_destination') refusal = await svc.forceComplete(ctx(), uuid).catch((e: unknown) => e);
        return c.call(cx, host, method, args);
      },
    });
    const uuid = (await svc.migrateOnLiveState(ctx(), 'web')).uuid;
    await svc.whenIdle();
    expect(refusal).toBeInstanceOf(InvalidMigrationState);
    expect((refusal as Error).message).toMatch(/already frozen and copied stop-and-copy/);
    expect((await svc.getMigration(uuid)).mode).toBe('stop-and-copy');
    await expect(svc.forceComplete(ctx(), uuid)).rejects.toThrow(/already completed; there is nothing to complete/);
  });

  it('force-complete is refused when the hosts cannot do post-copy', async () => {
    let refusal: unknown;
    const c = compute([]);
    const { svc } = await setup(
      {
        call: async (cx, host, method, args) => {
          if (method === 'pre_migration') refusal = await svc.forceComplete(ctx(), uuid).catch((e: unknown) => e);
          return c.call(cx, host, method, args);
        },
      },
      {},
      NOT_PERMITTED,
    );
    const uuid = (await svc.migrateOnLiveState(ctx(), 'web')).uuid;
    await svc.whenIdle();
    expect(refusal).toBeInstanceOf(PostCopyUnsupported);
    expect(await svc.getMigration(uuid)).toMatchObject({ status: 'completed', mode: 'stop-and-copy' });
  });

  it('the completion timeout aborts (action abort) or forces post-copy (action force_complete)', async () => {
    const slow = (calls: string[]) => {
      const c = compute(calls);
      return {
        call: async (cx: RequestContext, host: string, method: ComputeMethod, args: unknown) => {
          if (method === 'pre_migration') await sleep(1500);
          return c.call(cx, host, method as never, args as never);
        },
      } as ComputeAPI;
    };
    const a: string[] = [];
    const { svc: s1 } = await setup(slow(a), { completionTimeout: 1, timeoutAction: 'abort' });
    const m1 = await s1.migrateOnLiveState(ctx(), 'web');
    await s1.whenIdle();
    expect(await s1.getMigration(m1.uuid)).toMatchObject({ status: 'cancelled' });
    expect(a).not.toContain('live_migration@c1:stop-and-copy');

    const b: string[] = [];
    const { svc: s2 } = await setup(slow(b), { completionTimeout: 1, timeoutAction: 'force_complete' });
    const m2 = await s2.migrateOnLiveState(ctx(), 'web');
    await s2.whenIdle();
    expect(await s2.getMigration(m2.uuid)).toMatchObject({ status: 'completed', mode: 'post-copy' });
    expect(b).toContain('live_migration@c1:post-copy');
  });
});
