/**
 * What the conductor asks of its database, counted: every Repository call (by method, with the
 * time spent in it) and every SQL statement the backend runs, each statement attributed to the
 * repository method it ran for (AsyncLocalStorage, so that an asynchronous driver's statements
 * are attributed too). Calls are grouped as the benchmark reports them: heartbeats, deciding and
 * recording a migration (accept), and driving it (flow: every call about one migration by its uuid).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ConductorStore } from '../../conductor/embedded.js';

export type CallGroup = 'heartbeat' | 'accept' | 'flow' | 'upkeep';

export interface MethodCount {
  calls: number;
  statements: number;
  /** Time its statements took in the driver (countStatements): SQLite's own work, or MariaDB's round trips. */
  db_ms: number;
  /** Time until the call's promise settled, waits (the driver's queue, the event loop) included. */
  ms: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEARTBEAT_METHODS = new Set(['saveHostReport', 'applyContainerChange']);
/** A conductor's background work: leases renewed, unclaimed work looked for, its queue's records read again. */
const UPKEEP_METHODS = new Set(['renewClaims', 'expireClaims', 'claimable', 'migrationStates']);
/** Flow calls not keyed by the migration's uuid. */
const FLOW_METHODS = new Set(['setContainerHost']);

/**
 * Which group a repository call belongs to: heartbeats, claim upkeep, a call about one
 * migration by its uuid (its flow, its claim and admission), or else deciding and recording.
 */
export function groupOf(method: string, args: readonly unknown[]): CallGroup {
  if (HEARTBEAT_METHODS.has(method)) return 'heartbeat';
  if (UPKEEP_METHODS.has(method)) return 'upkeep';
  const byUuid = args.slice(0, 2).some((a) => typeof a === 'string' && UUID_RE.test(a));
  if (FLOW_METHODS.has(method) || (byUuid && method !== 'createMigration')) return 'flow';
  return 'accept';
}

export class QueryCounter {
  private readonly als = new AsyncLocalStorage<string>();
  /** `${group}:${method}` -> counts. */
  readonly methods = new Map<string, MethodCount>();
  /** Statements run outside any repository call (schema set-up). */
  unattributed = 0;

  private entry(key: string): MethodCount {
    let e = this.methods.get(key);
    if (!e) {
      e = { calls: 0, statements: 0, db_ms: 0, ms: 0 };
      this.methods.set(key, e);
    }
    return e;
  }

  /** Called by a backend's hook for each statement it ran, with the time it took. */
  statement(ms: number): void {
    const key = this.als.getStore();
    if (!key) {
      this.unattributed++;
      return;
    }
    const e = this.entry(key);
    e.statements++;
    e.db_ms += ms;
  }

  /** The repository with every call counted and its statements attributed. */
  wrap(repo: ConductorStore): ConductorStore {
    return new Proxy(repo, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function' || typeof prop !== 'string') return v;
        const fn = v as (...a: unknown[]) => unknown;
        return (...args: unknown[]) => {
          const key = `${groupOf(prop, args)}:${prop}`;
          const e = this.entry(key);
          e.calls++;
          const t0 = performance.now();
          const r = this.als.run(key, () => fn.apply(target, args));
          // A view of the repository (fenced by a claim) is counted like the repository.
          if (prop === 'fenced' && typeof r === 'object' && r !== null) return this.wrap(r as ConductorStore);
          const done = () => {
            e.ms += performance.now() - t0;
          };
          if (r instanceof Promise) return r.finally(done);
          done();
          return r;
        };
      },
    });
  }

  /** Every count as it stands (to be added up with other conductors'). */
  raw(): Record<string, MethodCount> {
    return Object.fromEntries([...this.methods].map(([k, e]) => [k, { ...e }]));
  }
}
