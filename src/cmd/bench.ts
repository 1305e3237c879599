#!/usr/bin/env node
/**
 * ferry-bench: client-observed downtime of live migration, Ferry side by side with the manual
 * Docker procedure and raw CRIU, on the development cloud. `npm run bench -- --help`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyzeDockerPath } from '../bench/analysis.js';
import { runControlPlane } from '../bench/controlplane/main.js';
import { loadCloud, sh } from '../bench/cloud.js';
import { MemorySampler } from '../bench/memory.js';
import { chart, ferryPeaks, markdown, ratios, ratioTable, summarize, terminalTable, type ReportInput } from '../bench/report.js';
import type { Method } from '../bench/runners/common.js';
import { dockerManual } from '../bench/runners/docker-manual.js';
import { ferryEngine, ferryEngineFast } from '../bench/runners/ferry-engine.js';
import { ferryPostCopy } from '../bench/runners/ferry-postcopy.js';
import { ferryRest, ferryRestPostCopy } from '../bench/runners/ferry-rest.js';
import { podmanPeer } from '../bench/runners/podman.js';
import { rawCriu } from '../bench/runners/raw-criu.js';
import { rawCriuLazy } from '../bench/runners/raw-criu-lazy.js';
import { fmtBytes, fmtMs } from '../bench/stats.js';
import type { MethodName, RunResult } from '../bench/types.js';
import { allTries, stateLine, verdictOf } from '../bench/verdict.js';
import { findWorkloads, QUICK_WORKLOADS, WORKLOADS } from '../bench/workloads.js';
import { DOCKER_CLI, repoRoot } from '../devcloud/layout.js';
import { parseCommandLine } from '../common/args.js';
import { InvalidInput } from '../common/errors.js';
import { parseList } from '../conf/opts.js';

const METHODS: Method[] = [ferryRest, ferryRestPostCopy, ferryEngine, ferryEngineFast, ferryPostCopy, dockerManual, podmanPeer, rawCriu, rawCriuLazy];
const DEFAULT_METHODS: MethodName[] = [
  'ferry-rest',
  'ferry-rest-postcopy',
  'ferry-engine',
  'ferry-engine-fast',
  'ferry-postcopy',
  'docker-manual',
  'podman',
  'raw-criu',
  'raw-criu-lazy',
];

const USAGE = `usage: npm run bench -- [options]

  --runs N              runs per workload and method (default 3)
  --runs-heavy N        runs for heavy workloads (${WORKLOADS.filter((w) => w.heavy)
    .map((w) => w.name)
    .join(', ')}; default: --runs)
  --workloads a,b       ${WORKLOADS.map((w) => w.name).join(',')} (default: all)
                        (postgres: PostgreSQL ~300 MB under pgbench, postgres-3g: ~3 GB; append: appends
                        to a file in the layer and one in a local volume; each judged by its own client)
  --methods a,b         ${DEFAULT_METHODS.join(',')} (default: all)
  --quick               ${QUICK_WORKLOADS.join(' + ')}, 1 run, no Docker-path analysis
  --analysis WORKLOAD   where the Docker-vs-CRIU analysis runs (default redis-1m; "none" skips it)
  --analysis-only       only the Docker-vs-CRIU analysis (on --analysis, default redis-1m)
  --report FILE.json    render the Markdown report and chart of an earlier run again
                        (with --analysis-only: run the analysis and add it to that report)
  --out DIR             results folder (default results/)
  --control-plane       the conductor at scale over a simulated engine instead (no root, no
                        dev cloud; its options: --control-plane --help)`;

interface Options {
  runs: number;
  runsHeavy: number | null;
  workloads: string[];
  methods: MethodName[];
  analysis: string | null;
  analysisOnly: boolean;
  report: string | null;
  out: string;
}

const OPTIONS = {
  runs: { type: 'string' },
  'runs-heavy': { type: 'string' },
  workloads: { type: 'string' },
  methods: { type: 'string' },
  quick: { type: 'boolean' },
  analysis: { type: 'string' },
  'analysis-only': { type: 'boolean' },
  report: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function positiveInt(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInput(`${flag} must be a positive integer, not "${raw}"`);
  return n;
}

/** The options, or the usage text for --help; bad flags and values throw InvalidInput. */
function parse(argv: string[]): Options | string {
  const { values: v } = parseCommandLine(argv, OPTIONS, false);
  if (v.help) return USAGE;
  const quick = v.quick === true;
  const o: Options = {
    runs: v.runs !== undefined ? positiveInt('--runs', v.runs) : quick ? 1 : 3,
    runsHeavy: v['runs-heavy'] !== undefined ? positiveInt('--runs-heavy', v['runs-heavy']) : null,
    workloads: v.workloads !== undefined ? parseList(v.workloads) : quick ? QUICK_WORKLOADS : WORKLOADS.map((w) => w.name),
    methods: v.methods !== undefined ? (parseList(v.methods) as MethodName[]) : DEFAULT_METHODS,
    analysis: v.analysis !== undefined ? (v.analysis === 'none' ? null : v.analysis) : quick ? null : 'redis-1m',
    analysisOnly: v['analysis-only'] === true,
    report: v.report !== undefined ? path.resolve(v.report) : null,
    out: path.resolve(v.out ?? path.join(repoRoot, 'results')),
  };
  for (const m of o.methods) if (!METHODS.some((x) => x.name === m)) throw new InvalidInput(`unknown method ${m} (known: ${DEFAULT_METHODS.join(', ')})`);
  findWorkloads(o.workloads);
  if (o.analysis) findWorkloads([o.analysis]);
  return o;
}

