/**
 * One run of the control-plane benchmark: N real ConductorServices over one database (each in
 * its own worker thread, or all in this one; conductors.ts), a simulated fleet heartbeating into them, then a burst of migrate requests driven through the
 * conductors' own decision path (live check, scheduler, record) and flows (over the fake
 * engine), while the hosts keep heartbeating. What it measures is in ScenarioResult.
 */
import { sleep } from '../../common/sleep.js';
import type { BenchBackend, BenchDatabase } from './backends.js';
import { benchLogger, collect, inlineConductor, threadConductor, type ConductorHandle, type ConductorSetup, type HeapFigures } from './conductors.js';
import type { CallGroup, MethodCount } from './counting.js';
import { FakeCompute, type EngineTimings } from './fake-compute.js';
import { Fleet, hostName } from './fleet.js';

export interface ScenarioOptions {
  hosts: number;
  containersPerHost: number;
  /** Migrate requests in the burst (fewer when `burstSeconds` runs out first). */
  burst: number;
  /** Longest the burst may last, s: requests not sent by then are left out (and said so). */
  burstSeconds: number;
  /** Migrate requests in flight at once (API workers calling the conductors). */
  requestConcurrency: number;
  /** Heartbeats in flight at once (the conductors' RPC executors). */
  heartbeatConcurrency: number;
  /** Seconds between two heartbeats of one host while the burst runs ([compute] report_interval). */
  reportInterval: number;
  /** Longest wait for the accepted migrations to end, s. */
  drainSeconds: number;
  /** [conductor] max_concurrent_migrations_per_host. */
  maxConcurrentPerHost: number;
  /** Scheduler decisions timed on their own. */
  decisionSamples: number;
  /** Migrate requests timed one at a time before the burst (nothing else running). */
  soloRequests: number;
  /** Each conductor in its own worker thread (as separate processes), or all in this one (tests: needs no build). */
  threads: boolean;
  timings?: Partial<EngineTimings>;
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p99: number | null;
}

export interface ScenarioResult {
  backend: string;
  database: string;
  conductors: number;
  hosts: number;
  containers: number;
  heartbeats: {
    /** The first report of every host (rows inserted). */
    first_round_s: number;
    /** A second round as fast as the conductors take it (rows updated): the sustained rate. */
    per_s: number;
    latency_ms: Percentiles;
    /** Repository calls and SQL statements per heartbeat. */
    calls: number;
    statements: number;
  };
  burst: {
    requested: number;
    sent: number;
    accepted: number;
    refused: Record<string, number>;
    seconds: number;
    accepted_per_s: number;
    latency_ms: Percentiles;
    /** Heartbeats the hosts sent during the burst and drain. */
    heartbeats: number;
  };
  decision: {
    /** A whole migrate request (live check, decision, record) with nothing else running. */
    accept_alone_ms: Percentiles;
    /** What one such request asked of the database. */
    accept_alone_db: QueryCost;
    /** chooseTarget alone over the host list (pure CPU). */
    choose_ms: Percentiles;
    /** Reading the host list the decision rests on (listHosts). */
    list_hosts_ms: Percentiles;
  };
  drain: { completed: number; failed: number; unfinished: number; seconds: number; completed_per_s: number; timed_out: boolean };
  /**
   * Per migration accepted: repository calls, SQL statements and time in the database (db_ms,
   * see MethodCount) to decide and record it, then to drive it (claims included); and per
   * second, the conductors' claim upkeep (lease renewals, scans for unclaimed work).
   */
  queries: { accept: QueryCost; flow: QueryCost; upkeep_per_s: QueryCost };
  /** Most migrations the fake engine saw on one host at once (the per-host limit holds when <= the limit). */
  max_per_host: number;
  /**
   * Memory. The process's RSS (the simulated fleet in its baseline, the conductors and SQLite's
   * cache in its growth); the conductors' V8 heap: with threads, their own isolates' (peak and
   * kept after a full GC, summed over the conductors), else this process's heap growth.
   */
  memory: { baseline_rss_mb: number; rss_peak_mb: number; rss_growth_mb: number; heap_peak_mb: number; heap_after_gc_mb: number; threads: boolean };
  /** How the conductors ran: each in its own thread, or all in the benchmark's. */
  threads: boolean;
  methods: Record<string, MethodCount>;
  compute_calls: Record<string, number>;
}

export interface QueryCost {
  calls: number;
  statements: number;
  db_ms: number;
}

export function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { n: 0, p50: null, p99: null };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { n: s.length, p50: round(at(0.5)), p99: round(at(0.99)) };
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const MB = 2 ** 20;

/** Runs `fn` on every item, at most `width` at a time; stops taking new items once `until()` is true. */
async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>, until: () => boolean = () => false): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !until()) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, worker));
  return next;
}

/** Counts of several conductors added up. */
function merge(all: Record<string, MethodCount>[]): Record<string, MethodCount> {
  const out: Record<string, MethodCount> = {};
  for (const c of all) {
    for (const [k, e] of Object.entries(c)) {
      const o = (out[k] ??= { calls: 0, statements: 0, db_ms: 0, ms: 0 });
      o.calls += e.calls;
      o.statements += e.statements;
      o.db_ms += e.db_ms;
      o.ms += e.ms;
    }
  }
  return out;
}

