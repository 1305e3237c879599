/**
 * The conductors under test, each behind one handle: in this thread (one event loop for all of
 * them, as the unit test runs them) or each in its own worker thread (its own event loop and
 * CPU, as separate ferry-conductor processes; the benchmark's default). A thread's conductor
 * reaches the simulated engine in the main thread by messages, as a real one reaches its
 * agents over the bus; heartbeats travel as JSON text, as on the bus.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker, type MessagePort } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import { RequestContext } from '../../common/context.js';
import type { Inventory, InventoryAPI } from '../../compute/inventory.js';
import type { ComputeArgs, ComputeMethod, ComputeResult } from '../../compute/methods.js';
import type { ComputeAPI } from '../../compute/rpcapi.js';
import { chooseTarget, startEmbeddedConductor, type ClaimOptions, type ConductorStore, type EmbeddedConductor } from '../../conductor/embedded.js';
import type { HostState } from '../../objects/host.js';
import type { BenchDatabase } from './backends.js';
import { QueryCounter, type MethodCount } from './counting.js';
import type { FakeCompute } from './fake-compute.js';

let logger: Logger | null = null;

/** The conductors log as in production, but only warnings: info lines per step would measure the logger. */
export function benchLogger(): Logger {
  logger ??= pino({ level: process.env.FERRY_LOG_LEVEL ?? 'warn', base: { pid: process.pid, component: 'bench.controlplane' } }, pino.destination(2));
  return logger;
}

/** What a conductor is set up with (plain data: it crosses into a worker). */
export interface ConductorSetup {
  index: number;
  conductors: number;
  maxConcurrentPerHost: number;
  serviceDownTime: number;
}

export interface DecisionSamples {
  list_ms: number[];
  choose_ms: number[];
}

export interface HeapFigures {
  /** V8 heap of the conductor's isolate: when it started, its peak, and after a full GC at the end. */
  base: number;
  peak: number;
  after_gc: number;
}

export interface ConductorHandle {
  /** A heartbeat (report_state), the state as JSON text. */
  reportState(host: string, stateJson: string, takenAt: string): Promise<void>;
  /** A migrate request for one container; rejects with the refusal (its class name as `name`). */
  migrate(ref: string): Promise<void>;
  /** Reading the host list, then chooseTarget alone over it, `n` times from different sources. */
  sampleDecisions(sources: string[], n: number): Promise<DecisionSamples>;
  whenIdle(): Promise<void>;
  /** How many migrations the database has in each status. */
  statuses(): Promise<Record<string, number>>;
  counts(): Promise<Record<string, MethodCount>>;
  /** Only for a conductor in its own thread (its isolate's heap is its own). */
  heap(): Promise<HeapFigures | null>;
  /** Stop (a thread ends, flows and all; in this thread the caller halts the engine first). */
  close(): Promise<void>;
}

/**
 * Claims as ferry-conductor takes them ([conductor] claim_lease_seconds' default, a scan for
 * unclaimed work at most every 5 s): each conductor its own owner, whose previous leases only it
 * ends at start; a lone one takes every claim over, as on SQLite.
 */
function claimsOf(s: ConductorSetup): ClaimOptions {
  const leaseMs = 30_000;
  const owner = `bench-conductor-${s.index + 1}:${process.pid}`;
  return { owner, leaseMs, scanMs: Math.min(5000, Math.floor(leaseMs / 3)), takeOverPrefix: s.conductors > 1 ? `bench-conductor-${s.index + 1}:` : '' };
}

/** A conductor as ferry-conductor builds one, its notifications dropped (no bus here); it resumes what is left (nothing here) and takes up its claims. */
export async function buildConductor(
  db: { repo: ConductorStore },
  engine: ComputeAPI & InventoryAPI,
  s: ConductorSetup,
  log: Logger,
): Promise<EmbeddedConductor> {
  return startEmbeddedConductor(
    db.repo,
    engine,
    {
      maxConcurrentPerHost: s.maxConcurrentPerHost,
      serviceDownTime: s.serviceDownTime,
      containerStateMaxAge: 1,
      retry: { deadlineMs: 30_000, backoffMs: 500 },
      claims: claimsOf(s),
    },
    log,
  );
}

export async function sampleDecisions(svc: EmbeddedConductor, sources: string[], n: number): Promise<DecisionSamples> {
  const list_ms: number[] = [];
  let hosts = await svc.listHosts();
  for (let i = 0; i < 5; i++) {
    const s = performance.now();
    hosts = await svc.listHosts();
    list_ms.push(performance.now() - s);
  }
  const choose_ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const src = sources[(i * 7919) % sources.length];
    const s = performance.now();
    chooseTarget(hosts, src, null);
    choose_ms.push(performance.now() - s);
  }
  return { list_ms, choose_ms };
}

export async function statusCounts(svc: EmbeddedConductor): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of await svc.listMigrations({})) out[m.status] = (out[m.status] ?? 0) + 1;
  return out;
}

