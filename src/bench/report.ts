/** Summaries of the runs: per workload and method medians, ratios, the table, Markdown and JSON. */
import type { MemoryReport } from './memory.js';
import { fmtBytes, fmtMs, fmtStat, ratio, stat } from './stats.js';
import { downtimeChart, type Series } from './svg.js';
import type { MethodName, RunResult, Stat, Workload } from './types.js';
import { lostState, stateLine, unprobed, verdictOf } from './verdict.js';

export interface Summary {
  workload: string;
  method: MethodName;
  /** Every try, a retry's failed first try included. */
  runs: number;
  failed: number;
  /** Tries whose state did not go on (counter restarted or stood still, marker or keys lost). */
  lost_state: number;
  /** The downtime was measured without the client probe (raw CRIU post-copy asks the process itself). */
  unprobed: boolean;
  downtime: Stat;
  tool_freeze: Stat;
  total: Stat;
  checkpoint: Stat;
  transfer: Stat;
  restore: Stat;
  memory_bytes: Stat;
  transferred_bytes: Stat;
  verified: boolean | null;
  errors: string[];
}

export interface Ratios {
  workload: string;
  ferry_vs_manual: number | null;
  ferry_vs_raw: number | null;
  engine_vs_manual: number | null;
  engine_vs_raw: number | null;
  /** REST / engine alone: the control plane's cost. */
  rest_vs_engine: number | null;
  fast_vs_raw: number | null;
  /** Post-copy (engine) against the manual Docker procedure, Podman, and raw CRIU's lazy floor. */
  postcopy_vs_manual?: number | null;
  postcopy_vs_podman?: number | null;
  postcopy_vs_raw_lazy?: number | null;
  /** Post-copy through the REST API against the same peers and raw CRIU's stop-and-copy floor. */
  rest_postcopy_vs_manual?: number | null;
  rest_postcopy_vs_podman?: number | null;
  rest_postcopy_vs_raw_lazy?: number | null;
  rest_postcopy_vs_raw?: number | null;
}

export function summarize(results: RunResult[], workloads: Workload[], methods: MethodName[]): Summary[] {
  const out: Summary[] = [];
  for (const w of workloads) {
    for (const m of methods) {
      const rs = results.filter((r) => r.workload === w.name && r.method === m);
      if (rs.length === 0) continue;
      const ok = rs.filter((r) => r.ok);
      out.push({
        workload: w.name,
        method: m,
        runs: rs.length,
        failed: rs.length - ok.length,
        lost_state: rs.filter(lostState).length,
        unprobed: rs.some(unprobed),
        downtime: stat(ok.map((r) => r.downtime_ms)),
        tool_freeze: stat(ok.map((r) => r.tool_freeze_ms)),
        total: stat(ok.map((r) => r.total_ms)),
        checkpoint: stat(ok.map((r) => r.checkpoint_ms)),
        transfer: stat(ok.map((r) => r.transfer_ms)),
        restore: stat(ok.map((r) => r.restore_ms)),
        memory_bytes: stat(ok.map((r) => r.memory_bytes)),
        transferred_bytes: stat(ok.map((r) => r.transferred_bytes)),
        // A run that lost state makes the method's verdict no, whatever its other runs did.
        verified: rs.some(lostState) ? false : ok.length ? ok.every((r) => r.verified === true) : null,
        errors: rs.filter((r) => !r.ok).map((r) => verdictOf(r)),
      });
    }
  }
  return out;
}

