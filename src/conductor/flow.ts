/**
 * One migration driven end to end by the conductor, step by step over the compute agents:
 *
 *   pre-migrating  checks on both hosts, pre_migration on the target (image, shell, channel)
 *   running        live_migration on the source: the freeze, checkpoint, transfer
 *   then the memory mode's phases (modes/): the restore on the target, for a mode whose memory
 *   follows the restore the wait until it all arrived, then cleanup on the source
 *   completed | failed (rolled back) | cancelled (aborted) | error (outcome unknown: operator)
 *
 * The invariant: afterwards the container runs on exactly one host with its state, and the
 * record says which. The rules that keep it (each has a unit test):
 *  - a step whose outcome is unknown (no reply, bus lost) is asked again (steps are
 *    idempotent) until it answers or the retry deadline passes; then the migration ends in
 *    `error` with what to check, never `failed` on a guess;
 *  - never roll back once the target runs the container;
 *  - after the freeze, the source restores only after the target confirmed its copy is gone;
 *  - every status change is persisted before the step it announces, and each step's result
 *    is saved, so a restarted conductor resumes where the flow was.
 * Plain TypeScript: the agents are behind ComputeAPI (the bus, or in-process for tests).
 */
import type { RequestContext } from '../common/context.js';
import {
  ClaimLost,
  EngineError,
  FerryError,
  MessagingTimeout,
  MessagingUnavailable,
  MigrationAborted,
  OutcomeUnknown,
  RequestExpired,
  TargetRunsContainer,
  TransferFailed,
} from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { sleep } from '../common/sleep.js';
import type { ComputeArgs, ComputeMethod, ComputeResult } from '../compute/methods.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import type { CheckDestinationResult, CheckSourceResult, LiveMigrationResult, PostMigrationResult, PreMigrationResult } from '../compute/steps.js';
import type { Migration, MigrationPhase, MigrationStatus } from '../objects/migration.js';
import { flowModeNamed, flowModeOfRestore, type AfterSendStep, type FlowMode } from './modes/index.js';
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
  | 'live_migration_abort.end'
  | 'live_migration_force_complete.start'
  | 'live_migration_force_complete.end';

export interface RetryPolicy {
  /** How long a step with an unknown outcome is asked again, ms. */
  deadlineMs: number;
  /** Wait before the first repeat, ms; grows to 5 s. */
  backoffMs: number;
  /** How often a target is asked how memory that follows the restore is arriving, ms (default 500). */
  settlePollMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { deadlineMs: 300_000, backoffMs: 1000 };

export interface FlowDeps {
  repo: Repository;
  compute: ComputeAPI;
  /** Sends `container.<event>`; never throws (a lost notification must not break a migration). */
  notify(ctx: RequestContext, event: EventName, m: Migration, error?: Error): Promise<void>;
  log: Logger;
  retry?: RetryPolicy;
  /**
   * Whether this conductor still holds the migration's claim (several conductors). When it
   * does not, the flow stops at once: no rollback, no step asked again, no write (the repo it
   * is given is fenced too). Absent: a lone conductor, always.
   */
  stillOwner?: () => Promise<boolean>;
}

interface Steps {
  started_at?: number;
  check_dest?: CheckDestinationResult;
  check_source?: CheckSourceResult;
  check_dest_spec?: CheckDestinationResult;
  pre?: PreMigrationResult;
  live?: LiveMigrationResult;
  post?: PostMigrationResult;
  /** A memory mode's settle step, under the name the mode gives it (modes/: the target confirmed all memory arrived). */
  [settleStep: string]: unknown;
}

/** No answer came (time-out, connection lost, request expired): the step may or may not have run. */
export function isUnknownOutcome(e: unknown): boolean {
  return e instanceof MessagingTimeout || e instanceof MessagingUnavailable || e instanceof RequestExpired;
}

/** The target refused the upload grant itself (unknown after a restart, or expired): a fresh grant may help. */
function grantRefused(e: unknown): boolean {
  const status = e instanceof TransferFailed ? e.details.status : undefined;
  return status === 401 || status === 403;
}

/** A rollback that failed because the engine did not answer (restarting, busy): asking again may succeed. */
function isEngineTrouble(e: unknown): boolean {
  return e instanceof EngineError;
}

export class MigrationFlow {
  private steps: Steps = {};
  private readonly retry: RetryPolicy;