/** A full collection (gc is reachable without --expose-gc this way). */
export function collect(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

/** The same operations whether the service runs here or in a worker. */
export function operations(svc: EmbeddedConductor, counter: QueryCounter) {
  const ctx = RequestContext.admin();
  return {
    reportState: (a: { host: string; state: string; takenAt: string }) => svc.reportState(a.host, JSON.parse(a.state) as HostState, a.takenAt),
    migrate: async (a: { ref: string }) => void (await svc.migrateOnLiveState(ctx, a.ref, null)),
    sampleDecisions: (a: { sources: string[]; n: number }) => sampleDecisions(svc, a.sources, a.n),
    whenIdle: () => svc.whenIdle(),
    statuses: () => statusCounts(svc),
    counts: async () => counter.raw(),
  };
}

/** A conductor in this thread. */
export async function inlineConductor(db: BenchDatabase, engine: FakeCompute, s: ConductorSetup, log: Logger): Promise<ConductorHandle> {
  const counter = new QueryCounter();
  const conn = await db.connect(counter);
  const svc = await buildConductor(conn, engine, s, log);
  const ops = operations(svc, counter);
  return {
    reportState: (host, state, takenAt) => ops.reportState({ host, state, takenAt }),
    migrate: (ref) => ops.migrate({ ref }),
    sampleDecisions: (sources, n) => ops.sampleDecisions({ sources, n }),
    whenIdle: ops.whenIdle,
    statuses: ops.statuses,
    counts: ops.counts,
    heap: async () => null,
    async close() {
      svc.stopClaims();
      await conn.close().catch(() => undefined);
    },
  };
}

// ---- messages between the main thread and a conductor's worker ----

interface Request {
  t: 'req';
  id: number;
  op: string;
  args: unknown;
}

interface Response {
  t: 'res';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string };
}

/** Requests both ways over one port, each answered once. */
export class Channel {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly handlers = new Map<string, (args: never) => Promise<unknown>>();

  constructor(private readonly port: MessagePort | Worker) {
    port.on('message', (m: Request | Response) => void this.receive(m));
  }

  handle<A>(op: string, fn: (args: A) => Promise<unknown>): void {
    this.handlers.set(op, fn as (args: never) => Promise<unknown>);
  }

  call<T>(op: string, args: unknown = null): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ t: 'req', id, op, args } satisfies Request);
    });
  }

  /** Every request still waiting fails (the other side is gone). */
  failAll(why: string): void {
    for (const w of this.waiting.values()) w.reject(new Error(why));
    this.waiting.clear();
  }

  private async receive(m: Request | Response): Promise<void> {
    if (m.t === 'res') {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(Object.assign(new Error(m.error?.message ?? 'failed'), { name: m.error?.name ?? 'Error' }));
      return;
    }
    const fn = this.handlers.get(m.op);
    try {
      if (!fn) throw new Error(`no handler for ${m.op}`);
      const value = await fn(m.args as never);
      this.port.postMessage({ t: 'res', id: m.id, ok: true, value } satisfies Response);
    } catch (e) {
      const err = e as Error;
      this.port.postMessage({ t: 'res', id: m.id, ok: false, error: { name: err.constructor?.name ?? err.name, message: err.message } } satisfies Response);
    }
  }
}

/** The engine as a conductor in a worker sees it: every step and live inventory asked of the main thread. */
export class RemoteEngine implements ComputeAPI, InventoryAPI {
  constructor(private readonly ch: Channel) {}

  call<M extends ComputeMethod>(_ctx: RequestContext, host: string, method: M, args: ComputeArgs<M>): Promise<ComputeResult<M>> {
    return this.ch.call<ComputeResult<M>>('compute', { host, method, args });
  }

  inventory(_ctx: RequestContext, host: string): Promise<Inventory> {
    return this.ch.call<Inventory>('inventory', { host });
  }
}

/** What a conductor's worker is started with. */
export interface WorkerInit {
  url: string;
  setup: ConductorSetup;
}

/** A conductor in its own worker thread (dist/bench/controlplane/worker.js). */
export async function threadConductor(db: BenchDatabase, engine: FakeCompute, s: ConductorSetup): Promise<ConductorHandle> {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { url: db.url, setup: s } satisfies WorkerInit });
  const ch = new Channel(worker);
  const ctx = RequestContext.admin();
  ch.handle<{ host: string; method: ComputeMethod; args: never }>('compute', (a) => engine.call(ctx, a.host, a.method, a.args));
  ch.handle<{ host: string }>('inventory', (a) => engine.inventory(ctx, a.host));
  const failed = new Promise<never>((_, reject) => {
    worker.once('error', (e) => {
      ch.failAll(`conductor ${s.index + 1}'s thread failed: ${e.message}`);
      reject(e);
    });
  });
  failed.catch(() => undefined);
  // The worker says when its conductor is up (its requests before that would find no handler).
  await Promise.race([new Promise<void>((resolve) => ch.handle('ready', async () => resolve())), failed]);
  return {
    reportState: (host, state, takenAt) => ch.call('reportState', { host, state, takenAt }),
    migrate: (ref) => ch.call('migrate', { ref }),
    sampleDecisions: (sources, n) => ch.call('sampleDecisions', { sources, n }),
    whenIdle: () => ch.call('whenIdle'),
    statuses: () => ch.call('statuses'),
    counts: () => ch.call('counts'),
    heap: () => ch.call('heap'),
    async close() {
      await worker.terminate();
      ch.failAll('conductor stopped');
    },
  };
}