function group(counts: Record<string, MethodCount>, g: CallGroup): MethodCount {
  const out = { calls: 0, statements: 0, db_ms: 0, ms: 0 };
  for (const [k, e] of Object.entries(counts)) {
    if (k.split(':')[0] !== g) continue;
    out.calls += e.calls;
    out.statements += e.statements;
    out.db_ms += e.db_ms;
    out.ms += e.ms;
  }
  return out;
}

function minus(a: MethodCount, b: MethodCount, per: number): QueryCost {
  const n = Math.max(1, per);
  return { calls: round((a.calls - b.calls) / n, 1), statements: round((a.statements - b.statements) / n, 1), db_ms: round((a.db_ms - b.db_ms) / n, 1) };
}

async function startConductors(db: BenchDatabase, fake: FakeCompute, n: number, o: ScenarioOptions): Promise<ConductorHandle[]> {
  const out: ConductorHandle[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const setup: ConductorSetup = {
        index: i,
        conductors: n,
        maxConcurrentPerHost: o.maxConcurrentPerHost,
        serviceDownTime: Math.max(30, 3 * o.reportInterval),
      };
      out.push(o.threads ? await threadConductor(db, fake, setup) : await inlineConductor(db, fake, setup, benchLogger()));
    }
    return out;
  } catch (e) {
    for (const c of out) await c.close();
    throw e;
  }
}

