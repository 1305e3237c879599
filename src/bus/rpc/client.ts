/**
 * The RPC client side of oslo.messaging (`oslo_messaging.rpc.client.RPCClient` over the
 * rabbit driver). `call` waits for the reply on the transport's one reply queue and always
 * settles: the reply, the remote failure, MessagingTimeout at the deadline, or
 * MessagingUnavailable as soon as the connection the reply would come back on is lost.
 */
import { MessagingTimeout, MessagingUnavailable, UnsupportedVersion, InvalidInput } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { RequestContext } from '../../common/context.js';
import { packContext } from '../context.js';
import { deserializeMsg, serializeMsg, uuidHex, type JsonObject } from '../envelope.js';
import { deserializeFailure } from '../failure.js';
import type { Delivery, ExchangeSpec, Transport } from '../transport.js';
import { QueueLayout } from '../queues.js';
import { checkVersionString, versionIsCompatible } from '../version.js';

const log = getLogger('bus.rpc.client');

export interface Target {
  topic: string;
  server?: string;
  fanout?: boolean;
  version?: string;
  namespace?: string;
  /** Defaults to the transport's control exchange. */
  exchange?: string;
}

export interface RPCClientOptions {
  /** Seconds a call waits for its reply (oslo `rpc_response_timeout`, 60). */
  timeoutSeconds?: number;
  /** Highest version this client may send (Nova's `[upgrade_levels]`). */
  versionCap?: string;
  /**
   * oslo's `call_monitor_timeout`: sent as `_timeout`, the server then heartbeats every half of
   * it, and the call fails early if those heartbeats stop. Unset: no `_timeout` (oslo's default).
   */
  callMonitorTimeoutSeconds?: number;
}

export interface PrepareOptions {
  topic?: string;
  server?: string;
  fanout?: boolean;
  version?: string;
  namespace?: string;
  exchange?: string;
  timeout?: number;
  versionCap?: string;
  callMonitorTimeout?: number;
}

/** The topic exchange of the default (classic) layout; a transport's own is `transport.queues.topicExchange`. */
export function topicExchange(name: string): ExchangeSpec {
  return new QueueLayout().topicExchange(name);
}

export type ContextLike = RequestContext | JsonObject;

export function contextDict(ctx: ContextLike): JsonObject {
  return ctx instanceof RequestContext ? ctx.toDict() : { ...ctx };
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  heartbeat(): void;
  result: unknown;
  failure?: Error;
  describe: string;
}

/** The reply queue `reply_<uuid hex>` of one transport and the calls waiting on it. */
class ReplyWaiter {
  readonly queue = `reply_${uuidHex()}`;
  private readonly pending = new Map<string, Pending>();
  private ready?: Promise<void>;

  constructor(private readonly transport: Transport) {
    transport.on('disconnected', (err: Error) =>
      this.failAll((p) => new MessagingUnavailable(`connection to RabbitMQ lost while waiting for the reply to ${p.describe}: ${err.message}`)),
    );
    transport.on('closed', () => this.failAll((p) => new MessagingUnavailable(`transport closed while waiting for the reply to ${p.describe}`)));
  }

  ensureConsuming(): Promise<void> {
    if (!this.ready) {
      this.ready = this.transport
        .consume(
          {
            queue: this.transport.queues.transientQueue(this.queue),
            bindings: [], // the default exchange routes by queue name
            noAck: true,
          },
          (d) => this.onReply(d),
        )
        .then(() => undefined);
      this.ready.catch(() => (this.ready = undefined));
    }
    return this.ready;
  }

  add(msgId: string, p: Pending): void {
    this.pending.set(msgId, p);
  }

  remove(msgId: string): void {
    this.pending.delete(msgId);
  }

  private failAll(mk: (p: Pending) => Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(mk(p));
  }

