/**
 * `npm run bench -- --control-plane`: the conductor at the scale of a region (1,000 hosts,
 * 50,000 containers by default) with the engine replaced by a simulation that takes as long as
 * the real one, so that it runs on a 2-core machine with nothing else: heartbeats absorbed,
 * migrations accepted per second, scheduler decision time, database statements per
 * migration and memory, per database and number of conductors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCommandLine } from '../../common/args.js';
import { InvalidInput } from '../../common/errors.js';
import { parseList } from '../../conf/opts.js';
import { mariadbBackend, sqliteBackend, type BenchBackend } from './backends.js';
import { REAL_ENGINE_TIMINGS, type EngineTimings } from './fake-compute.js';
import { details, table, type Skipped } from './report.js';
import { runScenario, type ScenarioOptions, type ScenarioResult } from './scenario.js';

export const USAGE = `usage: npm run bench -- --control-plane [options]

  --hosts N               simulated compute hosts (default 1000)
  --containers N          containers per host (default 50)
  --burst N               migrate requests in the burst (default 2000)
  --burst-seconds S       longest burst; requests not sent by then are left out (default 15)
  --concurrency N         migrate requests in flight at once (default 8)
  --drain-seconds S       longest wait for the accepted migrations to end (default 30)
  --report-interval S     seconds between two heartbeats of a host during the burst (default 10)
  --max-per-host N        [conductor] max_concurrent_migrations_per_host (default 1)
  --engine-scale F        multiply the simulated engine's step times (default 1: checks 20 ms,
                          pre 300 ms, live 400 ms, post 500 ms, cleanup 50 ms)
  --backends a,b          sqlite,mariadb (default both; mariadb needs --mariadb)
  --conductors a,b        numbers of conductors to run (default 1,2)
  --mariadb URL           mysql+pymysql://USER:PASS@HOST[:PORT]/DB, emptied for each run
  --inline                every conductor in the benchmark's own thread (default: each in its
                          own worker thread, as separate processes)
  --quick                 20 hosts x 10 containers, a burst of 50, the engine 10x faster (a smoke run)
  --out DIR               where the JSON goes (default results/)`;

const OPTIONS = {
  hosts: { type: 'string' },
  containers: { type: 'string' },
  burst: { type: 'string' },
  'burst-seconds': { type: 'string' },
  concurrency: { type: 'string' },
  'drain-seconds': { type: 'string' },
  'report-interval': { type: 'string' },
  'max-per-host': { type: 'string' },
  'engine-scale': { type: 'string' },
  backends: { type: 'string' },
  conductors: { type: 'string' },
  mariadb: { type: 'string' },
  quick: { type: 'boolean' },
  inline: { type: 'boolean' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ControlPlaneOptions {
  scenario: ScenarioOptions;
  backends: string[];
  conductors: number[];
  mariadb: string | null;
  out: string | null;
}

function num(flag: string, raw: string | undefined, dflt: number, opts: { integer?: boolean; min?: number } = {}): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  const min = opts.min ?? 1;
  if (!Number.isFinite(n) || n < min || (opts.integer !== false && !Number.isInteger(n))) {
    throw new InvalidInput(`${flag} must be ${opts.integer !== false ? 'an integer' : 'a number'} of at least ${min}, not "${raw}"`);
  }
  return n;
}

export function scaledTimings(scale: number): EngineTimings {
  return Object.fromEntries(Object.entries(REAL_ENGINE_TIMINGS).map(([k, v]) => [k, v * scale])) as unknown as EngineTimings;
}

/** The options, or the usage text for --help; bad flags and values throw InvalidInput. */
export function parseControlPlane(argv: string[], repoRoot: string): ControlPlaneOptions | string {
  const { values: v } = parseCommandLine(argv, OPTIONS, false);
  if (v.help) return USAGE;
  const quick = v.quick === true;
  const backends = v.backends !== undefined ? parseList(v.backends) : ['sqlite', 'mariadb'];
  for (const b of backends) if (!['sqlite', 'mariadb'].includes(b)) throw new InvalidInput(`unknown backend ${b} (known: sqlite, mariadb)`);
  const conductors = (v.conductors !== undefined ? parseList(v.conductors) : ['1', '2']).map((c) => num('--conductors', c, 1));
  return {
    scenario: {
      hosts: num('--hosts', v.hosts, quick ? 20 : 1000, { min: 2 }),
      containersPerHost: num('--containers', v.containers, quick ? 10 : 50),
      burst: num('--burst', v.burst, quick ? 50 : 2000),
      burstSeconds: num('--burst-seconds', v['burst-seconds'], quick ? 10 : 15, { integer: false, min: 0.1 }),
      requestConcurrency: num('--concurrency', v.concurrency, 8),
      heartbeatConcurrency: 8,
      reportInterval: num('--report-interval', v['report-interval'], 10, { integer: false, min: 0.1 }),
      drainSeconds: num('--drain-seconds', v['drain-seconds'], quick ? 20 : 30, { integer: false, min: 0.1 }),
      maxConcurrentPerHost: num('--max-per-host', v['max-per-host'], 1),
      decisionSamples: 200,
      soloRequests: 3,
      threads: v.inline !== true,
      timings: scaledTimings(num('--engine-scale', v['engine-scale'], quick ? 0.1 : 1, { integer: false, min: 0 })),
    },
    backends,
    conductors,
    mariadb: v.mariadb ?? process.env.FERRY_BENCH_MARIADB ?? null,
    out: path.resolve(v.out ?? path.join(repoRoot, 'results')),
  };
}

