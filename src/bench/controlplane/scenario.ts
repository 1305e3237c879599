/**
 * One run of the control-plane benchmark: N real ConductorServices over one database, a
 * simulated fleet heartbeating into them, then a burst of migrate requests driven through the
 * conductors' own decision path (live check, scheduler, record) and flows (over the fake
 * engine), while the hosts keep heartbeating. What it measures is in ScenarioResult.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { pino, type Logger } from 'pino';
import { RequestContext } from '../../common/context.js';
import { sleep } from '../../common/sleep.js';
import { chooseTarget } from '../../conductor/hosts.js';
import { ConductorService } from '../../conductor/service.js';
import type { ComputeHost } from '../../objects/host.js';
import type { BenchBackend } from './backends.js';
import { QueryCounter, type MethodCount } from './counting.js';
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
  /** Migrate requests timed one at a time before the burst (nothing else running but heartbeats). */
  soloRequests: number;
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
  /** The process's memory (the simulated fleet included in the baseline): RSS and V8 heap peaks while it ran, heap kept after a full GC. */
  memory: { baseline_rss_mb: number; rss_peak_mb: number; rss_growth_mb: number; heap_peak_growth_mb: number; heap_growth_mb: number };
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

/** A full collection before a memory reading (gc is reachable without --expose-gc this way). */
function collect(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

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

/**
 * Several conductors each hold their own claims (a distinct owner, whose leases only it ends at
 * start); one alone keeps the service's default (it takes every claim over).
 */
function claimsOf(i: number, conductors: number): Record<string, unknown> {
  return conductors > 1 ? { claims: { owner: `bench-conductor-${i + 1}`, leaseMs: 60_000, takeOverPrefix: `bench-conductor-${i + 1}` } } : {};
}

let logger: Logger | null = null;

/** The conductors log as in production, but only warnings: info lines per step would measure the logger. */
export function benchLogger(): Logger {
  logger ??= pino({ level: process.env.FERRY_LOG_LEVEL ?? 'warn', base: { pid: process.pid, component: 'bench.controlplane' } }, pino.destination(2));
  return logger;
}

export async function runScenario(backend: BenchBackend, conductors: number, o: ScenarioOptions, say: (s: string) => void = () => undefined): Promise<ScenarioResult> {
  const fleet = new Fleet({ hosts: o.hosts, containersPerHost: o.containersPerHost });
  const fake = new FakeCompute(fleet, o.timings);
  const counter = new QueryCounter();
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
  const conns: { close(): Promise<void> }[] = [];
  const services: ConductorService[] = [];
  let stopBeats = () => undefined as void;
  try {
    for (let i = 0; i < conductors; i++) {
      const c = await db.connect(counter);
      conns.push(c);
      const svc = new ConductorService(
        c.repo,
        fake,
        async () => undefined,
        {
          maxConcurrentPerHost: o.maxConcurrentPerHost,
          serviceDownTime: Math.max(30, 3 * o.reportInterval),
          containerStateMaxAge: 1,
          retry: { deadlineMs: 30_000, backoffMs: 500 },
          ...claimsOf(i, conductors),
        },
        log,
        fake,
      );
      services.push(svc);
      // As ferry-conductor starts: resume what is left (nothing here), then renew claims and scan for unclaimed work.
      await svc.recover();
    }
    const names = Array.from({ length: o.hosts }, (_, i) => hostName(i));
    // report_state is a cast to the topic: any conductor takes it (round-robin here).
    const beat = async (host: string, k: number) => {
      const state = JSON.parse(JSON.stringify(fleet.state(host))) as ReturnType<Fleet['state']>;
      await services[k % services.length].reportState(host, state, new Date().toISOString());
    };

    say(`  heartbeats: ${o.hosts} hosts x ${o.containersPerHost} containers, first round`);
    let t0 = performance.now();
    await pool(names, o.heartbeatConcurrency, (h, i) => beat(h, i));
    const firstRound = (performance.now() - t0) / 1000;
    const hbBefore = counter.group('heartbeat');
    const hbLatency: number[] = [];
    t0 = performance.now();
    await pool(names, o.heartbeatConcurrency, async (h, i) => {
      const s = performance.now();
      await beat(h, i);
      hbLatency.push(performance.now() - s);
    });
    const secondRound = (performance.now() - t0) / 1000;
    const hb = counter.group('heartbeat');
    say(`  heartbeats: first round ${firstRound.toFixed(1)} s, second ${secondRound.toFixed(1)} s`);

    // The scheduler alone, over the host list as the conductor reads it.
    const listMs: number[] = [];
    let hosts: ComputeHost[] = [];
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      hosts = await services[0].listHosts();
      listMs.push(performance.now() - s);
    }
    const chooseMs: number[] = [];
    for (let i = 0; i < o.decisionSamples; i++) {
      const src = names[(i * 7919) % names.length];
      const s = performance.now();
      chooseTarget(hosts, src, null);
      chooseMs.push(performance.now() - s);
    }

    // A few requests one at a time, nothing else running: what one decision costs.
    const ctx = RequestContext.admin();
    const picks = fleet.pickRunning(o.burst + o.soloRequests);
    const solo = picks.splice(0, Math.min(o.soloRequests, Math.max(0, picks.length - 1)));
    const soloMs: number[] = [];
    const acceptBefore = counter.group('accept');
    for (const p of solo) {
      const s = performance.now();
      await services[0].migrateOnLiveState(ctx, p.id, null);
      soloMs.push(performance.now() - s);
    }
    const acceptSolo = counter.group('accept');
    const soloCost: QueryCost = {
      calls: round((acceptSolo.calls - acceptBefore.calls) / Math.max(1, solo.length), 1),
      statements: round((acceptSolo.statements - acceptBefore.statements) / Math.max(1, solo.length), 1),
      db_ms: round((acceptSolo.db_ms - acceptBefore.db_ms) / Math.max(1, solo.length), 1),
    };

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
        const due = start + i * gapMs;
        const wait = due - performance.now();
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
          await services[i % services.length].migrateOnLiveState(ctx, p.id, null);
          const e = performance.now();
          acceptMs.push(e - s);
          lastAccept = e;
        } catch (err) {
          const name = (err as Error).constructor?.name ?? 'Error';
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
    await Promise.race([Promise.all(services.map((s) => s.whenIdle())), drainLimit]);
    clearTimeout(limit);
    const drainSeconds = (performance.now() - burstStart) / 1000;
    stopBeats();
    await background;
    await Promise.all(pending);

    const all = await services[0].listMigrations({});
    const completed = all.filter((m) => m.status === 'completed').length;
    const failed = all.filter((m) => m.status === 'failed' || m.status === 'error' || m.status === 'cancelled').length;
    const accepted = acceptMs.length;
    const migrations = accepted + soloMs.length;
    const per = (g: MethodCount): QueryCost => ({
      calls: round(g.calls / Math.max(1, migrations), 1),
      statements: round(g.statements / Math.max(1, migrations), 1),
      db_ms: round(g.db_ms / Math.max(1, migrations), 1),
    });
    const hbCalls = hb.calls - hbBefore.calls;
    const upkeep = counter.group('upkeep');
    const ran = (performance.now() - runStart) / 1000;
    collect();
    const after = process.memoryUsage();
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, after.rss);
    return {
      backend: backend.name,
      database: db.description,
      conductors,
      hosts: o.hosts,
      containers: o.hosts * o.containersPerHost,
      heartbeats: {
        first_round_s: round(firstRound),
        per_s: round(o.hosts / secondRound, 0),
        latency_ms: percentiles(hbLatency),
        calls: round(hbCalls / o.hosts, 1),
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
      decision: { accept_alone_ms: percentiles(soloMs), accept_alone_db: soloCost, choose_ms: percentiles(chooseMs), list_hosts_ms: percentiles(listMs) },
      drain: {
        completed,
        failed,
        unfinished: all.length - completed - failed,
        seconds: round(drainSeconds),
        completed_per_s: round(completed / Math.max(drainSeconds, 1e-3), 1),
        timed_out: timedOut,
      },
      queries: {
        accept: per(counter.group('accept')),
        flow: per(counter.group('flow')),
        upkeep_per_s: { calls: round(upkeep.calls / ran, 1), statements: round(upkeep.statements / ran, 1), db_ms: round(upkeep.db_ms / ran, 1) },
      },
      max_per_host: fake.maxPerHost,
      memory: {
        baseline_rss_mb: round(base.rss / MB, 0),
        rss_peak_mb: round(rssPeak / MB, 0),
        rss_growth_mb: round((rssPeak - base.rss) / MB, 0),
        heap_peak_growth_mb: round((heapPeak - base.heapUsed) / MB, 0),
        heap_growth_mb: round((after.heapUsed - base.heapUsed) / MB, 0),
      },
      methods: counter.snapshot(),
      compute_calls: Object.fromEntries(fake.calls),
    };
  } finally {
    stopBeats();
    fake.halt();
    for (const svc of services) (svc as unknown as { stopClaims?: () => void }).stopClaims?.();
    clearInterval(sampler);
    // Flows still running (a drain that timed out) end on their own; their database goes away under them.
    for (const c of conns) await c.close().catch(() => undefined);
    await db.dispose();
  }
}