  constructor(
    private readonly deps: FlowDeps,
    private readonly ctx: RequestContext,
    private readonly uuid: string,
  ) {
    this.retry = deps.retry ?? DEFAULT_RETRY;
  }

  private async load(): Promise<Migration> {
    const m = await this.deps.repo.getMigration(this.uuid);
    if (!m) throw new Error(`migration ${this.uuid} is not in the database`);
    return m;
  }

  /** Move to `status`/`phase` (with `extra`); `from` is the record as just read, when the caller has it. */
  private async set(status: MigrationStatus, phase: MigrationPhase | null, extra: Partial<Migration> = {}, from?: Migration): Promise<Migration> {
    const cur = from ?? (await this.load());
    return await this.deps.repo.updateMigration(this.uuid, this.transition(cur, status, phase, extra));
  }

  /** As set(), unless an abort was asked for: tested and set in one statement, against the abort's own guard. Null: aborted. */
  private async setUnlessAborted(status: MigrationStatus, phase: MigrationPhase | null, extra: Partial<Migration>, from: Migration): Promise<Migration | null> {
    const r = await this.deps.repo.updateMigrationIf(this.uuid, this.transition(from, status, phase, extra), 'not-aborted');
    return r.applied ? r.migration : null;
  }

  private transition(cur: Migration, status: MigrationStatus, phase: MigrationPhase | null, extra: Partial<Migration>): Partial<Migration> {
    assertTransition(this.uuid, cur.status, status);
    const progress = PROGRESS[phase ? (`${status}:${phase}` as const) : status] ?? cur.progress;
    this.deps.log.info({ migration: this.uuid, status, phase }, 'migration status');
    return { status, phase, progress, ...extra };
  }

