/**
 * The per-host queue: migrations this conductor holds wait here until their hosts have slots
 * (counted over every conductor), then their flows run; at most one pass at a time, so that no
 * migration starts twice.
 */
import { ClaimLost } from '../common/errors.js';
import { RequestContext } from '../common/context.js';
import { isFinal, type Migration } from '../objects/migration.js';
import type { Claims } from './claims.js';
import { MigrationFlow } from './flow.js';
import type { ConductorDeps } from './options.js';

/**
 * A migration this conductor holds the claim of and has not started yet, with what deciding to
 * start it needs, so that a pass over the queue reads the database only for the one it starts.
 */
export interface Queued {
  uuid: string;
  /** Its source and its target. */
  hosts: string[];
  /** It needs slots on its hosts first (still `accepted`, no abort asked), as far as this conductor last read. */
  admission: boolean;
}

/** Starts a migration's completion timer when its flow starts (completion-timer.ts); null: none. */
export type StartTimer = (ctx: RequestContext, m: Migration) => NodeJS.Timeout | null;

/** The hosts a migration occupies: its source and its target. */
export function hostsOf(m: Migration): string[] {
  return m.dest_host && m.dest_host !== m.source_host ? [m.source_host, m.dest_host] : [m.source_host];
}

export class MigrationQueue {
  private readonly active = new Map<string, number>(); // host -> migrations in flight from or to it
  private readonly running = new Set<string>(); // uuids with a flow in progress
  private readonly queue: Queued[] = [];
  private pumping: Promise<void> = Promise.resolve();
  private readonly idle: (() => void)[] = [];
  /** Called once when the next migration flow ends (evacuations wait on it to start the next container). */
  private readonly flowEnded: (() => void)[] = [];
  /** Set at shutdown: nothing new starts, and flows that fail because the database closed are left to the next conductor. */
  private stopping = false;

  constructor(
    private readonly deps: ConductorDeps,
    private readonly claims: Claims,
    private readonly startTimer: StartTimer,
  ) {}

  enqueue(m: Migration): void {
    this.queue.push(this.queued(m));
    this.pump();
  }

  /** Queue a migration taken over from another conductor (the next pump pass considers it). */
  add(q: Queued): void {
    this.queue.push(q);
  }

  queued(m: Migration): Queued {
    return { uuid: m.uuid, hosts: hostsOf(m), admission: m.status === 'accepted' && !m.abort_requested };
  }

  isQueued(uuid: string): boolean {
    return this.queue.some((q) => q.uuid === uuid);
  }

  /** Whether a flow of this migration runs here now. */
  isRunning(uuid: string): boolean {
    return this.running.has(uuid);
  }