export function ratios(summaries: Summary[], workloads: Workload[]): Ratios[] {
  return workloads.map((w) => {
    const d = (m: MethodName) => summaries.find((s) => s.workload === w.name && s.method === m)?.downtime.median ?? null;
    return {
      workload: w.name,
      ferry_vs_manual: ratio(d('ferry-rest'), d('docker-manual')),
      ferry_vs_raw: ratio(d('ferry-rest'), d('raw-criu')),
      engine_vs_manual: ratio(d('ferry-engine'), d('docker-manual')),
      engine_vs_raw: ratio(d('ferry-engine'), d('raw-criu')),
      rest_vs_engine: ratio(d('ferry-rest'), d('ferry-engine')),
      fast_vs_raw: ratio(d('ferry-engine-fast'), d('raw-criu')),
      postcopy_vs_manual: ratio(d('ferry-postcopy'), d('docker-manual')),
      postcopy_vs_podman: ratio(d('ferry-postcopy'), d('podman')),
      postcopy_vs_raw_lazy: ratio(d('ferry-postcopy'), d('raw-criu-lazy')),
      rest_postcopy_vs_manual: ratio(d('ferry-rest-postcopy'), d('docker-manual')),
      rest_postcopy_vs_podman: ratio(d('ferry-rest-postcopy'), d('podman')),
      rest_postcopy_vs_raw_lazy: ratio(d('ferry-rest-postcopy'), d('raw-criu-lazy')),
      rest_postcopy_vs_raw: ratio(d('ferry-rest-postcopy'), d('raw-criu')),
    };
  });
}

const HEAD = [
  'workload',
  'method',
  'ok/runs',
  'lost state',
  'downtime (client)',
  'tool freeze',
  'total',
  'checkpoint',
  'transfer',
  'restore',
  'memory image',
  'moved',
];

/** A method whose downtime no client probe saw says so wherever its figures appear. */
export function methodCell(m: string, unprobed: boolean): string {
  return unprobed ? `${m} (no probe)` : m;
}

function rowCells(s: Summary): string[] {
  return [
    s.workload,
    methodCell(s.method, s.unprobed),
    `${s.runs - s.failed}/${s.runs}`,
    String(s.lost_state ?? '–'),
    fmtStat(s.downtime),
    fmtStat(s.tool_freeze),
    fmtStat(s.total),
    fmtStat(s.checkpoint),
    fmtStat(s.transfer),
    fmtStat(s.restore),
    fmtBytes(s.memory_bytes.median),
    fmtBytes(s.transferred_bytes.median),
  ];
}

export function terminalTable(summaries: Summary[]): string {
  const rows = [HEAD, ...summaries.map(rowCells)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(rows[0]), sep];
  let last = '';
  for (const r of rows.slice(1)) {
    if (last && r[0] !== last) out.push('');
    last = r[0];
    out.push(line(r));
  }
  return out.join('\n');
}

function x(v: number | null): string {
  return v === null ? '–' : `${v}×`;
}