  /**
   * Ask a host for a step; an unknown outcome (or what `alsoRetry` accepts) is asked again
   * until the retry deadline, then OutcomeUnknown (or the last error).
   */
  private async ask<M extends ComputeMethod>(host: string, method: M, args: ComputeArgs<M>, alsoRetry?: (e: unknown) => boolean): Promise<ComputeResult<M>> {
    const deadline = Date.now() + this.retry.deadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.compute.call(this.ctx, host, method, args);
      } catch (e) {
        if (!isUnknownOutcome(e)) {
          if (!alsoRetry?.(e) || Date.now() >= deadline) throw e;
          this.deps.log.warn({ migration: this.uuid, host, method, attempt, err: (e as Error).message }, 'step failed on the engine; asking again');
          await sleep(Math.min(this.retry.backoffMs * attempt, 5000, Math.max(0, deadline - Date.now())));
          continue;
        }
        const why = (e as Error).message;
        await this.assertOwner();
        if (Date.now() >= deadline) {
          throw new OutcomeUnknown(`${host} gave no answer to ${method} for ${Math.round(this.retry.deadlineMs / 1000)} s (${why})`, { host, method });
        }
        this.deps.log.warn({ migration: this.uuid, host, method, attempt, err: why }, 'no answer from the host; asking again');
        await sleep(Math.min(this.retry.backoffMs * attempt, 5000, Math.max(0, deadline - Date.now())));
      }
    }
  }

  private async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const done = this.steps[name];
    if (done !== undefined) return done as T;
    const r = await fn();
    this.steps[name] = r;
    await this.deps.repo.saveStep(this.uuid, name, r);
    return r;
  }

  private async abortRequested(): Promise<boolean> {
    return (await this.load()).abort_requested;
  }

  /** Run (or resume) the migration to a final status; rejects only when the database itself fails. */
  async run(): Promise<Migration> {
    try {
      this.steps = (await this.deps.repo.getSteps(this.uuid)) as Steps;
      return await this.drive();
    } catch (err) {
      // Another conductor drives it now: whatever went wrong here is not this flow's to undo.
      if (err instanceof ClaimLost) throw err;
      await this.assertOwner();
      return this.fail(err as Error);
    }
  }

  private async assertOwner(): Promise<void> {
    if (this.deps.stillOwner && !(await this.deps.stillOwner())) {
      throw new ClaimLost(`migration ${this.uuid} is driven by another conductor now (this one lost its claim)`, { kind: 'migration', id: this.uuid });
    }
  }

  private async drive(): Promise<Migration> {
    const { notify } = this.deps;
    const ctx = this.ctx;
    const id = this.uuid;
    let m = await this.load();
    if (m.status === 'accepted') {
      if (await this.abortRequested()) return this.cancel();
      await this.step('started_at', async () => Date.now());
      m = await this.set('pre-migrating', 'checks');
      await notify(ctx, 'live_migration.start', m);
    }
    const source = m.source_host;
    const dest = m.dest_host as string;

    if (m.status === 'pre-migrating') {
      const d = await this.step('check_dest', () => this.ask(dest, 'check_can_migrate_destination', { migration_id: id, source_host: source }));
      const s = await this.step('check_source', () =>
        this.ask(source, 'check_can_migrate_source', { migration_id: id, container: m.container_id, dest_host: dest, dest: d.dest }),
      );
      await this.step('check_dest_spec', () =>
        this.ask(dest, 'check_can_migrate_destination', { migration_id: id, source_host: source, source: s.source, spec: s.spec }),
      );
      if (await this.abortRequested()) return this.cancel();
      m = await this.set('pre-migrating', 'prepare');
      await notify(ctx, 'live_migration_pre.start', m);
      const pre = await this.step('pre', () =>
        this.ask(dest, 'pre_migration', { migration_id: id, source_host: source, source: s.source, spec: s.spec, export: s.export }),
      );
      m = await this.deps.repo.updateMigration(id, { image_bytes: pre.image_bytes, connections_preserved: pre.connections_preserved });
      await notify(ctx, 'live_migration_pre.end', m);
      // Last moment an abort costs the workload nothing.
      if (await this.abortRequested()) return this.cancel();
      m = await this.set('running', 'checkpoint');
    }

    if (m.status === 'running' || m.status === 'post-migrating') {
      const mode = m.mode;
      const live = await this.step('live', () => this.liveMigration(source, dest, mode));
      const pre = this.steps.pre as PreMigrationResult;
      const processed = flowModeNamed(live.mode).processedAtSend(live);
      // The container is frozen: every write before the restore is downtime, so the counters go in one write with the next status.
      const counters: Partial<Migration> = {
        mode: live.mode,
        checkpoint_ms: live.checkpoint_ms,
        transfer_ms: live.transfer_ms,
        memory_bytes: live.memory_bytes,
        memory_total_bytes: live.memory_total_bytes,
        memory_processed_bytes: processed,
        memory_remaining_bytes: live.memory_total_bytes !== null && processed !== null ? Math.max(0, live.memory_total_bytes - processed) : null,
        rootfs_bytes: live.rootfs_bytes,
        volume_bytes: live.volume_bytes,
        transferred_bytes: live.transferred_bytes + (pre.image_bytes ?? 0),
        disk_rounds: live.disk_precopy?.rounds ?? null,
        disk_live_bytes: live.disk_precopy?.live_bytes ?? null,
        disk_frozen_bytes: live.disk_precopy?.frozen_bytes ?? null,
      };
      return this.afterSend(flowModeNamed(live.mode), counters);
    }
    return m;
  }

  /**
   * live_migration with the upload grant pre_migration gave. A target that restarted (or a
   * conductor that resumed late) may have lost or expired that grant: then the prepared target
   * is asked for a fresh one (pre_migration answers again without redoing anything) and the
   * send is tried once more.
   */
  private async liveMigration(source: string, dest: string, mode: Migration['mode']): Promise<LiveMigrationResult> {
    const id = this.uuid;
    try {
      return await this.ask(source, 'live_migration', { migration_id: id, upload: (this.steps.pre as PreMigrationResult).upload, mode });
    } catch (e) {
      if (!grantRefused(e)) throw e;
      this.deps.log.warn({ migration: id, err: (e as Error).message }, 'the target refused the upload grant; asking it for a fresh one');
      const s = this.steps.check_source as CheckSourceResult;
      const pre = await this.ask(dest, 'pre_migration', { migration_id: id, source_host: source, source: s.source, spec: s.spec, export: s.export });
      this.steps.pre = pre;
      await this.deps.repo.saveStep(id, 'pre', pre);
      return this.ask(source, 'live_migration', { migration_id: id, upload: pre.upload, mode });
    }
  }

  /** Whether a phase's step already happened (its result is saved); cleanup always runs (it completes). */
  private stepDone(mode: FlowMode, step: AfterSendStep): boolean {
    if (step === 'restore') return this.steps.post !== undefined;
    if (step === 'settle') return mode.settle !== undefined && this.steps[mode.settle.step] !== undefined;
    return false;
  }

  /** What is written with the status change into a phase, by the step done before it. */
  private entering(before: AfterSendStep | null, counters: Partial<Migration>, m: Migration): Partial<Migration> {
    if (before === 'restore') {
      const live = this.steps.live as LiveMigrationResult;
      const post = this.steps.post as PostMigrationResult;
      return { restore_ms: post.restore_ms, freeze_ms: Math.max(0, post.restored_at - live.frozen_at), connections_preserved: post.connections_preserved };
    }
    if (before === 'settle') return { memory_processed_bytes: m.memory_total_bytes, memory_remaining_bytes: m.memory_total_bytes === null ? null : 0 };
    return counters;
  }

  /**
   * After the send: the mode's phases in order (restore, maybe settle, cleanup), each entered
   * with its status change unless the migration is already in it, each skipped once its step is
   * done (a resumed flow goes on where it was). `counters` go with the first status change.
   */
  private async afterSend(mode: FlowMode, counters: Partial<Migration> = {}): Promise<Migration> {
    const id = this.uuid;
    let m = await this.load();
    const dest = m.dest_host as string;
    let before: AfterSendStep | null = null;
    for (const ph of mode.phases) {
      if (this.stepDone(mode, ph.step)) {
        before = ph.step;
        continue;
      }
      // The last moment an abort can still roll back without asking the target: before its restore.
      if (ph.step === 'restore' && m.status === 'running' && m.abort_requested) throw new MigrationAborted(mode.abortedAfterFreeze);
      if (m.status !== ph.status || m.phase !== ph.phase) {
        const extra = this.entering(before, counters, m);
        if (ph.step === 'restore') {
          // An abort accepted since `m` was read wins: the step into the restore is guarded by it.
          const entered = await this.setUnlessAborted(ph.status, ph.phase, extra, m);
          if (!entered) throw new MigrationAborted(mode.abortedAfterFreeze);
          m = entered;
        } else {
          m = await this.set(ph.status, ph.phase, extra, m);
        }
        if (ph.step === 'cleanup') await this.deps.notify(this.ctx, 'live_migration_post_dest.end', m);
      }
      if (ph.step === 'restore') {
        const live = this.steps.live as LiveMigrationResult;
        // The restore is asked for first; its notification goes out while it runs.
        const restoring = this.step('post', () => this.ask(dest, 'post_migration_at_destination', { migration_id: id, ...mode.restoreArgs(live) }));
        restoring.catch(() => undefined); // awaited below; a failure must not count as unhandled meanwhile
        await this.deps.notify(this.ctx, 'live_migration_post_dest.start', m);
        await restoring;
      } else if (ph.step === 'settle' && mode.settle) {
        const settle = mode.settle;
        const entered = m;
        const done = await this.step(settle.step, () =>
          settle.run({
            migrationId: id,
            dest,
            migration: entered,
            pollMs: this.retry.settlePollMs ?? 500,
            ask: (host, method, args) => this.ask(host, method, args),
            update: async (fields) => void (await this.deps.repo.updateMigration(id, fields)),
          }),
        );
        this.deps.log.info({ migration: id, mode: mode.name, completed_at: done.completed_at }, 'all memory arrived on the target');
      } else if (ph.step === 'cleanup') {
        return this.cleanUpSource(m);
      }
      before = ph.step;
    }
    return m;
  }

  /** The container runs on the target: clean the source up, note it. Nothing here may roll back. */
  private async cleanUpSource(m: Migration): Promise<Migration> {
    const live = this.steps.live as LiveMigrationResult;
    let cleanupError: string | null = null;
    try {
      await this.ask(m.source_host, 'cleanup_source', { migration_id: this.uuid, container_id: live.container_id });
    } catch (e) {
      cleanupError = `migrated, but removing the stopped container on ${m.source_host} failed: ${(e as Error).message}`;
      this.deps.log.warn({ migration: this.uuid, err: (e as Error).message }, 'source cleanup failed');
    }
    return this.complete(cleanupError);
  }

  /** Record that the container runs on the target. */
  private async complete(warning: string | null): Promise<Migration> {
    let m = await this.load();
    const post = this.steps.post as PostMigrationResult;
    try {
      await this.deps.repo.setContainerHost(m.container_id, m.dest_host as string, post.container_id);
    } catch (e) {
      this.deps.log.warn({ migration: this.uuid, err: (e as Error).message }, 'could not update the container location');
    }
    const started = this.steps.started_at ?? Date.parse(m.created_at);
    m = await this.set('completed', null, { total_ms: Date.now() - started, error: warning, progress: 100 });
    await this.deps.notify(this.ctx, 'live_migration.end', m);
    return m;
  }

  /** Abort before the freeze: undo what the target prepared; the source never stopped. */
  private async cancel(): Promise<Migration> {
    const m0 = await this.load();
    let note = '';
    if (m0.dest_host && m0.status !== 'accepted') {
      try {
        await this.ask(m0.dest_host, 'rollback_at_destination', { migration_id: this.uuid });
      } catch (e) {
        note = `; what ${m0.dest_host} prepared may be left there (${(e as Error).message})`;
      }
    }
    const m = await this.set('cancelled', null, { error: `aborted by request before the freeze; the container did not stop${note}` });
    await this.deps.notify(this.ctx, 'live_migration_abort.end', m);
    return m;
  }

  /** End in `error`: the operator must look. The message says what to check. */
  private async giveUp(reason: string, err: Error): Promise<Migration> {
    this.deps.log.error({ migration: this.uuid, err: reason }, 'migration outcome unknown; needs the operator');
    const m = await this.set('error', 'needs-operator', { error: reason });
    await this.deps.notify(this.ctx, 'live_migration.error', m, err);
    return m;
  }

  private async fail(err: Error): Promise<Migration> {
    const id = this.uuid;
    let m = await this.load();
    const reason = err instanceof FerryError ? err.message : `${err.name}: ${err.message}`;
    this.deps.log.error({ migration: id, status: m.status, err: reason }, 'migration step failed');
    const aborted = err instanceof MigrationAborted;
    const name = m.container_name;
    const dest = m.dest_host as string;
    const restored = this.steps.post ? flowModeOfRestore(this.steps.post) : null;
    if (restored?.settle && this.steps[restored.settle.step] === undefined) {
      // The target ran the container before all its memory arrived: no copy is whole, no rollback.
      return this.giveUp(restored.settle.stranded({ migrationId: id, reason, container: name, source: m.source_host, dest }), err);
    }
    if (this.steps.post?.running) {
      // Restored and running on the target: rolling back now would lose the only running copy.
      return this.complete(`migrated, but a later bookkeeping step failed: ${reason}`);
    }
    if (isBeforeFreeze(m.status)) {
      // Nothing was frozen: the source still runs; remove whatever the target prepared.
      let note = '';
      if (m.status !== 'accepted' && m.dest_host) {
        try {
          await this.ask(m.dest_host, 'rollback_at_destination', { migration_id: id });
        } catch (e) {
          note = `; the shell prepared on ${m.dest_host} may be left there (${(e as Error).message})`;
        }
      }
      if (this.steps.check_source) {
        // The source noted the migration when it checked it; it froze nothing, so its record only needs settling.
        try {
          await this.ask(m.source_host, 'rollback_at_source', { migration_id: id, container_id: this.steps.check_source.spec.id });
        } catch (e) {
          note += `; ${m.source_host} still holds a record of this migration (${(e as Error).message})`;
        }
      }
      m = await this.set('failed', null, { error: `${reason}${note}` });
      await this.deps.notify(this.ctx, 'live_migration.error', m, err);
      return m;
    }
    // After the freeze. First the target: its copy must be gone (or, if it runs, the migration is done).
    m = await this.deps.repo.updateMigration(id, { phase: 'rollback' });
    await this.deps.notify(this.ctx, 'live_migration_rollback.start', m);
    try {
      await this.ask(dest, 'rollback_at_destination', { migration_id: id }, isEngineTrouble);
    } catch (e) {
      if (e instanceof TargetRunsContainer) return this.adoptRunningTarget(reason, e);
      return this.giveUp(
        `${reason}; then ${dest} could not confirm that it holds no running copy (${(e as Error).message}). ` +
          `The source ${m.source_host} was NOT restarted, so that ${name} cannot run twice: check ${dest} ` +
          `(docker ps -a --filter label=org.openstack.ferry.migration=${id}); if nothing runs there, restore it on ${m.source_host} ` +
          `(docker start --checkpoint ${this.steps.live?.checkpoint_name ?? '<checkpoint>'} ${name}).`,
        e as Error,
      );
    }
    // The target holds nothing: now the source may take the container back.
    try {
      // The container as the source itself described it (the record may hold a name the caller gave).
      const cid = this.steps.live?.container_id ?? this.steps.check_source?.spec.id ?? m.container_id;
      await this.ask(m.source_host, 'rollback_at_source', { migration_id: id, container_id: cid }, isEngineTrouble);
    } catch (e) {
      return this.giveUp(
        `${reason}; the target copy was removed, but restoring ${name} on ${m.source_host} did not succeed (${(e as Error).message}). ` +
          `Check ${m.source_host}: the container is stopped there with its checkpoint.`,
        e as Error,
      );
    }
    const status: MigrationStatus = aborted ? 'cancelled' : 'failed';
    m = await this.set(status, 'rolled-back', { error: `${reason}; rolled back to ${m.source_host}` });
    await this.deps.notify(this.ctx, 'live_migration_rollback.end', m);
    await this.deps.notify(this.ctx, aborted ? 'live_migration_abort.end' : 'live_migration.error', m, aborted ? undefined : err);
    return m;
  }

  /** The target refused a rollback because it runs the container: learn its restore and finish there. */
  private async adoptRunningTarget(reason: string, refusal: Error): Promise<Migration> {
    const dest = (await this.load()).dest_host as string;
    try {
      this.steps.post = await this.ask(dest, 'post_migration_at_destination', { migration_id: this.uuid });
      await this.deps.repo.saveStep(this.uuid, 'post', this.steps.post);
    } catch (e) {
      return this.giveUp(
        `${reason}; ${(await this.load()).container_name} runs on ${dest} (${refusal.message}) but ${dest} did not confirm its restore ` +
          `(${(e as Error).message}); check it there, the source was not restarted.`,
        e as Error,
      );
    }
    // The restore is done: the mode's remaining phases (memory still arriving, cleanup) finish there.
    try {
      return await this.afterSend(flowModeOfRestore(this.steps.post));
    } catch (e) {
      if (e instanceof ClaimLost) throw e;
      return this.fail(e as Error);
    }
  }
}
