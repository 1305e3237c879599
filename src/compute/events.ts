/**
 * Live container state: follows the container engine's event stream and tells the conductor
 * of each change at once; whenever the stream (re)connects, a full inventory goes out
 * straight away, since events may have been missed while it was down.
 *
 * Engine-neutral: ContainerEvent, the ContainerEventSource an engine supplies (Docker's is
 * src/compute/docker/events.ts) and the ContainerEventFollower that sends what it reports.
 */
import type { Logger } from '../common/log.js';
import { sleep } from '../common/sleep.js';

export const CONTAINER_EVENT_KINDS = ['create', 'start', 'die', 'destroy', 'rename', 'pause', 'unpause', 'checkpoint', 'restore'] as const;
export type ContainerEventKind = (typeof CONTAINER_EVENT_KINDS)[number];

/** The status a container has after it is destroyed (it is listed no more). */
export const REMOVED_STATUS = 'removed';

/** One change of one container, as its host saw it. */
export interface ContainerEvent {
  kind: ContainerEventKind;
  id: string;
  /** The name after the event; null when the engine did not say. */
  name: string | null;
  image: string | null;
  /** The state after the event (`running`, `exited`, ..., `removed`); null when the event does not change it (rename, checkpoint). */
  status: string | null;
  /** The container's project label (PROJECT_LABEL); null or absent: not labelled, or the engine did not say. */
  project_id?: string | null;
  /** When the engine says it happened, ISO 8601 UTC. */
  at: string;
}

/** An open event stream. `closed` settles when it ends: null when closed on purpose, else why it broke. */
export interface EventSubscription {
  readonly closed: Promise<Error | null>;
  close(): void;
}

/** What an engine offers: a stream of container events, opened on demand. */
export interface ContainerEventSource {
  readonly engine: string;
  /** Resolves once the engine has accepted the subscription (events after that moment are delivered, in order). */
  subscribe(onEvent: (e: ContainerEvent) => void): Promise<EventSubscription>;
}

// ---------------------------------------------------------------- Docker

/** Where the follower sends what it learns (the conductor, over the bus). */
export interface EventSink {
  /** One event (a cast to the conductor). */
  event(e: ContainerEvent): Promise<void>;
  /** A full inventory of the host (the heartbeat's report), sent now. */
  inventory(reason: string): Promise<void>;
}

export interface FollowerOptions {
  /** First wait before re-subscribing after the stream broke, ms (default 100); doubles up to retryMaxMs. */
  retryInitialMs?: number;
  /** Longest wait between tries, ms (default 1000: an engine back from a restart is noticed within a second). */
  retryMaxMs?: number;
  /** Events waiting to be sent beyond this are dropped and a full inventory is sent instead. */
  maxPending?: number;
}

/**
 * Keeps one subscription open for as long as it runs: events go to the sink one after the
 * other, in the engine's order; each (re)connection is followed by a full inventory.
 */
export class ContainerEventFollower {
  private sub: EventSubscription | null = null;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private sending: Promise<void> = Promise.resolve();
  private pending = 0;
  private inventoryRunning: Promise<void> | null = null;
  private inventoryAgain: string | null = null;
  private wake: (() => void) | null = null;
  /** Subscriptions opened so far (the first is a connect, the others reconnects). */
  connections = 0;

  constructor(
    private readonly source: ContainerEventSource,
    private readonly sink: EventSink,
    private readonly log: Logger,
    private readonly opts: FollowerOptions = {},
  ) {}

  get connected(): boolean {
    return this.sub !== null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.follow();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sub?.close();
    this.wake?.();
    await this.loop;
    await this.sending;
  }

  /**
   * Send a full inventory now. Requests that come while one is being sent are folded into
   * one more, sent after it (so the last request is always answered by a newer inventory).
   */
  requestInventory(reason: string): Promise<void> {
    if (this.inventoryRunning) {
      this.inventoryAgain = reason;
      return this.inventoryRunning;
    }
    const run = async (why: string): Promise<void> => {
      try {
        await this.sink.inventory(why);
        this.log.info({ reason: why }, 'full inventory sent');
      } catch (e) {
        this.log.warn({ err: (e as Error).message, reason: why }, 'full inventory could not be sent');
      }
      const again = this.inventoryAgain;
      this.inventoryAgain = null;
      if (again !== null) await run(again);
    };
    this.inventoryRunning = run(reason).finally(() => {
      this.inventoryRunning = null;
    });
    return this.inventoryRunning;
  }

  private forward(e: ContainerEvent): void {
    const max = this.opts.maxPending ?? 1000;
    if (this.pending >= max) {
      // The bus is not keeping up (or is down): what is queued will be repaired by an inventory.
      void this.requestInventory('event backlog');
      return;
    }
    this.pending++;
    this.sending = this.sending
      .then(() => this.sink.event(e))
      .catch((err: Error) => this.log.warn({ err: err.message, event: e.kind, container: e.id.slice(0, 12) }, 'container event not sent'))
      .finally(() => {
        this.pending--;
      });
  }

  private async follow(): Promise<void> {
    const initial = this.opts.retryInitialMs ?? 100;
    const max = this.opts.retryMaxMs ?? 1000;
    let delay = initial;
    let failures = 0;
    while (this.running) {
      let why: Error | null;
      try {
        this.sub = await this.source.subscribe((e) => this.forward(e));
        const reconnect = this.connections > 0;
        this.connections++;
        this.log.info({ engine: this.source.engine, reconnect }, reconnect ? 'container event stream reconnected' : 'following container events');
        if (!this.running) {
          this.sub.close();
          break;
        }
        delay = initial;
        failures = 0;
        void this.requestInventory(reconnect ? 'event stream reconnected' : 'event stream connected');
        why = await this.sub.closed;
      } catch (e) {
        why = e as Error;
      }
      this.sub = null;
      if (!this.running) break;
      failures++;
      // Log the first failure and then every power of two, so an engine down for long does not flood the log.
      if ((failures & (failures - 1)) === 0) {
        this.log.warn({ engine: this.source.engine, err: why?.message, attempt: failures }, 'container event stream lost; re-subscribing');
      }
      await new Promise<void>((r) => {
        this.wake = r;
        void sleep(delay).then(() => r());
      });
      this.wake = null;
      delay = Math.min(max, delay * 2);
    }
  }
}
