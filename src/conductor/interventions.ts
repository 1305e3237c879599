/** What an operator may do to a migration under way: abort it, or force it to complete (post-copy). */
import type { RequestContext } from '../common/context.js';
import { InvalidMigrationState } from '../common/errors.js';
import { isFinal, type Migration } from '../objects/migration.js';
import type { Claims } from './claims.js';
import { requirePostCopy } from './hosts.js';
import type { ConductorDeps } from './options.js';
import type { Queries } from './queries.js';
import type { MigrationQueue } from './queue.js';
import { isBeforeFreeze } from './statemachine.js';

export class Interventions {
  constructor(
    private readonly deps: ConductorDeps,
    private readonly queries: Queries,
    private readonly claims: Claims,
    private readonly queue: MigrationQueue,
  ) {}

  /**
   * Nova's force-complete: switch a migration that has not frozen its container yet to post-copy,
   * so that it completes without waiting for its memory to be copied. After the freeze of a
   * stop-and-copy the memory is already on its way: 409. A post-copy already is one: no change.
   */
  async forceComplete(ctx: RequestContext, uuid: string): Promise<Migration> {
    const { repo, notify, log } = this.deps;
    const m = await this.queries.getMigration(uuid);
    if (isFinal(m.status)) throw new InvalidMigrationState(`migration ${uuid} is already ${m.status}; there is nothing to complete`);
    if (m.mode === 'post-copy') return m;
    if (!isBeforeFreeze(m.status)) {
      throw new InvalidMigrationState(
        `migration ${uuid} is ${m.status}${m.phase ? ` (${m.phase})` : ''}: its container is already frozen and copied stop-and-copy; force-complete switches to post-copy only before the freeze`,
      );
    }
    requirePostCopy(await this.queries.listHosts(), [m.source_host, m.dest_host ?? '']);
    // The start goes out beside the switch, not before it: sending must not delay it past the freeze.
    const started = notify(ctx, 'live_migration_force_complete.start', m);
    const updated = await repo.updateMigration(uuid, { mode: 'post-copy' });
    await started;
    await notify(ctx, 'live_migration_force_complete.end', updated);
    log.info({ migration: uuid, status: m.status, request: ctx.request_id }, 'force-complete: the migration switches to post-copy');
    return updated;
  }

  async abort(ctx: RequestContext, uuid: string): Promise<Migration> {
    const { repo, notify, log } = this.deps;
    const m = await this.queries.getMigration(uuid);
    refuseAbort(m);
    // Tested and set in one statement against the flow's step into the restore (also guarded): an abort accepted here is honoured.
    const asked = await repo.updateMigrationIf(uuid, { abort_requested: true }, 'abortable');
    if (!asked.applied) {
      refuseAbort(asked.migration);
      throw new InvalidMigrationState(`migration ${uuid} can no longer be aborted`);
    }
    let updated = asked.migration;
    await notify(ctx, 'live_migration_abort.start', updated);
    // Still queued, here or nowhere (its claim free or ours): no flow runs it, so end it here. Queued
    // at another conductor: that one starts it at its next pass, and its flow cancels at once.
    if (!this.queue.isRunning(uuid) && updated.status === 'accepted' && (await this.claims.claim('migration', uuid))) {
      this.queue.remove(uuid);
      updated = await repo
        .fenced('migration', uuid, this.claims.owner)
        .updateMigration(uuid, { status: 'cancelled', error: 'aborted by request while queued' });
      await this.claims.release('migration', uuid);
      await notify(ctx, 'live_migration_abort.end', updated);
    }
    log.info({ migration: uuid, status: updated.status, beforeFreeze: isBeforeFreeze(m.status) }, 'abort requested');
    return updated;
  }
}

/** Why a migration in this state cannot be aborted (the same conditions as the repository's `abortable` guard). */
function refuseAbort(m: Migration): void {
  if (isFinal(m.status)) throw new InvalidMigrationState(`migration ${m.uuid} is already ${m.status}; there is nothing to abort`);
  if (m.status === 'post-migrating') {
    // The restore on the target has begun; rolling back now could leave no running copy.
    throw new InvalidMigrationState(`migration ${m.uuid} is restoring the container on ${m.dest_host}; too late to abort`);
  }
  if (m.mode === 'post-copy' && m.status === 'running' && (m.phase === 'restore' || m.phase === 'post-copy')) {
    // The target runs (or is starting) the container while its pages still come from the source.
    throw new InvalidMigrationState(`migration ${m.uuid} runs the container on ${m.dest_host} in post-copy; too late to abort`);
  }
}