export function ratioTable(rs: Ratios[], md: boolean): string {
  const columns: [string, (r: Ratios) => number | null | undefined][] = [
    ['Ferry/manual', (r) => r.ferry_vs_manual],
    ['Ferry/raw CRIU', (r) => r.ferry_vs_raw],
    ['engine/manual', (r) => r.engine_vs_manual],
    ['engine/raw CRIU', (r) => r.engine_vs_raw],
    ['REST/engine', (r) => r.rest_vs_engine],
    ['engine fast/raw CRIU', (r) => r.fast_vs_raw],
    ['post-copy/manual', (r) => r.postcopy_vs_manual],
    ['post-copy/Podman', (r) => r.postcopy_vs_podman],
    ['post-copy/raw lazy (no probe)', (r) => r.postcopy_vs_raw_lazy],
    ['REST post-copy/manual', (r) => r.rest_postcopy_vs_manual],
    ['REST post-copy/Podman', (r) => r.rest_postcopy_vs_podman],
    ['REST post-copy/raw lazy (no probe)', (r) => r.rest_postcopy_vs_raw_lazy],
    ['REST post-copy/raw CRIU', (r) => r.rest_postcopy_vs_raw],
  ];
  // Only the ratios this run could compute (its methods).
  const shown = columns.filter(([, f]) => rs.some((r) => (f(r) ?? null) !== null));
  const head = ['workload', ...shown.map(([h]) => h)];
  const rows = rs.map((r) => [r.workload, ...shown.map(([, f]) => x(f(r) ?? null))]);
  if (md) return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const widths = head.map((_, i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

export function memoryTable(mem: MemoryReport, md: boolean): string {
  const names = Object.keys(mem.hwm).length ? Object.keys(mem.hwm) : Object.keys(mem.peak_rss);
  const labels = [...new Set(Object.values(mem.peak_rss).flatMap((o) => Object.keys(o)))].sort();
  const head = ['while running', ...names];
  const rows = labels.map((l) => [l, ...names.map((n) => fmtBytes(mem.peak_rss[n]?.[l] ?? null))]);
  rows.push(['VmHWM (lifetime peak)', ...names.map((n) => fmtBytes(mem.hwm[n] ?? null))]);
  if (md) return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const widths = head.map((_, i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/** Peak RSS of each Ferry service over all Ferry REST runs, and of this process over the engine runs. */
export function ferryPeaks(mem: MemoryReport): Record<string, number | null> {
  const peak = (name: string, prefix: string) => {
    const v = Object.entries(mem.peak_rss[name] ?? {})
      .filter(([l]) => l.startsWith(prefix))
      .map(([, b]) => b);
    return v.length ? Math.max(...v) : null;
  };
  return {
    'ferry-api': peak('ferry-api', 'ferry-rest/'),
    'ferry-conductor': peak('ferry-conductor', 'ferry-rest/'),
    'ferry-compute-compute1': peak('ferry-compute-compute1', 'ferry-rest/'),
    'ferry-compute-compute2': peak('ferry-compute-compute2', 'ferry-rest/'),
    'engine in-process (bench)': peak('bench (engine in-process)', 'ferry-engine'),
  };
}

/** One series per method: median downtime at the median image size of each workload. */
export function chartSeries(summaries: Summary[], methods: MethodName[], labels: Record<MethodName, string>): Series[] {
  return methods
    .map((m) => ({
      name: methodCell(
        labels[m] ?? m,
        summaries.some((s) => s.method === m && s.unprobed),
      ),
      points: summaries
        .filter((s) => s.method === m && s.downtime.median !== null && s.memory_bytes.median)
        .map((s) => ({ x: s.memory_bytes.median as number, y: s.downtime.median as number, label: s.workload })),
    }))
    .filter((s) => s.points.length > 0);
}

export interface ReportInput {
  started: string;
  finished: string;
  argv: string[];
  machine: Record<string, string>;
  workloads: Workload[];
  methods: MethodName[];
  methodLabels: Record<MethodName, string>;
  results: RunResult[];
  summaries: Summary[];
  ratios: Ratios[];
  memory: MemoryReport;
  analysis: string | null;
  chartFile: string;
}

export function markdown(r: ReportInput): string {
  const md: string[] = [];
  md.push(`# Ferry downtime benchmark, ${r.started}`);
  md.push('');
  md.push(`Command: \`npm run bench -- ${r.argv.join(' ')}\` · finished ${r.finished}`);
  md.push('');
  md.push(
    `Machine: ${Object.entries(r.machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(' · ')}`,
  );
  md.push('');
  md.push('Methods:');
  for (const m of r.methods) md.push(`- \`${m}\`: ${r.methodLabels[m]}`);
  md.push('');
  md.push(
    'Downtime is what a client sees: a probe process outside the workload asks for an answer every 10 ms (HTTP GET for the counter, Redis `GET key:1`) — from the `ferry-client` namespace over `ferry-fabric` for the container methods, over 127.0.0.1 for raw CRIU — and the downtime is the gap between the last answer before the freeze and the first after the restore. The probe asks over a small pool of established connections (4 for Redis, 8 for httpd) and, once nothing has answered for 200 ms (30 ms for raw CRIU), over a fresh connection every 10 ms as well: a fresh connection arriving in the first ~25 ms after the freeze would sit in the listening socket\'s accept queue and make CRIU refuse the dump ("In-flight connection"), since runc does not pass `skip-in-flight` here. "tool freeze" is what the tool itself reports (Ferry\'s `freeze_ms`; for the manual procedure and raw CRIU, checkpoint start to restore end). Raw CRIU restores on the same host (no transfer) with `--skip-in-flight --network-lock nftables`. Values are median ±half the range over the successful runs; each run uses a fresh container (or host process) filled with `DEBUG POPULATE`.',
  );
  md.push('');
  md.push(
    'Verdicts: a run is ok only when the state went on and the source copy is gone. The counter\'s count is read from the process\'s own output (its stdout, in the engine\'s log; raw CRIU: the file its stdout stays open on), not from a file the move carries: the last count printed when the migration is asked for (so before the freeze), and the first printed by the restored process must be strictly greater (a restarted process counts from 1, a stopped one stands still). Redis: a marker key written just before the freeze must read back where Redis now runs, and DBSIZE must be the keys loaded plus the marker. The source copy: no running container of that name left on the source (Podman and raw CRIU, on one host: the original process is gone; the restored one is told apart by its start time). A run that lost state says "lost state" and counts as failed; a Ferry REST run that failed for another reason is tried once more, and both tries are rows of their own. Methods marked "(no probe)" measure their downtime without the client probe (raw CRIU post-copy asks the process in its namespace itself), so their figures are not the same measurement as the others\'.',
  );
  md.push('');
  md.push('## Results');
  md.push('');
  md.push(`| ${HEAD.join(' | ')} |`);
  md.push(`|${HEAD.map(() => '---').join('|')}|`);
  for (const s of r.summaries) md.push(`| ${rowCells(s).join(' | ')} |`);
  md.push('');
  md.push(`![downtime vs memory](${r.chartFile})`);
  md.push('');
  md.push('## Ratios (median client-observed downtime)');
  md.push('');
  md.push(ratioTable(r.ratios, true));
  md.push('');
  md.push('## Memory of the Ferry services (and the engines) during the migrations');
  md.push('');
  md.push(
    "Peak VmRSS sampled every 100 ms from /proc while each method/workload ran (container setup included); VmHWM is each process's peak since it started (other tests on the same cloud count there too). Peak over all Ferry REST runs:",
  );
  md.push('');
  const peaks = ferryPeaks(r.memory);
  md.push(`| ${Object.keys(peaks).join(' | ')} |`);
  md.push(
    `|${Object.keys(peaks)
      .map(() => '---')
      .join('|')}|`,
  );
  md.push(
    `| ${Object.values(peaks)
      .map((v) => fmtBytes(v))
      .join(' | ')} |`,
  );
  md.push('');
  md.push(memoryTable(r.memory, true));
  md.push('');
  const failed = r.results.filter((x) => !x.ok);
  if (failed.length) {
    md.push('## Failed runs (lost state, source left running, failed tries of retried runs)');
    md.push('');
    for (const f of failed)
      md.push(
        `- ${f.workload} / ${f.method} run ${f.run}${(f.attempt ?? 1) > 1 ? ` try ${f.attempt}` : ''}: **${verdictOf(f)}** — ${f.error} (${stateLine(f)})`,
      );
    md.push('');
  }
  if (r.analysis) {
    md.push(r.analysis);
    md.push('');
  }
  md.push('## Every run');
  md.push('');
  md.push(
    '| workload | method | run | try | verdict | downtime | tool freeze | total | checkpoint | transfer | restore | image | state after the move | probe answers/failures |',
  );
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const x of r.results) {
    md.push(
      `| ${x.workload} | ${methodCell(x.method, unprobed(x))} | ${x.run} | ${x.attempt ?? 1} | ${verdictOf(x)} | ${fmtMs(x.downtime_ms)} | ${fmtMs(x.tool_freeze_ms)} | ${fmtMs(x.total_ms)} | ${fmtMs(x.checkpoint_ms)} | ${fmtMs(x.transfer_ms)} | ${fmtMs(x.restore_ms)} | ${fmtBytes(x.memory_bytes)} | ${stateLine(x)} | ${unprobed(x) ? 'no probe' : `${x.probe.answers}/${x.probe.failures}`} |`,
    );
  }
  md.push('');
  return md.join('\n');
}

export function chart(r: Pick<ReportInput, 'summaries' | 'methods' | 'methodLabels'>): string {
  return downtimeChart(chartSeries(r.summaries, r.methods, r.methodLabels), { title: 'Client-observed downtime vs memory image size (median)' });
}
