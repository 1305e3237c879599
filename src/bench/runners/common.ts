/** The frame every method's run shares: probe around the migration, downtime, verification. */
import type { BenchCloud } from '../cloud.js';
import { Probe, type ProbeTarget } from '../probe.js';
import { computeDowntime } from '../stats.js';
import type { MethodName, ProbeSample, RunResult, Workload } from '../types.js';

export interface RunContext {
  cloud: BenchCloud;
  /** Which bench address (10.250.0.200 + slot % 20) this run uses. */
  slot: number;
  run: number;
  log: (s: string) => void;
}

export interface Method {
  name: MethodName;
  label: string;
  supports(w: Workload): boolean;
  run(w: Workload, ctx: RunContext): Promise<RunResult>;
  /** Release what the method holds for the whole bench (agents, servers). */
  close?(): Promise<void>;
}

export function emptyResult(method: MethodName, w: Workload, run: number): RunResult {
  return {
    method,
    workload: w.name,
    run,
    ok: false,
    error: null,
    downtime_ms: null,
    tool_freeze_ms: null,
    total_ms: null,
    checkpoint_ms: null,
    transfer_ms: null,
    restore_ms: null,
    memory_bytes: null,
    transferred_bytes: null,
    verified: null,
    probe: { answers: 0, failures: 0, answers_after: 0 },
    detail: {},
  };
}

/** Timings and sizes a method reports about its migration. */
export type MigrationOutcome = Partial<Pick<RunResult, 'tool_freeze_ms' | 'total_ms' | 'checkpoint_ms' | 'transfer_ms' | 'restore_ms' | 'memory_bytes' | 'transferred_bytes'>> & {
  detail?: RunResult['detail'];
};

/**
 * Start the probe, wait until the workload answers, run `migrate`, wait for answers after it,
 * and fill the result's downtime and probe counts. Returns the samples for verification.
 */
export async function probedMigration(result: RunResult, target: ProbeTarget, migrate: () => Promise<MigrationOutcome>, log: (s: string) => void): Promise<ProbeSample[]> {
  const probe = new Probe(target);
  probe.start();
  try {
    const warm = await probe.waitAnswers(20, 0, 20_000);
    if (!warm) throw new Error(`the probe got no answers from ${target.host}:${target.port} before the migration ${probe.stderr ? `(${probe.stderr.trim().slice(-200)})` : ''}`);
    const t0 = Date.now();
    const out = await migrate();
    const t1 = Date.now();
    Object.assign(result, { ...out, detail: { ...result.detail, ...(out.detail ?? {}) } });
    const back = await probe.waitAnswers(20, t1, 60_000);
    if (!back) log(`  the probe got no answers within 60 s after the migration of ${result.workload} (${result.method})`);
    await probe.stop();
    const dt = computeDowntime(probe.samples, t0, t1);
    result.downtime_ms = back && dt ? dt.downtime_ms : null;
    result.detail.started_at = t0; // epoch ms: lines up the services' debug timings with the probe
    if (dt) {
      result.detail.probe_last_before = dt.last_before - t0;
      result.detail.probe_first_after = dt.first_after - t0;
    }
    result.probe = {
      answers: probe.samples.filter((s) => s.ok).length,
      failures: probe.samples.filter((s) => !s.ok).length,
      answers_after: probe.answersSince(t1),
    };
    if (dt) {
      const before = probe.samples.find((s) => s.ok && s.t === dt.last_before);
      const after = probe.samples.find((s) => s.ok && s.t === dt.first_after);
      result.detail.answer_before = before?.v ?? null;
      result.detail.answer_after = after?.v ?? null;
    }
    return probe.samples;
  } finally {
    await probe.stop();
  }
}

/** The counter went on across the move: the first count after is not below the last before. */
export function counterContinued(result: RunResult): boolean | null {
  const a = Number(result.detail.answer_before);
  const b = Number(result.detail.answer_after);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  return b >= a;
}

/**
 * Judge a run on its state after the move: Redis keeps every key (`dbsize` reads it where it now
 * runs), the counter goes on; ok only with that and a client-observed downtime.
 */
export async function judgeState(result: RunResult, w: Workload, dbsize: () => Promise<number>): Promise<void> {
  if (w.probe === 'redis') {
    const n = await dbsize();
    result.detail.dbsize_after = n;
    result.verified = n === w.keys;
  } else {
    result.verified = counterContinued(result);
  }
  result.ok = result.verified !== false && result.downtime_ms !== null;
  if (!result.ok && !result.error) result.error = result.verified === false ? 'state not intact after the move' : 'no client-observed downtime (probe)';
}

export function errMessage(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}
