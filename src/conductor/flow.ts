/**
 * One migration driven end to end by the conductor, step by step over the compute agents:
 *
 *   pre-migrating  checks on both hosts, pre_migration on the target (image, shell, channel)
 *   running        live_migration on the source: the freeze, checkpoint, transfer
 *   post-migrating post_migration_at_destination (restore), then cleanup on the source
 *   completed      | failed (rolled back after the freeze) | cancelled (aborted)
 *
 * Every status change is persisted before the step it announces is started, and each step's
 * result is saved, so a restarted conductor resumes the flow where it was (the agents' steps
 * are idempotent). Plain TypeScript: no HTTP or AMQP here, the agents are behind ComputeAPI.
 */
import type { RequestContext } from '../bus/context.js';
import { FerryError, MigrationAborted } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import type {
  CheckDestinationResult,
  CheckSourceResult,
  LiveMigrationResult,
  PostMigrationResult,
  PreMigrationResult,
} from '../compute/steps.js';
import type { Migration, MigrationStatus } from '../objects/migration.js';
import type { Repository } from './repository.js';
import { PROGRESS, assertTransition, isBeforeFreeze } from './statemachine.js';

export type EventName =
  | 'live_migration.start'
  | 'live_migration.end'
  | 'live_migration.error'
  | 'live_migration_pre.start'
  | 'live_migration_pre.end'
  | 'live_migration_post_dest.start'
  | 'live_migration_post_dest.end'
  | 'live_migration_rollback.start'
  | 'live_migration_rollback.end'
  | 'live_migration_abort.start'
  | 'live_migration_abort.end';

export interface FlowDeps {
  repo: Repository;
  compute: ComputeAPI;
  /** Sends `container.<event>`; never throws (a lost notification must not break a migration). */
  notify(ctx: RequestContext, event: EventName, m: Migration, error?: Error): Promise<void>;
  log: Logger;
}

interface Steps {
  started_at?: number;
  check_dest?: CheckDestinationResult;
  check_source?: CheckSourceResult;
  check_dest_spec?: CheckDestinationResult;
  pre?: PreMigrationResult;
  live?: LiveMigrationResult;
  post?: PostMigrationResult;
}

export class MigrationFlow {
  private steps: Steps;

  constructor(
    private readonly deps: FlowDeps,
    private readonly ctx: RequestContext,
    private readonly uuid: string,
  ) {
    this.steps = deps.repo.getSteps(uuid) as Steps;
  }

  private get m(): Migration {
    const m = this.deps.repo.getMigration(this.uuid);
    if (!m) throw new Error(`migration ${this.uuid} is not in the database`);
    return m;
  }

  private set(status: MigrationStatus, phase: string | null, extra: Partial<Migration> = {}): Migration {
    const cur = this.m;
    assertTransition(this.uuid, cur.status, status);
    const progress = PROGRESS[phase ? `${status}:${phase}` : status] ?? cur.progress;
    this.deps.log.info({ migration: this.uuid, status, phase }, 'migration status');
    return this.deps.repo.updateMigration(this.uuid, { status, phase, progress, ...extra });
  }

  private async step<K extends keyof Steps>(name: K, fn: () => Promise<NonNullable<Steps[K]>>): Promise<NonNullable<Steps[K]>> {
    const done = this.steps[name];
    if (done !== undefined) return done as NonNullable<Steps[K]>;
    const r = await fn();
    this.steps[name] = r;
    this.deps.repo.saveStep(this.uuid, name, r);
    return r;
  }

  private abortRequested(): boolean {
    return this.m.abort_requested;
  }

  /** Run (or resume) the migration to a final status; never throws. */
  async run(): Promise<Migration> {
    try {
      return await this.drive();
    } catch (err) {
      return this.fail(err as Error);
    }
  }

  private async drive(): Promise<Migration> {
    const { compute, notify } = this.deps;
    const ctx = this.ctx;
    const id = this.uuid;
    let m = this.m;
    if (m.status === 'accepted') {
      if (this.abortRequested()) return this.cancel();
      await this.step('started_at', async () => Date.now());
      m = this.set('pre-migrating', 'checks');
      await notify(ctx, 'live_migration.start', m);
    }
    const source = m.source_host;
    const dest = m.dest_host as string;

    if (m.status === 'pre-migrating') {
      const d = await this.step('check_dest', () =>
        compute.checkCanMigrateDestination(ctx, dest, { migration_id: id, source_host: source }),
      );
      const s = await this.step('check_source', () =>
        compute.checkCanMigrateSource(ctx, source, { migration_id: id, container: m.container_id, dest_host: dest, dest: d.dest }),
      );
      await this.step('check_dest_spec', () =>
        compute.checkCanMigrateDestination(ctx, dest, { migration_id: id, source_host: source, source: s.source, spec: s.spec }),
      );
      if (this.abortRequested()) return this.cancel();
      m = this.set('pre-migrating', 'prepare');
      await notify(ctx, 'live_migration_pre.start', m);
      const pre = await this.step('pre', () =>
        compute.preMigration(ctx, dest, { migration_id: id, source_host: source, source: s.source, spec: s.spec, export: s.export }),
      );
      m = this.deps.repo.updateMigration(id, { image_bytes: pre.image_bytes, connections_preserved: pre.connections_preserved });
      await notify(ctx, 'live_migration_pre.end', m);
      // Last moment an abort costs the workload nothing.
      if (this.abortRequested()) return this.cancel();
      m = this.set('running', 'checkpoint');
    }

    if (m.status === 'running') {
      const pre = this.steps.pre as PreMigrationResult;
      const live = await this.step('live', () =>
        compute.liveMigration(ctx, source, { migration_id: id, upload: pre.upload, rollback_on_failure: false }),
      );
      m = this.deps.repo.updateMigration(id, {
        checkpoint_ms: live.checkpoint_ms,
        transfer_ms: live.transfer_ms,
        memory_bytes: live.memory_bytes,
        rootfs_bytes: live.rootfs_bytes,
        volume_bytes: live.volume_bytes,
        transferred_bytes: live.transferred_bytes + (pre.image_bytes ?? 0),
      });
      if (this.abortRequested()) throw new MigrationAborted('aborted by request after the freeze; rolled back to the source');
      m = this.set('post-migrating', 'restore');
    }

    if (m.status === 'post-migrating') {
      const live = this.steps.live as LiveMigrationResult;
      await notify(ctx, 'live_migration_post_dest.start', m);
      const post = await this.step('post', () => compute.postMigrationAtDestination(ctx, dest, { migration_id: id }));
      m = this.set('post-migrating', 'cleanup', {
        restore_ms: post.restore_ms,
        freeze_ms: Math.max(0, post.restored_at - live.frozen_at),
        connections_preserved: post.connections_preserved,
      });
      await notify(ctx, 'live_migration_post_dest.end', m);
      // The container runs on the target now: from here on nothing may roll it back.
      let cleanupError: string | null = null;
      try {
        await compute.cleanupSource(ctx, source, { migration_id: id, container_id: live.container_id });
      } catch (e) {
        cleanupError = `migrated, but removing the stopped container on ${source} failed: ${(e as Error).message}`;
        this.deps.log.warn({ migration: id, err: (e as Error).message }, 'source cleanup failed');
      }
      return this.complete(cleanupError);
    }
    return m;
  }

