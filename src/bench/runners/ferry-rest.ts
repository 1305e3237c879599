/** Method 1: Ferry through its REST API (Keystone token, POST migrate, poll the migration). */
import { ferryApi, waitUntil } from '../cloud.js';
import type { RunResult, Workload } from '../types.js';
import type { Method, MigrationOutcome, RunContext } from './common.js';
import { containerRun, type ContainerSubject } from './container.js';

interface MigrationRecord {
  uuid: string;
  status: string;
  phase: string | null;
  error: string | null;
  freeze_ms: number | null;
  checkpoint_ms: number | null;
  transfer_ms: number | null;
  restore_ms: number | null;
  total_ms: number | null;
  memory_bytes: number | null;
  transferred_bytes: number | null;
}

const FINAL = ['completed', 'failed', 'cancelled'];

async function migrateRest(ctx: RunContext, s: ContainerSubject): Promise<MigrationOutcome> {
  const { cloud } = ctx;
  const t0 = Date.now();
  const r = await ferryApi<{ migration: MigrationRecord }>(cloud, 'POST', `/containers/${encodeURIComponent(s.name)}/migrate`, { host: cloud.target.name });
  if (r.status !== 202) throw new Error(`POST migrate: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  const uuid = r.body.migration.uuid;
  const deadline = Date.now() + 600_000;
  let m = r.body.migration;
  while (!FINAL.includes(m.status)) {
    if (Date.now() > deadline) throw new Error(`migration ${uuid} stuck in ${m.status}/${m.phase}`);
    await new Promise((res) => setTimeout(res, 50));
    const g = await ferryApi<{ migration: MigrationRecord }>(cloud, 'GET', `/migrations/${uuid}`);
    if (g.status === 200) m = g.body.migration;
  }
  const observed = Date.now() - t0;
  if (m.status !== 'completed') throw new Error(`migration ${uuid} ${m.status}: ${m.error ?? ''}`);
  return {
    tool_freeze_ms: m.freeze_ms,
    total_ms: m.total_ms,
    checkpoint_ms: m.checkpoint_ms,
    transfer_ms: m.transfer_ms,
    restore_ms: m.restore_ms,
    memory_bytes: m.memory_bytes,
    transferred_bytes: m.transferred_bytes,
    detail: { migration: uuid, client_total_ms: observed },
  };
}

async function waitKnown(ctx: RunContext, s: ContainerSubject): Promise<void> {
  await waitUntil(
    `the conductor to see ${s.name} running on ${ctx.cloud.source.name}`,
    async () => {
      const r = await ferryApi<{ containers?: { name: string; host: string; status: string }[] }>(ctx.cloud, 'GET', '/containers');
      return !!r.body.containers?.some((c) => c.name === s.name && c.host === ctx.cloud.source.name && c.status === 'running');
    },
    60_000,
    300,
  );
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
