/**
 * The RPC server side of oslo.messaging (`RPCServer` + `RPCDispatcher` over the rabbit
 * driver). Consumes `<topic>` and `<topic>.<server>` on the control exchange and a private
 * queue on the `<topic>_fanout` exchange, dispatches each request to the first endpoint whose
 * target accepts its namespace and version, and replies to `_reply_q` in the 2.0 envelope.
 *
 * As in oslo, a request is acknowledged before it is dispatched (at most once: a crash does
 * not run it twice), and a malformed message is logged and rejected without touching the rest.
 * At most `poolSize` requests run at once (oslo's executor_thread_pool_size): a request is
 * acknowledged only once it holds a slot, and the broker hands each consumer no more than
 * `poolSize` unacknowledged messages, so the rest stay on the queue for this or another server.
 */
import { FerryError, InvalidInput, NoSuchMethod, UnsupportedVersion } from '../../common/errors.js';
import { getLogger, runWithRequestIds } from '../../common/log.js';
import { RequestContext } from '../../common/context.js';
import { unpackContext } from '../context.js';
import { MalformedMessage, deserializeMsg, isObject, serializeMsg, uuidHex, type JsonObject } from '../envelope.js';
import { OSLO_DISPATCHER_MODULE, serializeFailure, withWireIdentity } from '../failure.js';
import type { Consumer, Delivery, Transport } from '../transport.js';
import { versionIsCompatible } from '../version.js';
import { DispatchSlots } from './slots.js';

const log = getLogger('bus.rpc.server');

/** An endpoint's own target: the version it implements and its namespace (oslo `Target`). */
export interface EndpointTarget {
  /** Unset: accepts any version, as an oslo endpoint without a target does. */
  version?: string;
  namespace?: string | null;
}

/**
 * Any object; its public methods are called as `method(ctx, args)`, and its optional
 * `target` property (an EndpointTarget) says which version and namespace it serves.
 */
export type Endpoint = object;

function endpointTarget(ep: Endpoint): EndpointTarget {
  const t = (ep as { target?: unknown }).target;
  return typeof t === 'object' && t !== null ? (t as EndpointTarget) : {};
}

/** Where a request came from, as the bus vouches for it; kept out of the context so it never travels on. */
export interface MessageOrigin {
  /**
   * The RabbitMQ user that published the request (its `user_id` property, which the broker
   * refuses unless it is the publishing connection's user); null when the message has none.
   */
  sender: string | null;
}

export type EndpointMethod = (ctx: RequestContext, args: Record<string, unknown>, origin?: MessageOrigin) => unknown;

export interface ServerTarget {
  topic: string;
  server: string;
  exchange?: string;
}

export interface RPCServerOptions {
  /** How many recent `_unique_id`s are remembered to drop duplicates (oslo: 16). */
  duplicateWindow?: number;
  /** How long a reply waits for a lost connection to come back, seconds (oslo retries 60 s). */
  replyWaitSeconds?: number;
  /** Requests handled at once (oslo's executor_thread_pool_size, default 64); further ones wait on the queue. */
  poolSize?: number;
  /** Unacknowledged messages the broker hands each consumer of this server at once (default: poolSize). */
  prefetch?: number;
}

/** oslo.messaging's default executor_thread_pool_size. */
export const DEFAULT_POOL_SIZE = 64;

/**
 * When the caller will stop waiting: Ferry's clients send `_expires_at` (epoch seconds; Python
 * oslo.messaging peers neither send nor read it). Undefined when the message does not say.
 */
export function callerDeadline(msg: JsonObject): number | undefined {
  const v = msg._expires_at;
  return typeof v === 'number' && Number.isFinite(v) ? v * 1000 : undefined;
}

/** The method a request names, or undefined; private (`_x`) names are never callable, as in oslo. */
export function findEndpointMethod(endpoint: object, name: string): EndpointMethod | undefined {
  if (!name || name.startsWith('_') || name === 'constructor' || name === 'target') return undefined;
  for (let o: object | null = endpoint; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    const desc = Object.getOwnPropertyDescriptor(o, name);
    if (desc) return typeof desc.value === 'function' ? (desc.value as EndpointMethod) : undefined;
  }
  return undefined;
}

/**
 * Choose the endpoint for a request like oslo's RPCDispatcher: the first endpoint whose
 * namespace matches and whose version is compatible and that has the method. Throws
 * NoSuchMethod (some endpoint was compatible) or UnsupportedVersion (none was), serialized
 * with oslo's class and module so Python callers see exactly what a Python server sends.
 */
