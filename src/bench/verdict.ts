/**
 * What a bench run proves about the workload's state, as pure functions of the evidence the
 * runners collect (issue 20): the counter read from the process's own output before the freeze and
 * after the move (strictly greater: a restarted process counts from 1, a stopped one stands still,
 * and a file carried in the container's layer proves neither); for Redis a marker key written just
 * before the freeze read back where it now runs, plus DBSIZE; the source copy gone. A failed try
 * stays in the results next to its retry.
 */
import type { RunResult, Workload } from './types.js';

/** The evidence of one run; null = not read (the verdict then cannot be yes). */
export interface StateEvidence {
  /** Counter: the last value the process had printed when the migration was asked for (so before the freeze). */
  counter_before: number | null;
  /** Counter: values the process printed after the freeze began, in order (from the restored process). */
  counter_after: number[] | null;
  /** Redis: the marker written before the freeze, and what GET returns after the move. */
  marker_before: string | null;
  marker_after: string | null;
  dbsize_after: number | null;
  /** No running copy of the workload left where it came from. */
  source_gone: boolean | null;
}

export function emptyEvidence(): StateEvidence {
  return { counter_before: null, counter_after: null, marker_before: null, marker_after: null, dbsize_after: null, source_gone: null };
}

export type Verdict = 'ok' | 'lost state' | 'source still running' | 'failed';

export interface StateJudgement {
  /** The workload's state went on across the move (null: not judged, the run failed before). */
  verified: boolean;
  /** Why not, in words, or null. */
  reason: string | null;
}

/** The numbers in a log's lines (other lines ignored). */
export function numbersIn(text: string): number[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

/** Redis holds the loaded keys plus the marker. */
export function expectedDbsize(w: Workload): number {
  return w.keys + 1;
}

export function judgeEvidence(w: Workload, ev: StateEvidence): StateJudgement {
  if (w.probe === 'redis') {
    if (ev.marker_before === null) return { verified: false, reason: 'no marker written before the freeze' };
    if (ev.marker_after !== ev.marker_before)
      return {
        verified: false,
        reason: `marker key ${ev.marker_after === null ? 'not read' : `reads "${ev.marker_after}"`} after the move, not "${ev.marker_before}"`,
      };
    if (ev.dbsize_after !== expectedDbsize(w))
      return { verified: false, reason: `DBSIZE ${ev.dbsize_after ?? 'not read'} after the move, not ${expectedDbsize(w)}` };
    return { verified: true, reason: null };
  }
  const before = ev.counter_before;
  const after = ev.counter_after ?? [];
  if (before === null) return { verified: false, reason: 'counter not read from the process before the freeze' };
  if (after.length === 0) return { verified: false, reason: 'the process printed no count after the move' };
  // The first count after the move tells a process that went on (before+1...) from one that
  // started again (1...); the last, that it still counts.
  const first = after[0];
  const last = after[after.length - 1];
  if (!(first > before)) return { verified: false, reason: `counter restarted or went back: ${before} before the freeze, ${first} first after` };
  if (!(last > before)) return { verified: false, reason: `counter at ${last} after the move, not above ${before}` };
  return { verified: true, reason: null };
}

/**
 * The run's verdict from its evidence: fills verified, ok, error and detail.verdict. `probed`:
 * the downtime came from the client probe (a method without it still needs a downtime of its own).
 */
export function applyVerdict(result: RunResult, w: Workload, ev: StateEvidence): void {
  const j = judgeEvidence(w, ev);
  result.verified = j.verified;
  if (w.probe === 'redis') Object.assign(result.detail, { marker_before: ev.marker_before, marker_after: ev.marker_after, dbsize_after: ev.dbsize_after });
  else
    Object.assign(result.detail, {
      counter_before: ev.counter_before,
      counter_first_after: ev.counter_after?.[0] ?? null,
      counter_last_after: ev.counter_after?.length ? ev.counter_after[ev.counter_after.length - 1] : null,
    });
  result.detail.source_gone = ev.source_gone;
  let verdict: Verdict = 'ok';
  let error: string | null = null;
  if (!j.verified) {
    verdict = 'lost state';
    error = `lost state: ${j.reason}`;
  } else if (ev.source_gone !== true) {
    verdict = 'source still running';
    error = ev.source_gone === false ? 'the source copy still runs after the move' : 'the source copy was not checked';
  } else if (result.downtime_ms === null) {
    verdict = 'failed';
    error = result.probed ? 'no client-observed downtime (probe)' : 'no downtime measured';
  }
  result.ok = verdict === 'ok';
  result.error = result.error ?? error;
  result.detail.verdict = verdict === 'failed' ? `failed: ${error}` : verdict;
}

/** A run that failed before its state could be judged. */
export function applyFailure(result: RunResult, error: string): void {
  result.ok = false;
  result.error = error;
  result.detail.verdict = `failed: ${error}`;
}

/** The verdict shown in the tables: what the run proved, or why it failed. */
export function verdictOf(r: RunResult): string {
  if (typeof r.detail.verdict === 'string') return r.detail.verdict;
  // Results of older reports: only ok and error.
  if (r.ok) return 'ok';
  return r.verified === false ? 'lost state' : `failed: ${r.error ?? '?'}`;
}

export function lostState(r: RunResult): boolean {
  return r.verified === false;
}

/**
 * A retry worth trying: a failure of the tooling, never a run that lost state or left the source
 * running (those are the finding).
 */
export function mayRetry(r: RunResult): boolean {
  return !r.ok && !lostState(r) && verdictOf(r).startsWith('failed');
}

/** Every try of a run, in order: earlier failed tries first, each its own row. */
export function allTries(r: RunResult): RunResult[] {
  const earlier = r.earlier_tries ?? [];
  const { earlier_tries: _, ...last } = r;
  return [...earlier.flatMap(allTries), last];
}

/** The lines of a `docker logs -t` / `podman logs -t` output stamped at or after `since` (epoch ms), without their stamps. */
export function logLinesSince(text: string, since: number): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)\s(.*)$/.exec(line.trim());
    if (!m) continue;
    // Date.parse takes milliseconds; the engines stamp nanoseconds.
    const ms = (m[2] ?? '.0').slice(0, 4).padEnd(4, '0');
    const t = Date.parse(`${m[1]}${ms}${m[3]}`);
    if (Number.isFinite(t) && t >= since) out.push(m[4]);
  }
  return out.join('\n');
}

/** The evidence of a run in one line, for the log and the report. */
export function stateLine(r: RunResult): string {
  const d = r.detail;
  const parts: string[] = [];
  if (d.counter_before !== undefined)
    parts.push(`counter ${d.counter_before ?? '?'} before the move, ${d.counter_first_after ?? '?'}…${d.counter_last_after ?? '?'} after`);
  if (d.marker_before !== undefined && d.marker_before !== null)
    parts.push(`marker ${d.marker_after === d.marker_before ? 'read back' : `"${d.marker_after ?? '?'}"`}`);
  if (d.dbsize_after !== undefined && d.dbsize_after !== null) parts.push(`DBSIZE ${d.dbsize_after}`);
  if (typeof d.client_evidence === 'string') parts.push(d.client_evidence);
  if (d.source_gone !== undefined) parts.push(d.source_gone === true ? 'source gone' : d.source_gone === false ? 'source STILL RUNNING' : 'source not checked');
  return parts.join(', ') || 'state not read';
}

/** The run's downtime was not the client probe's (older reports: said only in detail.downtime_measured_by). */
export function unprobed(r: RunResult): boolean {
  return r.probed === false || typeof r.detail.downtime_measured_by === 'string';
}