  private onReply(d: Delivery): void {
    let msg: JsonObject;
    try {
      msg = deserializeMsg(d.body);
    } catch (e) {
      log.warn({ err: (e as Error).message, queue: this.queue }, 'dropping a malformed reply');
      return;
    }
    const msgId = msg._msg_id;
    const p = typeof msgId === 'string' ? this.pending.get(msgId) : undefined;
    if (!p) {
      log.info({ msg_id: msgId }, 'no call waiting for this reply (it timed out or failed already)');
      return;
    }
    if (typeof msg.failure === 'string' && msg.failure) p.failure = deserializeFailure(msg.failure);
    else if (msg.result !== null && msg.result !== undefined) p.result = msg.result;
    if (msg.ending === true) {
      this.pending.delete(msgId as string);
      if (p.failure) p.reject(p.failure);
      else p.resolve(p.result ?? null);
    } else if (!msg.failure && (msg.result === null || msg.result === undefined)) {
      p.heartbeat();
    }
  }
}

const waiters = new WeakMap<Transport, ReplyWaiter>();

function replyWaiter(t: Transport): ReplyWaiter {
  let w = waiters.get(t);
  if (!w) {
    w = new ReplyWaiter(t);
    waiters.set(t, w);
  }
  return w;
}

export class RPCClient {
  readonly target: Readonly<Target>;
  readonly timeoutSeconds: number;
  readonly versionCap?: string;
  readonly callMonitorTimeoutSeconds?: number;

  constructor(
    readonly transport: Transport,
    target: Target,
    options: RPCClientOptions = {},
  ) {
    if (!target.topic) throw new InvalidInput('an RPC target needs a topic');
    if (target.version !== undefined) checkVersion(target.version);
    this.target = { ...target };
    this.timeoutSeconds = options.timeoutSeconds ?? 60;
    this.versionCap = options.versionCap;
    this.callMonitorTimeoutSeconds = options.callMonitorTimeoutSeconds;
  }

  /** A client for a narrower target (server, version, fanout ...) sharing this one's transport. */
  prepare(o: PrepareOptions = {}): RPCClient {
    const target: Target = { ...this.target };
    for (const k of ['topic', 'server', 'fanout', 'version', 'namespace', 'exchange'] as const) {
      if (o[k] !== undefined) (target as unknown as Record<string, unknown>)[k] = o[k];
    }
    return new RPCClient(this.transport, target, {
      timeoutSeconds: o.timeout ?? this.timeoutSeconds,
      versionCap: o.versionCap ?? this.versionCap,
      callMonitorTimeoutSeconds: o.callMonitorTimeout ?? this.callMonitorTimeoutSeconds,
    });
  }

  /** oslo's `can_send_version`: whether `version` (default: the target's) is within the cap. */
  canSendVersion(version: string | undefined = this.target.version): boolean {
    return versionIsCompatible(this.versionCap ?? null, version ?? null);
  }

  private makeMessage(ctx: ContextLike, method: string, args: Record<string, unknown>): JsonObject {
    if (typeof method !== 'string' || !method) throw new InvalidInput('an RPC method name is required');
    const msg: JsonObject = { method, args: { ...args } };
    if (this.target.namespace !== undefined) msg.namespace = this.target.namespace;
    if (this.target.version !== undefined) msg.version = this.target.version;
    if (!versionIsCompatible(this.versionCap ?? null, this.target.version ?? null)) {
      // oslo raises RPCVersionCapError; Ferry's registry calls it UnsupportedVersion.
      throw new UnsupportedVersion(
        `Requested message version, ${this.target.version ?? 'None'} is incompatible.  It needs to be equal in major version and less than or equal in minor version as the specified version cap ${this.versionCap}.`,
        { version: this.target.version ?? null, version_cap: this.versionCap, oslo_class: 'RPCVersionCapError' },
      );
    }
    return msg;
  }

  private exchange(): ExchangeSpec {
    return this.transport.queues.topicExchange(this.target.exchange ?? this.transport.exchange);
  }

  private routingKey(): string {
    return this.target.server ? `${this.target.topic}.${this.target.server}` : this.target.topic;
  }