export function selectEndpoint(
  endpoints: readonly Endpoint[],
  method: string,
  version: string,
  namespace: string | null,
): { endpoint: Endpoint; fn: EndpointMethod } {
  let foundCompatible = false;
  for (const ep of endpoints) {
    const t = endpointTarget(ep);
    if ((t.namespace ?? null) !== namespace) continue;
    if (!compatible(t.version ?? null, version)) continue;
    const fn = findEndpointMethod(ep, method);
    if (fn) return { endpoint: ep, fn };
    foundCompatible = true;
  }
  if (foundCompatible) {
    const msg = `Endpoint does not support RPC method ${method}`;
    throw withWireIdentity(new NoSuchMethod(msg, { method }), 'NoSuchMethod', OSLO_DISPATCHER_MODULE, [msg]);
  }
  const msg = `Endpoint does not support RPC version ${version}. Attempted method: ${method}`;
  throw withWireIdentity(new UnsupportedVersion(msg, { version, method }), 'UnsupportedVersion', OSLO_DISPATCHER_MODULE, [msg]);
}

/** versionIsCompatible, where a requested version that is no `major.minor` is simply not served (UnsupportedVersion, not a RangeError). */
function compatible(impVersion: string | null, version: string): boolean {
  try {
    return versionIsCompatible(impVersion, version);
  } catch {
    return false;
  }
}

export class RPCServer {
  private consumers: Consumer[] = [];
  private readonly recentIds: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly duplicateWindow: number;
  private readonly replyWaitMs: number;
  private readonly prefetch: number;
  /** Bounds the requests handled at once; shared by the server's three consumers. */
  readonly slots: DispatchSlots;
  private running = false;
  /** The private fanout queue; fixed for this server so a reconnect re-declares the same one. */
  readonly fanoutQueue: string;

  constructor(
    readonly transport: Transport,
    readonly target: ServerTarget,
    readonly endpoints: Endpoint[],
    options: RPCServerOptions = {},
  ) {
    if (!target.topic || !target.server) throw new InvalidInput("A server's target must have topic and server names specified");
    this.duplicateWindow = options.duplicateWindow ?? 16;
    this.replyWaitMs = (options.replyWaitSeconds ?? 60) * 1000;
    this.slots = new DispatchSlots(options.poolSize ?? DEFAULT_POOL_SIZE);
    this.prefetch = options.prefetch ?? this.slots.size;
    this.fanoutQueue = `${target.topic}_fanout_${uuidHex()}`;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { topic, server } = this.target;
    const layout = this.transport.queues;
    const ex = layout.topicExchange(this.target.exchange ?? this.transport.exchange);
    try {
      for (const key of [topic, `${topic}.${server}`]) {
        this.consumers.push(
          await this.transport.consume({ queue: layout.sharedQueue(key), bindings: [{ exchange: ex, routingKey: key }], prefetch: this.prefetch }, (d) =>
            this.onMessage(d),
          ),
        );
      }
      this.consumers.push(
        await this.transport.consume(
          {
            queue: layout.transientQueue(this.fanoutQueue),
            bindings: [{ exchange: layout.fanoutExchange(topic), routingKey: topic }],
            prefetch: this.prefetch,
          },
          (d) => this.onMessage(d),
        ),
      );
    } catch (e) {
      await this.stop();
      throw e;
    }
    log.info({ topic, server, exchange: ex.name }, 'RPC server consuming');
  }

