/** The frame every method's run shares: probe around the migration, downtime, verification. */
import type { BenchCloud } from '../cloud.js';
import { Probe, type ProbeTarget } from '../probe.js';
import { computeDowntime } from '../stats.js';
import type { MethodName, ProbeSample, RunResult, Workload } from '../types.js';
import { applyVerdict, emptyEvidence, numbersIn, type StateEvidence } from '../verdict.js';

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
    probed: true,
    attempt: 1,
    probe: { answers: 0, failures: 0, answers_after: 0 },
    detail: {},
  };
}

/** Timings and sizes a method reports about its migration. */
export type MigrationOutcome = Partial<
  Pick<RunResult, 'tool_freeze_ms' | 'total_ms' | 'checkpoint_ms' | 'transfer_ms' | 'restore_ms' | 'memory_bytes' | 'transferred_bytes'>
> & {
  detail?: RunResult['detail'];
};

/**
 * Start the probe, wait until the workload answers, run `migrate`, wait for answers after it,
 * and fill the result's downtime and probe counts. Returns the samples for verification.
 */
export async function probedMigration(
  result: RunResult,
  target: ProbeTarget,
  migrate: () => Promise<MigrationOutcome>,
  log: (s: string) => void,
  beforeFreeze?: () => Promise<void>,
): Promise<ProbeSample[]> {
  const probe = new Probe(target);
  probe.start();
  try {
    const warm = await probe.waitAnswers(20, 0, 20_000);
    if (!warm)
      throw new Error(
        `the probe got no answers from ${target.host}:${target.port} before the migration ${probe.stderr ? `(${probe.stderr.trim().slice(-200)})` : ''}`,
      );
    // The state read (counter) or written (Redis marker) last thing before the freeze.
    if (beforeFreeze) await beforeFreeze();
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

/** How a runner reaches its workload's state, where it ran before and where it runs after the move. */
export interface StateAccess {
  /** redis-cli against the source copy (before) and the moved one (after); stdout trimmed. */
  redisBefore(args: string[]): Promise<string>;
  redisAfter(args: string[]): Promise<string>;
  /** Counter: the process's output (stdout) so far, before the freeze. */
  counterBefore(): Promise<string>;
  /** Counter: what the process printed since `since` (epoch ms, the migration's start), after the move. */
  counterAfter(since: number): Promise<string>;
  /** No running copy left where the workload came from. */
  sourceGone(): Promise<boolean>;
}

export const MARKER_KEY = 'ferry:bench:marker';

/** Read or write the state just before the freeze: the counter's last printed value, the Redis marker. */
export async function stateBeforeFreeze(w: Workload, access: StateAccess, ev: StateEvidence): Promise<void> {
  if (w.probe === 'redis') {
    const token = `before-freeze-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
    const r = await access.redisBefore(['SET', MARKER_KEY, token]);
    if (r !== 'OK') throw new Error(`could not write the marker key before the freeze: ${r}`);
    ev.marker_before = token;
  } else {
    const n = numbersIn(await access.counterBefore());
    ev.counter_before = n.length ? n[n.length - 1] : null;
  }
}

/** Read the state where the workload now runs, and look for the source copy. Errors leave a field null. */
export async function stateAfterMove(w: Workload, access: StateAccess, ev: StateEvidence, since: number): Promise<void> {
  const quiet = <T>(p: Promise<T>): Promise<T | null> => p.catch(() => null);
  if (w.probe === 'redis') {
    ev.marker_after = await quiet(access.redisAfter(['GET', MARKER_KEY]));
    const n = await quiet(access.redisAfter(['DBSIZE']));
    ev.dbsize_after = n !== null && /^\d+$/.test(n) ? Number(n) : null;
  } else {
    const out = await quiet(access.counterAfter(since));
    ev.counter_after = out === null ? null : numbersIn(out);
  }
  ev.source_gone = await quiet(access.sourceGone());
}

/**
 * A probed migration judged on its evidence: the state read before the freeze and after the move,
 * the source copy gone. Throws only what the migration throws.
 */
export async function judgedMigration(
  result: RunResult,
  w: Workload,
  target: ProbeTarget,
  access: StateAccess,
  migrate: () => Promise<MigrationOutcome>,
  log: (s: string) => void,
): Promise<void> {
  const ev = emptyEvidence();
  let since = 0;
  await probedMigration(result, target, migrate, log, async () => {
    await stateBeforeFreeze(w, access, ev);
    since = Date.now();
  });
  await stateAfterMove(w, access, ev, since);
  applyVerdict(result, w, ev);
}

export function errMessage(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}
