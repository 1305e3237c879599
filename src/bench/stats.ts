/** Pure arithmetic of the benchmark: downtime from probe samples, median and spread. */
import type { DowntimeResult, ProbeSample, Stat } from './types.js';

/**
 * Client-observed downtime: among the gaps between consecutive successful answers, the largest
 * one that overlaps the migration window [windowStart, windowEnd]. Its ends are the last answer
 * before the freeze and the first answer after the restore. Null when the probe had no answer
 * before the window or none after its start (the workload never answered again).
 */
export function computeDowntime(samples: ProbeSample[], windowStart: number, windowEnd: number): DowntimeResult | null {
  const ok = samples
    .filter((s) => s.ok)
    .map((s) => s.t)
    .sort((a, b) => a - b);
  let best: DowntimeResult | null = null;
  for (let i = 0; i + 1 < ok.length; i++) {
    const a = ok[i];
    const b = ok[i + 1];
    if (b < windowStart || a > windowEnd) continue; // gap entirely outside the window
    const gap = b - a;
    if (!best || gap > best.downtime_ms) best = { downtime_ms: gap, last_before: a, first_after: b };
  }
  if (best) return best;
  return null;
}

function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = sorted(xs);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function stat(values: (number | null | undefined)[]): Stat {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return { n: 0, median: null, min: null, max: null, spread: null };
  const s = sorted(xs);
  const min = s[0];
  const max = s[s.length - 1];
  return { n: xs.length, median: median(xs), min, max, spread: (max - min) / 2 };
}

/** a / b rounded to two decimals, or null when either is missing or b is zero. */
export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}

export function fmtMs(v: number | null): string {
  if (v === null) return '–';
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

export function fmtStat(s: Stat): string {
  if (s.median === null) return '–';
  return s.n > 1 ? `${fmtMs(s.median)} ±${fmtMs(s.spread)}` : fmtMs(s.median);
}

export function fmtBytes(v: number | null): string {
  if (v === null) return '–';
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)} GB`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)} MB`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(0)} kB`;
  return `${v} B`;
}