function log(s: string) {
  process.stderr.write(`${s}\n`);
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

async function machine(): Promise<Record<string, string>> {
  const criu = await sh('/usr/local/sbin/criu', ['--version'], { allowFail: true });
  const docker = await sh(DOCKER_CLI, ['--version'], { allowFail: true });
  return {
    kernel: os.release(),
    cpus: String(os.cpus().length),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    criu: criu.stdout.split('\n')[0] ?? '?',
    docker: docker.stdout.replace(/^Docker version /, ''),
  };
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--control-plane'))
    return runControlPlane(
      argv.filter((a) => a !== '--control-plane'),
      repoRoot,
    );
  let opts: Options;
  try {
    const p = parse(argv);
    if (typeof p === 'string') {
      process.stdout.write(`${p}\n`);
      return 0;
    }
    opts = p;
  } catch (e) {
    process.stderr.write(`ferry-bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('ferry-bench: run as root (CRIU, network namespaces, Docker data roots)\n');
    return 1;
  }
  if (opts.report && opts.analysisOnly) return attachAnalysis(opts.report, opts.analysis ?? 'redis-1m');
  if (opts.report) return rerender(opts.report);
  const started = new Date();
  const cloud = await loadCloud();
  const workloads = findWorkloads(opts.workloads);
  const methods = METHODS.filter((m) => opts.methods.includes(m.name));
  const labels = Object.fromEntries(METHODS.map((m) => [m.name, m.label])) as Record<MethodName, string>;
  const sampler = new MemorySampler(cloud.status.state_dir);
  sampler.start();
  const results: RunResult[] = [];
  let slot = 0;
  let stopping = false;
  process.on('SIGINT', () => {
    if (stopping) process.exit(130);
    stopping = true;
    log('stopping after the current run (Ctrl-C again to abort now)');
  });
  try {
    for (const w of opts.analysisOnly ? [] : workloads) {
      const runs = w.heavy && opts.runsHeavy ? opts.runsHeavy : opts.runs;
      for (let run = 1; run <= runs && !stopping; run++) {
        // Methods interleave within a run, so each sees the machine in the same state.
        for (const m of methods) {
          if (stopping) break;
          if (!m.supports(w)) continue;
          log(`${w.name} · ${m.name} · run ${run}/${runs}`);
          sampler.setLabel(`${m.name}/${w.name}`);
          const last = await m.run(w, { cloud, slot: slot++, run, log });
          sampler.setLabel(null);
          // A retried run is two rows: the failed try counts as failed in every table.
          for (const r of allTries(last)) {
            results.push(r);
            const tag = r.attempt > 1 ? ` (try ${r.attempt})` : '';
            log(
              r.ok
                ? `  ok${tag}: downtime ${fmtMs(r.downtime_ms)}${r.probed ? '' : ' (no probe)'} (tool ${fmtMs(r.tool_freeze_ms)}) total ${fmtMs(r.total_ms)} checkpoint ${fmtMs(r.checkpoint_ms)} transfer ${fmtMs(r.transfer_ms)} restore ${fmtMs(r.restore_ms)} image ${((r.memory_bytes ?? 0) / 1e6).toFixed(1)} MB · ${stateLine(r)}`
                : `  ${verdictOf(r).toUpperCase()}${tag}: ${r.error} · ${stateLine(r)}`,
            );
          }
        }
      }
    }
  } finally {
    for (const m of methods) await m.close?.();
  }
  let analysis: { markdown: string; data: unknown } | null = null;
  if (opts.analysis && !stopping) {
    log(`analysis of Docker's checkpoint path on ${opts.analysis}`);
    sampler.setLabel(`analysis/${opts.analysis}`);
    try {
      analysis = await analyzeDockerPath(cloud, findWorkloads([opts.analysis])[0], log);
    } catch (e) {
      analysis = {
        markdown: `## Where Docker's checkpoint time goes\n\nThe analysis failed: ${(e as Error).message}\n`,
        data: { error: (e as Error).message },
      };
    }
    sampler.setLabel(null);
  }
  const memory = sampler.stop();
  const finished = new Date();
  const summaries = summarize(results, workloads, opts.methods);
  fs.mkdirSync(opts.out, { recursive: true });
  const base = path.join(opts.out, `bench-${stamp(started)}`);
  const input: ReportInput = {
    started: started.toISOString(),
    finished: finished.toISOString(),
    argv,
    machine: await machine(),
    workloads,
    methods: opts.methods,
    methodLabels: labels,
    results,
    summaries,
    ratios: ratios(summaries, workloads),
    memory,
    analysis: analysis?.markdown ?? null,
    chartFile: `${path.basename(base)}.svg`,
  };
  fs.writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ ...input, analysis: analysis?.data ?? null, analysis_markdown: analysis?.markdown ?? null }, null, 1)}\n`,
  );
  render(input, base);
  return results.every((r) => r.ok) ? 0 : 1;
}

/** Markdown and chart beside the JSON; the tables on stdout. */
function render(input: ReportInput, base: string): void {
  fs.writeFileSync(`${base}.svg`, chart(input));
  fs.writeFileSync(`${base}.md`, markdown(input));
  const peaks = Object.entries(ferryPeaks(input.memory))
    .map(([k, v]) => `${k} ${fmtBytes(v)}`)
    .join(' · ');
  process.stdout.write(
    `\n${terminalTable(input.summaries)}\n\nratios of median client-observed downtime:\n${ratioTable(input.ratios, false)}\n\npeak RSS during Ferry migrations: ${peaks}\n\n`,
  );
  if (input.analysis) process.stdout.write(`${input.analysis}\n`);
  process.stdout.write(`results: ${base}.{json,md,svg}\n`);
}

/** --analysis-only --report: run the analysis now and add it to an earlier run's report. */
async function attachAnalysis(file: string, workload: string): Promise<number> {
  const cloud = await loadCloud();
  log(`analysis of Docker's checkpoint path on ${workload}`);
  const a = await analyzeDockerPath(cloud, findWorkloads([workload])[0], log);
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  j.analysis = a.data;
  j.analysis_markdown = a.markdown;
  fs.writeFileSync(file, `${JSON.stringify(j, null, 1)}\n`);
  return rerender(file);
}

/** --report: the JSON of an earlier run, rendered again with this version's report code. */
function rerender(file: string): number {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as ReportInput & { analysis_markdown: string | null };
  const workloads = j.workloads;
  const summaries = summarize(j.results, workloads, j.methods);
  const input: ReportInput = { ...j, summaries, ratios: ratios(summaries, workloads), analysis: j.analysis_markdown ?? null };
  render(input, file.replace(/\.json$/, ''));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ferry-bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