export async function runScenario(
  backend: BenchBackend,
  conductors: number,
  o: ScenarioOptions,
  say: (s: string) => void = () => undefined,
): Promise<ScenarioResult> {
  const fleet = new Fleet({ hosts: o.hosts, containersPerHost: o.containersPerHost });
  const fake = new FakeCompute(fleet, o.timings);
  const log = benchLogger();
  collect();
  const base = process.memoryUsage();
  let rssPeak = base.rss;
  let heapPeak = base.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
  }, 200);
  sampler.unref();

  const db = await backend.create();
  const runStart = performance.now();
  let services: ConductorHandle[] = [];
  let stopBeats = () => undefined as void;
  const counts = async () => merge(await Promise.all(services.map((c) => c.counts())));
  try {
    services = await startConductors(db, fake, conductors, o);
    const names = Array.from({ length: o.hosts }, (_, i) => hostName(i));
    // report_state is a cast to the topic: any conductor takes it (round-robin here), as JSON text.
    const beat = (host: string, k: number) => services[k % services.length].reportState(host, JSON.stringify(fleet.state(host)), new Date().toISOString());

    say(`  heartbeats: ${o.hosts} hosts x ${o.containersPerHost} containers, first round`);
    let t0 = performance.now();
    await pool(names, o.heartbeatConcurrency, (h, i) => beat(h, i));
    const firstRound = (performance.now() - t0) / 1000;
    const hbBefore = group(await counts(), 'heartbeat');
    const hbLatency: number[] = [];
    t0 = performance.now();
    await pool(names, o.heartbeatConcurrency, async (h, i) => {
      const s = performance.now();
      await beat(h, i);
      hbLatency.push(performance.now() - s);
    });
    const secondRound = (performance.now() - t0) / 1000;
    const hb = group(await counts(), 'heartbeat');
    say(`  heartbeats: first round ${firstRound.toFixed(1)} s, second ${secondRound.toFixed(1)} s`);

    // The scheduler alone, over the host list as the conductor reads it.
    const decisions = await services[0].sampleDecisions(names, o.decisionSamples);

    // A few requests one at a time, nothing else running: what one decision costs.
    const picks = fleet.pickRunning(o.burst + o.soloRequests);
    const solo = picks.splice(0, Math.min(o.soloRequests, Math.max(0, picks.length - 1)));
    const soloMs: number[] = [];
    const acceptBefore = group(await counts(), 'accept');
    for (const p of solo) {
      const s = performance.now();
      await services[0].migrate(p.id);
      soloMs.push(performance.now() - s);
    }
    const soloCost = minus(group(await counts(), 'accept'), acceptBefore, solo.length);

    // The hosts keep reporting, each every reportInterval, while the burst and the flows run; a
    // conductor that cannot keep up leaves them waiting (on the broker): at most heartbeatConcurrency in hand.
    let beats = 0;
    let beating = true;
    const pending = new Set<Promise<void>>();
    const background = (async () => {
      const gapMs = (o.reportInterval * 1000) / Math.max(1, o.hosts);
      let i = 0;
      const start = performance.now();
      while (beating) {
        const wait = start + i * gapMs - performance.now();
        if (wait > 1) await sleep(wait);
        while (pending.size >= o.heartbeatConcurrency) await Promise.race(pending);
        if (!beating) break;
        const p = beat(names[i % names.length], i).then(
          () => void beats++,
          (e: unknown) => log.warn({ err: (e as Error).message }, 'bench heartbeat failed'),
        );
        pending.add(p);
        void p.finally(() => pending.delete(p));
        i++;
      }
    })();
    stopBeats = () => {
      beating = false;
    };

    say(`  burst: ${picks.length} migrate requests, ${o.requestConcurrency} in flight, at most ${o.burstSeconds} s`);
    const acceptMs: number[] = [];
    const refused: Record<string, number> = {};
    const burstStart = performance.now();
    const deadline = burstStart + o.burstSeconds * 1000;
    let lastAccept = burstStart;
    const sent = await pool(
      picks,
      o.requestConcurrency,
      async (p, i) => {
        const s = performance.now();
        try {
          await services[i % services.length].migrate(p.id);
          const e = performance.now();
          acceptMs.push(e - s);
          lastAccept = e;
        } catch (err) {
          const name = (err as Error).name || 'Error';
          refused[name] = (refused[name] ?? 0) + 1;
        }
      },
      () => performance.now() >= deadline,
    );
    const burstSeconds = (lastAccept - burstStart) / 1000;
    say(`  burst: ${acceptMs.length} accepted in ${burstSeconds.toFixed(1)} s; waiting for the migrations to end`);

    let timedOut = false;
    let limit: NodeJS.Timeout | undefined;
    const drainLimit = new Promise<void>((resolve) => {
      limit = setTimeout(() => {
        timedOut = true;
        resolve();
      }, o.drainSeconds * 1000);
    });
    await Promise.race([Promise.all(services.map((c) => c.whenIdle())), drainLimit]);
    clearTimeout(limit);
    const drainSeconds = (performance.now() - burstStart) / 1000;
    stopBeats();
    await background;
    await Promise.all(pending);

    const statuses = await services[0].statuses();
    const total = Object.values(statuses).reduce((a, b) => a + b, 0);
    const completed = statuses.completed ?? 0;
    const failed = (statuses.failed ?? 0) + (statuses.error ?? 0) + (statuses.cancelled ?? 0);
    const accepted = acceptMs.length;
    const migrations = accepted + soloMs.length;
    const all = await counts();
    const none: MethodCount = { calls: 0, statements: 0, db_ms: 0, ms: 0 };
    const ran = (performance.now() - runStart) / 1000;
    const upkeep = group(all, 'upkeep');
    const heaps = (await Promise.all(services.map((c) => c.heap()))).filter((h): h is HeapFigures => h !== null);
    collect();
    const after = process.memoryUsage();
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, after.rss);
    const threaded = heaps.length > 0;
    return {
      backend: backend.name,
      database: db.description,
      conductors,
      threads: o.threads,
      hosts: o.hosts,
      containers: o.hosts * o.containersPerHost,
      heartbeats: {
        first_round_s: round(firstRound),
        per_s: round(o.hosts / secondRound, 0),
        latency_ms: percentiles(hbLatency),
        calls: round((hb.calls - hbBefore.calls) / o.hosts, 1),
        statements: round((hb.statements - hbBefore.statements) / o.hosts, 1),
      },
      burst: {
        requested: picks.length,
        sent,
        accepted,
        refused,
        seconds: round(burstSeconds),
        accepted_per_s: round(accepted / Math.max(burstSeconds, 1e-3), 1),
        latency_ms: percentiles(acceptMs),
        heartbeats: beats,
      },
      decision: {
        accept_alone_ms: percentiles(soloMs),
        accept_alone_db: soloCost,
        choose_ms: percentiles(decisions.choose_ms),
        list_hosts_ms: percentiles(decisions.list_ms),
      },
      drain: {
        completed,
        failed,
        unfinished: total - completed - failed,
        seconds: round(drainSeconds),
        completed_per_s: round(completed / Math.max(drainSeconds, 1e-3), 1),
        timed_out: timedOut,
      },
      queries: {
        accept: minus(group(all, 'accept'), none, migrations),
        flow: minus(group(all, 'flow'), none, migrations),
        upkeep_per_s: { calls: round(upkeep.calls / ran, 1), statements: round(upkeep.statements / ran, 1), db_ms: round(upkeep.db_ms / ran, 1) },
      },
      max_per_host: fake.maxPerHost,
      memory: {
        baseline_rss_mb: round(base.rss / MB, 0),
        rss_peak_mb: round(rssPeak / MB, 0),
        rss_growth_mb: round((rssPeak - base.rss) / MB, 0),
        heap_peak_mb: round(threaded ? heaps.reduce((a, h) => a + h.peak, 0) / MB : (heapPeak - base.heapUsed) / MB, 0),
        heap_after_gc_mb: round(threaded ? heaps.reduce((a, h) => a + h.after_gc, 0) / MB : (after.heapUsed - base.heapUsed) / MB, 0),
        threads: threaded,
      },
      methods: Object.fromEntries(
        Object.entries(all)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, e]) => [k, { ...e, db_ms: Math.round(e.db_ms), ms: Math.round(e.ms) }]),
      ),
      compute_calls: Object.fromEntries(fake.calls),
    };
  } finally {
    stopBeats();
    // Flows still running (a drain that hit its limit) stop here: the engine stops answering, the conductors stop.
    fake.halt();
    clearInterval(sampler);
    for (const c of services) await c.close();
    await db.dispose();
  }
}
