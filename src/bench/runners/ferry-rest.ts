/** Ferry through its REST API (Keystone token, POST migrate, poll the migration): stop-and-copy, and post-copy. */
import type { RunResult, Workload } from '../types.js';
import { mayRetry } from '../verdict.js';
import type { Method, MigrationOutcome, RunContext } from './common.js';
import { containerRun, type ContainerSubject } from './container.js';

async function migrateRest(ctx: RunContext, s: ContainerSubject, postCopy: boolean): Promise<MigrationOutcome> {
  const { ferry, target } = ctx.cloud;
  const t0 = Date.now();
  const m0 = await ferry.migrate(s.name, target.name, { post_copy: postCopy });
  const m = await ferry.waitMigration(m0.uuid, { everyMs: 50 });
  const observed = Date.now() - t0;
  if (m.status !== 'completed') throw new Error(`migration ${m.uuid} ${m.status}: ${m.error ?? ''}`);
  return {
    tool_freeze_ms: m.freeze_ms,
    total_ms: m.total_ms,
    checkpoint_ms: m.checkpoint_ms,
    transfer_ms: m.transfer_ms,
    restore_ms: m.restore_ms,
    memory_bytes: m.memory_bytes,
    transferred_bytes: m.transferred_bytes,
    // Post-copy: total_ms runs until the last page arrived (and the source was cleaned up).
    detail: { migration: m.uuid, mode: m.mode, client_total_ms: observed, memory_total_bytes: m.memory_total_bytes },
  };
}

function waitKnown(ctx: RunContext, s: ContainerSubject): Promise<void> {
  return ctx.cloud.ferry.waitKnown(s.name, ctx.cloud.source.name);
}

function restMethod(name: 'ferry-rest' | 'ferry-rest-postcopy', label: string, postCopy: boolean): Method {
  return {
    name,
    label,
    supports: () => true,
    async run(w: Workload, ctx: RunContext): Promise<RunResult> {
      const first = await containerRun(
        name,
        w,
        ctx,
        (s) => migrateRest(ctx, s, postCopy),
        (s) => waitKnown(ctx, s),
      );
      if (!mayRetry(first)) return first;
      // Other tests restart Ferry's services on the same cloud: one retry, with a fresh container.
      // The failed try stays in the results as its own row (allTries); a run that lost state is
      // the finding itself and is not retried.
      ctx.log(`  ${name} failed (${first.error}); retrying once (the failed try is reported too)`);
      const r = await containerRun(
        name,
        w,
        { ...ctx, slot: ctx.slot + 10 },
        (s) => migrateRest(ctx, s, postCopy),
        (s) => waitKnown(ctx, s),
      );
      r.attempt = 2;
      r.detail.retried_after = first.error;
      r.earlier_tries = [first];
      return r;
    },
  };
}

export const ferryRest = restMethod('ferry-rest', 'Ferry (REST API), stop-and-copy', false);
export const ferryRestPostCopy = restMethod('ferry-rest-postcopy', 'Ferry (REST API), post-copy (total = until all pages arrived)', true);
