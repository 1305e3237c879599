/** The control-plane benchmark's table: one row per database and number of conductors (Markdown, readable in a terminal too). */
import type { Percentiles, ScenarioResult } from './scenario.js';

/** A combination that was not run, and why. */
export interface Skipped {
  backend: string;
  conductors: number;
  reason: string;
}

function ms(p: Percentiles): string {
  if (p.p50 === null || p.p99 === null) return '–';
  const f = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));
  return `${f(p.p50)} / ${f(p.p99)}`;
}

const HEADER = [
  'database',
  'conductors',
  'heartbeats/s',
  'migrations accepted/s',
  'one request alone p50 (ms)',
  'in the burst p50 / p99 (ms)',
  'scheduler p50 / p99 (ms)',
  'DB statements per migration: accept + flow',
  'DB time of one request alone (ms)',
  'completed/s',
  'max per host',
  'RSS growth (MB)',
  'conductor heap peak / kept (MB)',
];

export function resultRow(r: ScenarioResult): string[] {
  const q = r.queries;
  const limited = r.burst.sent < r.burst.requested ? ` (${r.burst.accepted} of ${r.burst.requested} in ${r.burst.seconds} s)` : '';
  return [
    r.backend,
    String(r.conductors),
    String(r.heartbeats.per_s),
    `${r.burst.accepted_per_s}${limited}`,
    r.decision.accept_alone_ms.p50 === null ? '–' : r.decision.accept_alone_ms.p50.toFixed(0),
    ms(r.burst.latency_ms),
    ms(r.decision.choose_ms),
    `${q.accept.statements} + ${q.flow.statements}`,
    String(r.decision.accept_alone_db.db_ms),
    `${r.drain.completed_per_s}${r.drain.timed_out ? ` (${r.drain.unfinished} unfinished)` : ''}`,
    String(r.max_per_host),
    String(r.memory.rss_growth_mb),
    `${r.memory.heap_peak_mb} / ${r.memory.heap_after_gc_mb}`,
  ];
}

export function table(results: ScenarioResult[], skipped: Skipped[]): string {
  const rows = [
    ...results.map((r) => ({ key: `${r.backend}/${r.conductors}`, cells: resultRow(r) })),
    ...skipped.map((s) => ({
      key: `${s.backend}/${s.conductors}`,
      cells: [s.backend, String(s.conductors), `not measured: ${s.reason}`, ...HEADER.slice(3).map(() => '')],
    })),
  ].sort((a, b) => a.key.localeCompare(b.key));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(HEADER), line(HEADER.map(() => '---')), ...rows.map((r) => line(r.cells))].join('\n');
}

/** Where the time of one run went, in a few lines under the table. */
export function details(r: ScenarioResult): string {
  const refused = Object.entries(r.burst.refused)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    `${r.backend}, ${r.conductors} conductor(s) ${r.threads ? 'each in its own thread' : 'in one thread'}, ${r.database}: ${r.hosts} hosts, ${r.containers} containers`,
    `  heartbeats: first round ${r.heartbeats.first_round_s} s, then ${r.heartbeats.per_s}/s (p50/p99 ${ms(r.heartbeats.latency_ms)} ms), ${r.heartbeats.calls} repository calls and ${r.heartbeats.statements} statements each`,
    `  burst: ${r.burst.sent} of ${r.burst.requested} requests sent, ${r.burst.accepted} accepted in ${r.burst.seconds} s${refused ? `, refused: ${refused}` : ''}; ${r.burst.heartbeats} heartbeats meanwhile`,
    `  one request alone: ${ms(r.decision.accept_alone_ms)} ms, ${r.decision.accept_alone_db.calls} repository calls, ${r.decision.accept_alone_db.statements} statements, ${r.decision.accept_alone_db.db_ms} ms in the database`,
    `  per migration: accept ${r.queries.accept.calls} repository calls / ${r.queries.accept.statements} statements / ${r.queries.accept.db_ms} ms in the driver, flow ${r.queries.flow.calls} / ${r.queries.flow.statements} / ${r.queries.flow.db_ms} ms; reading the host list: ${ms(r.decision.list_hosts_ms)} ms`,
    `  drain: ${r.drain.completed} completed, ${r.drain.failed} failed, ${r.drain.unfinished} unfinished after ${r.drain.seconds} s${r.drain.timed_out ? ' (time limit)' : ''}; at most ${r.max_per_host} migration(s) on one host at once`,
    `  memory: RSS ${r.memory.baseline_rss_mb} MB with the simulated fleet before the conductors, peak ${r.memory.rss_peak_mb} MB; ` +
      (r.memory.threads
        ? `the conductors' heaps (their own threads): peak ${r.memory.heap_peak_mb} MB, ${r.memory.heap_after_gc_mb} MB kept after a full GC`
        : `the process's heap grew by ${r.memory.heap_peak_mb} MB at most, ${r.memory.heap_after_gc_mb} MB kept after a full GC`),
  ].join('\n');
}