  /** The container runs on the target: record it. Nothing after this point may roll back. */
  private async complete(warning: string | null): Promise<Migration> {
    let m = this.m;
    const post = this.steps.post as PostMigrationResult;
    try {
      this.deps.repo.setContainerHost(m.container_id, m.dest_host as string, post.container_id);
    } catch (e) {
      this.deps.log.warn({ migration: this.uuid, err: (e as Error).message }, 'could not update the container location');
    }
    const started = this.steps.started_at ?? Date.parse(m.created_at);
    m = this.set('completed', null, { total_ms: Date.now() - started, error: warning, progress: 100 });
    await this.deps.notify(this.ctx, 'live_migration.end', m);
    return m;
  }

  /** Abort before the freeze: undo what the target prepared; the source never stopped. */
  private async cancel(): Promise<Migration> {
    const m0 = this.m;
    if (m0.dest_host && m0.status !== 'accepted') {
      await this.deps.compute.rollbackAtDestination(this.ctx, m0.dest_host, { migration_id: this.uuid }).catch((e: Error) => {
        this.deps.log.warn({ migration: this.uuid, err: e.message }, 'target cleanup after abort failed');
      });
    }
    const m = this.set('cancelled', null, { error: 'aborted by request before the freeze; the container did not stop' });
    await this.deps.notify(this.ctx, 'live_migration_abort.end', m);
    return m;
  }

  private async fail(err: Error): Promise<Migration> {
    const id = this.uuid;
    let m = this.m;
    const reason = err instanceof FerryError ? err.message : `${err.name}: ${err.message}`;
    this.deps.log.error({ migration: id, status: m.status, err: reason }, 'migration step failed');
    const aborted = err instanceof MigrationAborted;
    if (this.steps.post?.running) {
      // Restored and running on the target: rolling back now would lose the only running copy.
      return this.complete(`migrated, but a later bookkeeping step failed: ${reason}`);
    }
    if (isBeforeFreeze(m.status)) {
      // Nothing was frozen: the source still runs; remove whatever the target prepared.
      if (m.status !== 'accepted' && m.dest_host) {
        await this.deps.compute.rollbackAtDestination(this.ctx, m.dest_host, { migration_id: id }).catch((e: Error) => {
          this.deps.log.warn({ migration: id, err: e.message }, 'target cleanup failed');
        });
      }
      m = this.deps.repo.updateMigration(id, { status: 'failed', phase: null, error: reason });
      await this.deps.notify(this.ctx, 'live_migration.error', m, err);
      return m;
    }
    // After the freeze: make sure the target copy is gone, then restore on the source from its checkpoint.
    m = this.deps.repo.updateMigration(id, { phase: 'rollback' });
    await this.deps.notify(this.ctx, 'live_migration_rollback.start', m);
    let rollbackError: string | null = null;
    try {
      if (m.dest_host) await this.deps.compute.rollbackAtDestination(this.ctx, m.dest_host, { migration_id: id });
    } catch (e) {
      rollbackError = `target cleanup: ${(e as Error).message}`;
    }
    try {
      const live = this.steps.live;
      await this.deps.compute.rollbackAtSource(this.ctx, m.source_host, { migration_id: id, container_id: live?.container_id ?? m.container_id });
    } catch (e) {
      rollbackError = `${rollbackError ? `${rollbackError}; ` : ''}source restore: ${(e as Error).message}`;
    }
    const status: MigrationStatus = aborted ? 'cancelled' : 'failed';
    const error = rollbackError ? `${reason}; rollback incomplete (${rollbackError})` : `${reason}; rolled back to ${m.source_host}`;
    m = this.deps.repo.updateMigration(id, { status, phase: rollbackError ? 'rollback-failed' : 'rolled-back', error });
    await this.deps.notify(this.ctx, 'live_migration_rollback.end', m);
    await this.deps.notify(this.ctx, aborted ? 'live_migration_abort.end' : 'live_migration.error', m, aborted ? undefined : err);
    return m;
  }
}