  /** Take a migration out of the queue (it ended without a flow). */
  remove(uuid: string): void {
    const i = this.queue.findIndex((q) => q.uuid === uuid);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Call `f` once, when the next migration flow ends. */
  onNextFlowEnd(f: () => void): void {
    this.flowEnded.push(f);
  }

  /** At shutdown, before the database closes: start nothing more (the flows in flight are resumed by the next conductor). */
  stop(): void {
    this.stopping = true;
  }

  /** Start what may start now; passes run one after another, so that no migration starts twice. */
  pump(): void {
    if (this.stopping) {
      // What is still queued is left to the next conductor: idle once no flow runs here.
      if (this.running.size === 0) for (const f of this.idle.splice(0)) f();
      return;
    }
    this.pumping = this.pumping.then(
      () => this.pumpOnce(),
      () => this.pumpOnce(),
    );
    this.pumping.catch((e: unknown) => this.deps.log.error({ err: (e as Error).message }, 'could not read queued migrations from the database'));
  }

  /**
   * One pass over the queue, in order. Both ends count: a host runs at most maxConcurrentPerHost
   * migrations, as source or as target, counted over every conductor in the database (admit).
   * One that already passed `accepted` holds its slots: it goes on regardless; so does one asked
   * to abort (its flow only cancels it). A host this conductor alone fills already is not asked
   * about (the database would say no), so a long queue costs nothing while its hosts are busy;
   * only the migration about to start is read again. What other conductors change in queued
   * records (an abort, an end) is read by refreshQueue.
   */
  private async pumpOnce(): Promise<void> {
    const max = this.deps.opts.maxConcurrentPerHost;
    for (const q of [...this.queue]) {
      if (!this.queue.includes(q)) continue; // ended meanwhile (aborted here)
      if (q.admission) {
        if (q.hosts.some((h) => (this.active.get(h) ?? 0) >= max)) continue;
        if (!(await this.deps.repo.admit(q.uuid, this.claims.owner, q.hosts, max))) continue;
      }
      const m = await this.deps.repo.getMigration(q.uuid);
      const at = this.queue.indexOf(q);
      if (at < 0) continue;
      this.queue.splice(at, 1);
      if (!m || isFinal(m.status)) {
        await this.claims.release('migration', q.uuid);
        continue;
      }
      this.start(m);
    }
    if (this.running.size === 0 && this.queue.length === 0) for (const f of this.idle.splice(0)) f();
  }

  /**
   * Read again the status of the migrations waiting for slots (one statement per 200): one
   * another conductor was asked to abort starts at the next pass (its flow cancels it), one that
   * ended is dropped from the queue there.
   */
  async refreshQueue(): Promise<void> {
    const waiting = this.queue.filter((q) => q.admission);
    if (!waiting.length) return;
    const states = await this.deps.repo.migrationStates(waiting.map((q) => q.uuid));
    for (const q of waiting) {
      const s = states.get(q.uuid);
      q.admission = s !== undefined && s.status === 'accepted' && !s.abort_requested;
    }
  }

  /** How many migrations run now from or to each host (for tests and logs). */
  activeByHost(): Map<string, number> {
    return new Map([...this.active].filter(([, n]) => n > 0));
  }

  private start(m: Migration): void {
    const { repo, compute, notify, log, opts } = this.deps;
    const owner = this.claims.owner;
    const hosts = hostsOf(m);
    for (const h of hosts) this.active.set(h, (this.active.get(h) ?? 0) + 1);
    this.running.add(m.uuid);
    const ctx = new RequestContext({
      request_id: m.request_id ?? undefined,
      user_id: m.user_id,
      project_id: m.project_id,
      roles: ['admin'],
      is_admin: true,
    });
    const flow = new MigrationFlow(
      {
        repo: repo.fenced('migration', m.uuid, owner),
        compute,
        notify,
        log,
        retry: opts.retry,
        stillOwner: async () => (await repo.getClaim('migration', m.uuid))?.owner === owner,
      },
      ctx,
      m.uuid,
    );
    const timeout = this.startTimer(ctx, m);
    const release = () => {
      if (timeout) clearTimeout(timeout);
      for (const h of hosts) this.active.set(h, (this.active.get(h) ?? 1) - 1);
      this.running.delete(m.uuid);
      for (const f of this.flowEnded.splice(0)) f();
      this.pump();
    };
    flow.run().then(
      async (final) => {
        log.info({ migration: m.uuid, status: final.status, freeze_ms: final.freeze_ms, error: final.error }, 'migration ended');
        await this.claims.release('migration', m.uuid);
        release();
      },
      (e: unknown) => {
        if (e instanceof ClaimLost) {
          log.warn({ migration: m.uuid, err: e.message }, 'migration claim lost: this conductor stops, the one that took it over goes on');
        } else if (this.stopping) {
          log.info({ migration: m.uuid, err: (e as Error).message }, 'migration flow left at shutdown: the next conductor resumes it from its record');
        } else {
          // Only the database can fail here: the flow catches everything else. Its claim runs out and a conductor resumes it.
          log.error({ migration: m.uuid, err: (e as Error).message }, 'migration flow stopped: its record could not be written');
        }
        release();
      },
    );
  }

  /** Resolves when no flow runs and none is queued (used at shutdown and by tests). */
  whenIdle(): Promise<void> {
    if (this.running.size === 0 && (this.queue.length === 0 || this.stopping)) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }
}