export function backendsOf(o: Pick<ControlPlaneOptions, 'backends' | 'mariadb'>): BenchBackend[] {
  return o.backends.map((b) => (b === 'sqlite' ? sqliteBackend : mariadbBackend(o.mariadb)));
}

/** Every combination that can run, one after another; the others listed with the reason. */
export async function runAll(
  o: Pick<ControlPlaneOptions, 'scenario' | 'backends' | 'conductors' | 'mariadb'>,
  say: (s: string) => void,
  backends: BenchBackend[] = backendsOf(o),
): Promise<{ results: ScenarioResult[]; skipped: Skipped[] }> {
  const results: ScenarioResult[] = [];
  const skipped: Skipped[] = [];
  for (const backend of backends) {
    try {
      for (const n of o.conductors) {
        const why = backend.unavailable(n);
        if (why) {
          skipped.push({ backend: backend.name, conductors: n, reason: why });
          continue;
        }
        say(`${backend.name}, ${n} conductor(s)`);
        results.push(await runScenario(backend, n, o.scenario, say));
      }
    } finally {
      await backend.close?.();
    }
  }
  return { results, skipped };
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export async function runControlPlane(argv: string[], repoRoot: string): Promise<number> {
  let o: ControlPlaneOptions;
  try {
    const p = parseControlPlane(argv, repoRoot);
    if (typeof p === 'string') {
      process.stdout.write(`${p}\n`);
      return 0;
    }
    o = p;
  } catch (e) {
    process.stderr.write(`ferry-bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const started = new Date();
  const backends = backendsOf(o);
  // Interrupted: the private MariaDB server, if one was started, is stopped all the same.
  const stop = () => {
    say('stopping');
    void Promise.all(backends.map((b) => b.close?.().catch(() => undefined))).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { results, skipped } = await runAll(o, say, backends);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  const s = o.scenario;
  const machine = {
    cpus: os.cpus().length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    load: os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' '),
  };
  process.stdout.write(
    `\ncontrol plane: ${s.hosts} hosts x ${s.containersPerHost} containers, a burst of ${s.burst} migrate requests (${s.requestConcurrency} in flight, ` +
      `at most ${s.burstSeconds} s), heartbeats every ${s.reportInterval} s meanwhile, max ${s.maxConcurrentPerHost} migration(s) per host; ` +
      `${machine.cpus} CPUs, load ${machine.load}\n\n${table(results, skipped)}\n\n${results.map(details).join('\n')}\n`,
  );
  if (o.out) {
    fs.mkdirSync(o.out, { recursive: true });
    const file = path.join(o.out, `bench-control-plane-${stamp(started)}.json`);
    fs.writeFileSync(
      file,
      `${JSON.stringify({ started: started.toISOString(), finished: new Date().toISOString(), argv, machine, options: s, results, skipped }, null, 1)}\n`,
    );
    process.stdout.write(`results: ${file}\n`);
  }
  return results.length > 0 ? 0 : 1;
}
