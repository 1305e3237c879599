/** Method 1: Ferry through its REST API (Keystone token, POST migrate, poll the migration). */
import type { RunResult, Workload } from '../types.js';
import type { Method, MigrationOutcome, RunContext } from './common.js';
import { containerRun, type ContainerSubject } from './container.js';

async function migrateRest(ctx: RunContext, s: ContainerSubject): Promise<MigrationOutcome> {
  const { ferry, target } = ctx.cloud;
  const t0 = Date.now();
  const m0 = await ferry.migrate(s.name, target.name);
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
    detail: { migration: m.uuid, client_total_ms: observed },
  };
}

function waitKnown(ctx: RunContext, s: ContainerSubject): Promise<void> {
  return ctx.cloud.ferry.waitKnown(s.name, ctx.cloud.source.name);
}

export const ferryRest: Method = {
  name: 'ferry-rest',
  label: 'Ferry (REST API)',
  supports: () => true,
  async run(w: Workload, ctx: RunContext): Promise<RunResult> {
    let r = await containerRun('ferry-rest', w, ctx, (s) => migrateRest(ctx, s), (s) => waitKnown(ctx, s));
    if (!r.ok) {
      // Other tests restart Ferry's services on the same cloud: one retry, with a fresh container.
      ctx.log(`  ferry-rest failed (${r.error}); retrying once`);
      const first = r.error;
      r = await containerRun('ferry-rest', w, { ...ctx, slot: ctx.slot + 10 }, (s) => migrateRest(ctx, s), (s) => waitKnown(ctx, s));
      r.detail.retried_after = first;
    }
    return r;
  },
};