  /** Stop consuming, then wait (up to waitMs) for requests already being handled to reply. */
  async stop(waitMs = 30_000): Promise<void> {
    this.running = false;
    const cs = this.consumers;
    this.consumers = [];
    // Requests still waiting for a slot are not run: cancelling the consumers gives them back to the broker.
    this.slots.drain();
    await Promise.all(cs.map((c) => c.cancel()));
    if (this.inFlight.size) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (t = setTimeout(r, waitMs)))]);
      clearTimeout(t);
    }
  }

  private onMessage(d: Delivery): void {
    let msg: JsonObject;
    try {
      msg = deserializeMsg(d.body);
    } catch (e) {
      const reason = e instanceof MalformedMessage ? e.message : String(e);
      log.error({ reason, routing_key: d.routingKey, body: d.body.subarray(0, 200).toString('utf8') }, 'rejecting a malformed RPC message');
      d.reject(false);
      return;
    }
    const method = msg.method;
    if (typeof method !== 'string' || (msg.args !== undefined && !isObject(msg.args))) {
      log.error({ routing_key: d.routingKey, method }, 'rejecting an RPC message without a method name or with bad args');
      d.reject(false);
      // Tell a waiting caller now rather than let it time out.
      if (typeof msg._msg_id === 'string' && typeof msg._reply_q === 'string') {
        this.reply(msg._reply_q, msg._msg_id, { failure: serializeFailure(new InvalidInput('malformed RPC message: no method name or bad args')) });
      }
      return;
    }
    // Waits for a slot while unacknowledged: the broker hands out no more than the prefetch meanwhile.
    const p = this.dispatchWhenFree(d, msg, method).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async dispatchWhenFree(d: Delivery, msg: JsonObject, method: string): Promise<void> {
    // Stopping: left unacknowledged, the broker puts it back on the queue when stop() closes the
    // consumer's channel (rejecting it now would hand it straight back to this consumer).
    if (!(await this.slots.take())) return;
    try {
      if (!this.running) return;
      // Not acknowledged (its channel went with a lost connection): the broker has requeued it and will hand it out again.
      if (!d.ack()) return;
      const expires = callerDeadline(msg);
      if (expires !== undefined && Date.now() > expires) {
        // Its caller gave up: running it now could act on a decision already taken otherwise.
        log.warn({ method, routing_key: d.routingKey, late_ms: Date.now() - expires }, 'dropping a request whose caller stopped waiting');
        return;
      }
      const ctx = RequestContext.fromDict(unpackContext(msg));
      const msgId = typeof msg._msg_id === 'string' ? msg._msg_id : undefined;
      const replyQ = typeof msg._reply_q === 'string' ? msg._reply_q : undefined;
      const uniqueId = typeof msg._unique_id === 'string' ? msg._unique_id : undefined;
      if (uniqueId) {
        if (this.recentIds.includes(uniqueId)) {
          log.warn({ unique_id: uniqueId, method }, 'ignoring duplicate message');
          return;
        }
        this.recentIds.push(uniqueId);
        if (this.recentIds.length > this.duplicateWindow) this.recentIds.shift();
      }
      const userId: unknown = d.properties?.userId;
      const origin: MessageOrigin = { sender: typeof userId === 'string' && userId ? userId : null };
      // The endpoint's log lines (and those of the work it starts) carry the caller's request ids.
      await runWithRequestIds({ request_id: ctx.request_id, global_request_id: ctx.global_request_id }, () =>
        this.handle(ctx, msg, method, origin, msgId, replyQ),
      );
    } finally {
      this.slots.release();
    }
  }

  private async handle(ctx: RequestContext, msg: JsonObject, method: string, origin: MessageOrigin, msgId?: string, replyQ?: string): Promise<void> {
    const args = (msg.args ?? {}) as Record<string, unknown>;
    const version = msg.version === undefined || msg.version === null ? '1.0' : String(msg.version);
    const namespace = typeof msg.namespace === 'string' ? msg.namespace : null;
    const call = msgId !== undefined && replyQ !== undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    if (call && msg._timeout !== null && msg._timeout !== undefined) {
      // The caller's call-monitor: heartbeat every _timeout/2 s while we work (oslo's watchdog).
      const t = Math.trunc(Number(msg._timeout));
      const interval = t / 2;
      if (Number.isFinite(interval) && interval >= 1) {
        heartbeat = setInterval(() => this.reply(replyQ, msgId, { ending: false }), interval * 1000);
      } else {
        log.warn({ timeout: msg._timeout }, 'client provided an invalid timeout value');
      }
    }
    const started = Date.now();
    try {
      const { endpoint, fn } = selectEndpoint(this.endpoints, method, version, namespace);
      const result = await fn.call(endpoint, ctx, args, origin);
      clearInterval(heartbeat);
      log.debug({ method, request_id: ctx.request_id, ms: Date.now() - started }, 'RPC handled');
      if (call) this.reply(replyQ, msgId, { result: result === undefined ? null : result });
    } catch (e) {
      clearInterval(heartbeat);
      const err = e instanceof Error ? e : new Error(String(e));
      const expected = err instanceof FerryError && err.kind !== 'internal';
      log[expected ? 'info' : 'error'](
        { method, request_id: ctx.request_id, err: err.message, class: err.name, ...(expected ? {} : { stack: err.stack }) },
        'exception during message handling',
      );
      if (call) this.reply(replyQ, msgId, { failure: serializeFailure(err) });
    }
  }

  /** Send a reply (or a heartbeat when ending is false) to the caller's reply queue; failures are logged. */
  private reply(replyQ: string, msgId: string, r: { result?: unknown; failure?: string; ending?: boolean }): void {
    const build = (result: unknown, failure: string | null) =>
      serializeMsg({ result, failure, ending: r.ending ?? true, _msg_id: msgId, _unique_id: uuidHex() });
    let body: Buffer;
    try {
      body = build(r.result ?? null, r.failure ?? null);
    } catch (e) {
      // A result that cannot be JSON (a cycle, a BigInt) becomes a failure, not a silent hang.
      body = build(null, serializeFailure(new InvalidInput(`RPC result is not JSON serializable: ${(e as Error).message}`)));
    }
    this.transport
      .publish({ routingKey: replyQ, body, deadline: Date.now() + this.replyWaitMs })
      .catch((e: Error) => log.warn({ reply_q: replyQ, msg_id: msgId, err: e.message }, 'cannot send reply'));
  }
}