  /** Fire and forget: resolves once the broker has the message (fanout if the target says so). */
  async cast(ctx: ContextLike, method: string, args: Record<string, unknown> = {}): Promise<void> {
    const msg = this.makeMessage(ctx, method, args);
    msg._unique_id = uuidHex();
    packContext(msg, contextDict(ctx));
    const body = serializeMsg(msg);
    const deadline = Date.now() + this.timeoutSeconds * 1000;
    if (this.target.fanout) {
      await this.transport.publish({ exchange: this.transport.queues.fanoutExchange(this.target.topic), routingKey: '', body, deadline });
    } else {
      await this.transport.publish({ exchange: this.exchange(), routingKey: this.routingKey(), body, deadline });
    }
  }

  /** Call and wait for the result; rejects with the remote error, MessagingTimeout or MessagingUnavailable. */
  async call<T = unknown>(ctx: ContextLike, method: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.target.fanout) throw new InvalidInput('A call cannot be used with fanout');
    const msg = this.makeMessage(ctx, method, args);
    const timeoutMs = this.timeoutSeconds * 1000;
    const deadline = Date.now() + timeoutMs;
    const waiter = replyWaiter(this.transport);
    const msgId = uuidHex();
    const describe = `${method} on ${this.routingKey()} (message ID ${msgId})`;
    const timedOut = () =>
      new MessagingTimeout(`Timed out waiting for a reply to message ID ${msgId}.`, {
        method,
        topic: this.routingKey(),
        msg_id: msgId,
        timeout_s: this.timeoutSeconds,
      });

    // Everything below is bounded by one deadline timer, so the call cannot hang.
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let cmTimer: NodeJS.Timeout | undefined;
      const finish = (err: Error | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(cmTimer);
        waiter.remove(msgId);
        if (err) reject(err);
        else resolve(value as T);
      };
      const timer = setTimeout(() => finish(timedOut()), timeoutMs);
      const cmMs = this.callMonitorTimeoutSeconds ? this.callMonitorTimeoutSeconds * 1000 : undefined;
      // When the caller will give up on the monitor: the message's expiry must not be later (a server that
      // picks it up after the caller gave up must not run it), so it is taken from the arming, not the publish.
      let monitorEndsAt: number | undefined;
      const armMonitor = () => {
        if (!cmMs) return;
        clearTimeout(cmTimer);
        monitorEndsAt = Date.now() + cmMs;
        cmTimer = setTimeout(() => finish(timedOut()), cmMs);
      };
      waiter.add(msgId, {
        resolve: (v) => finish(undefined, v),
        reject: (e) => finish(e),
        heartbeat: armMonitor,
        result: null,
        describe,
      });
      armMonitor();

      (async () => {
        await waiter.ensureConsuming();
        msg._msg_id = msgId;
        msg._reply_q = waiter.queue;
        msg._timeout = this.callMonitorTimeoutSeconds ?? null;
        msg._unique_id = uuidHex();
        packContext(msg, contextDict(ctx));
        // A call that waits on the monitor gives up after cmMs of silence: a server that picks it up later must not run it.
        const giveUpAt = Math.min(deadline, monitorEndsAt ?? deadline);
        if (giveUpAt - Date.now() <= 0) throw timedOut();
        msg._expires_at = giveUpAt / 1000;
        await this.transport.publish({
          exchange: this.exchange(),
          routingKey: this.routingKey(),
          body: serializeMsg(msg),
          // oslo sets the message TTL to the call timeout; with a call monitor, nobody waits past its silence limit.
          expirationMs: giveUpAt - Date.now(),
          deadline,
        });
      })().catch((e: Error) => {
        // No connection until the deadline is a timeout for the caller, as in oslo.
        if (e instanceof MessagingUnavailable && Date.now() >= deadline - 5) finish(timedOut());
        else finish(e);
      });
    });
  }
}

function checkVersion(v: string): void {
  try {
    checkVersionString(v);
  } catch (e) {
    throw new InvalidInput((e as Error).message);
  }
}
