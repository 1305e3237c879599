/**
 * `[compute] live_migration_completion_timeout`: a migration still unfinished that long after it
 * was accepted is aborted, or forced to complete in post-copy (Nova's timeout action).
 */
import type { RequestContext } from '../common/context.js';
import { isFinal, type Migration } from '../objects/migration.js';
import type { ConductorDeps } from './options.js';

/** What the timer does when it fires (interventions.ts). */
export interface TimeoutActions {
  abort(ctx: RequestContext, uuid: string): Promise<Migration>;
  forceComplete(ctx: RequestContext, uuid: string): Promise<Migration>;
}

/**
 * Starts `m`'s timer (null when there is no limit). The flow sees either action between two
 * steps; what cannot apply any more (a post-copy already running) is logged.
 */
export function completionTimer(deps: ConductorDeps, actions: TimeoutActions, ctx: RequestContext, m: Migration): NodeJS.Timeout | null {
  const { repo, opts, log } = deps;
  const seconds = opts.completionTimeout ?? 0;
  if (seconds <= 0) return null;
  const due = Date.parse(m.created_at) + seconds * 1000 - Date.now();
  const timer = setTimeout(
    () => {
      void (async () => {
        const cur = await repo.getMigration(m.uuid);
        if (!cur || isFinal(cur.status)) return;
        const action = opts.timeoutAction ?? 'abort';
        log.warn({ migration: m.uuid, status: cur.status, phase: cur.phase, seconds, action }, 'migration exceeded live_migration_completion_timeout');
        if (action === 'force_complete') await actions.forceComplete(ctx, m.uuid);
        else await actions.abort(ctx, m.uuid);
      })().catch((e: unknown) => log.warn({ migration: m.uuid, err: (e as Error).message }, 'the completion timeout action could not apply'));
    },
    Math.max(0, due),
  );
  timer.unref();
  return timer;
}
