/**
 * One AMQP connection to RabbitMQ (amqplib) with its channels, shared by the RPC client and
 * server, the notifier and the listener of a process.
 *
 * When the connection drops (RabbitMQ restarts, network cut, missed heartbeats) it reconnects
 * with exponential backoff, trying every host of the URL in the order listed, re-declares what
 * its consumers need on the broker it reaches and resumes consuming; nobody has to
 * re-subscribe. While it is on a later host it tries the earlier ones every failbackSeconds and
 * moves back to the first that answers, so that services sharing the URL meet on one broker
 * even when the brokers are not clustered. Publishing while disconnected waits for the
 * connection up to the caller's deadline, then fails with MessagingUnavailable.
 * Over TLS (`[oslo_messaging_rabbit] ssl`, or `?ssl=1` in the URL: src/bus/tls.ts) every
 * broker's certificate is verified; a first connect whose every broker fails on its certificate
 * fails at once, naming each broker, since waiting cannot fix a certificate.
 * Events: 'connected' (host label), 'disconnected' (Error), 'closed'.
 */
import { EventEmitter } from 'node:events';
import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, MessageProperties } from 'amqplib';
import { MessagingUnavailable } from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { failbackCandidates, hostLabel, parseTransportUrl, type BrokerHost, type TransportUrl } from './url.js';
import { busTlsFromOpts, describeTlsError, isCertificateError, rabbitDefaults, rabbitOptsWithQuery, tlsSocketOptions, type BusTls } from './tls.js';
import type { RabbitValues } from '../conf/rabbit.js';
import { sleep } from '../common/sleep.js';
import { QueueLayout, type ExchangeSpec, type QueueSpec } from './queues.js';

const log = getLogger('bus.transport');

/** Wait before sending again a message the broker refused. */
const NACK_RETRY_MS = 250;

export type { ExchangeSpec, QueueSpec } from './queues.js';

export interface ConsumerSpec {
  queue: QueueSpec;
  bindings: { exchange: ExchangeSpec; routingKey: string }[];
  /** Broker acks on delivery (reply queues); otherwise the handler must ack or reject. */
  noAck?: boolean;
  prefetch?: number;
}

export interface Delivery {
  body: Buffer;
  properties: MessageProperties;
  routingKey: string;
  exchange: string;
  redelivered: boolean;
  /**
   * Acknowledge the message. False when it was not acknowledged: settled already, or the
   * channel it came on is gone, in which case the broker has put it back on its queue.
   */
  ack(): boolean;
  reject(requeue: boolean): void;
}

export interface Consumer {
  readonly queue: string;
  cancel(): Promise<void>;
}

export interface PublishRequest {
  /** Undefined: the default exchange (`""`), routing key = queue name. */
  exchange?: ExchangeSpec;
  routingKey: string;
  body: Buffer;
  /** Per-message TTL (oslo sets the call timeout on topic publishes). */
  expirationMs?: number;
  /** Declare this queue and bind it to the exchange with the routing key before publishing (notifications). */
  ensureQueue?: QueueSpec;
  /** Epoch ms until which to wait for a connection; default now + publishWaitSeconds. */
  deadline?: number;
}

export interface TransportOptions {
  /** AMQP heartbeat, seconds (oslo's heartbeat_timeout_threshold). */
  heartbeatSeconds?: number;
  /** The control exchange (oslo's `control_exchange`). */
  exchange?: string;
  /** First reconnect delay, ms; doubles up to reconnectMaxMs. */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** How long `connect()` keeps trying before it fails. */
  connectTimeoutSeconds?: number;
  /** Default wait for a connection when publishing while disconnected. */
  publishWaitSeconds?: number;
  /** Shown in RabbitMQ's connection list. */
  connectionName?: string;
  /**
   * While connected to a host other than the first, try the hosts listed before it this often
   * (seconds) and move to the first that answers; 0: stay until the connection drops.
   */
  failbackSeconds?: number;
  /**
   * The [oslo_messaging_rabbit] options (defaults when absent); the URL's query overrides them.
   * failbackSeconds, when given, wins over their failback_interval.
   */
  rabbit?: RabbitValues;
}

/** Why every broker of one connection round refused; `certificate` when each failed on its TLS certificate. */
class DialFailure extends Error {
  constructor(
    message: string,
    readonly certificate: boolean,
  ) {
    super(message);
  }
}

type State = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

class Subscription {
  channel?: Channel;
  consumerTag?: string;
  cancelled = false;
  retryTimer?: NodeJS.Timeout;
  constructor(
    readonly spec: ConsumerSpec,
    readonly handler: (d: Delivery) => void,
  ) {}
}

export class Transport extends EventEmitter {
  readonly url: TransportUrl;
  readonly exchange: string;
  readonly heartbeatSeconds: number;
  /** TLS settings; undefined: plain AMQP. */
  readonly tls?: BusTls;
  /** The exchanges and queues to declare for these options (classic, or quorum: src/bus/queues.ts). */
  readonly queues: QueueLayout;
  private readonly opts: Required<Omit<TransportOptions, 'exchange' | 'heartbeatSeconds' | 'rabbit'>>;
  /** Index in url.hosts of the broker we are connected to (meaningful while connected). */
  private hostIndex = -1;
  private failbackTimer?: NodeJS.Timeout;
  private state: State = 'idle';
  private conn?: ChannelModel;
  private pubChannel?: Promise<ConfirmChannel>;
  private declared = new Set<string>();
  private readonly subs = new Set<Subscription>();
  private reconnectTimer?: NodeJS.Timeout;
  private connecting?: Promise<void>;
  private attempt = 0;

  constructor(url: TransportUrl, options: TransportOptions = {}) {
    super();
    this.url = url;
    this.exchange = options.exchange ?? 'ferry';
    this.heartbeatSeconds = options.heartbeatSeconds ?? 60;
    const rabbit = rabbitOptsWithQuery(options.rabbit ?? rabbitDefaults(), url);
    this.tls = busTlsFromOpts(rabbit);
    this.queues = new QueueLayout(rabbit);
    this.opts = {
      reconnectInitialMs: options.reconnectInitialMs ?? 250,
      reconnectMaxMs: options.reconnectMaxMs ?? 5000,
      connectTimeoutSeconds: options.connectTimeoutSeconds ?? 30,
      publishWaitSeconds: options.publishWaitSeconds ?? 30,
      connectionName: options.connectionName ?? `ferry:${process.pid}`,
      failbackSeconds: options.failbackSeconds ?? rabbit.failback_interval,
    };
    this.setMaxListeners(0); // every pending call may wait on 'connected'
  }

  static fromUrl(url: string, options: TransportOptions = {}): Transport {
    return new Transport(parseTransportUrl(url), options);
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** `host:port` of the broker this transport is connected to; undefined while it is not. */
  get connectedHost(): string | undefined {
    return this.state === 'connected' ? hostLabel(this.url.hosts[this.hostIndex]) : undefined;
  }

  /** Connect (retrying with backoff up to connectTimeoutSeconds). Idempotent. */
  async connect(): Promise<void> {
    if (this.isClosed) throw new MessagingUnavailable('transport is closed');
    if (this.state === 'connected') return;
    if (this.state === 'reconnecting') return this.waitConnected(Date.now() + this.opts.connectTimeoutSeconds * 1000);
    if (!this.connecting) {
      this.connecting = this.firstConnect().finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async firstConnect(): Promise<void> {
    this.state = 'connecting';
    const deadline = Date.now() + this.opts.connectTimeoutSeconds * 1000;
    let lastErr: Error | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.open();
        return;
      } catch (e) {
        lastErr = e as Error;
        if (e instanceof DialFailure && e.certificate) break; // no wait fixes a certificate
      }
      if (this.isClosed) throw new MessagingUnavailable('transport closed while connecting');
      const delay = this.backoff(attempt);
      if (Date.now() + delay > deadline) break;
      await sleep(delay);
    }
    this.state = 'idle';
    throw new MessagingUnavailable(`cannot connect to RabbitMQ at ${this.hostsLabel()}${this.tls ? ' (TLS)' : ''}: ${lastErr?.message}`, {
      hosts: this.url.hosts.map(hostLabel),
      tls: this.tls !== undefined,
    });
  }

  private hostsLabel(): string {
    return this.url.hosts.map(hostLabel).join(',');
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectInitialMs * 2 ** attempt);
    return Math.round(base * (0.8 + Math.random() * 0.4)); // jitter, so a fleet does not reconnect in step
  }

  /** Try every host once, in the order listed; on success set up all consumers, then announce 'connected'. */
  private async open(): Promise<void> {
    const failures: string[] = [];
    let certificate = this.url.hosts.length > 0;
    for (const [i, h] of this.url.hosts.entries()) {
      if (this.isClosed) throw new Error('closed');
      let conn: ChannelModel;
      try {
        conn = await this.dial(h);
      } catch (e) {
        const err = e as Error;
        const cert = this.tls !== undefined && isCertificateError(err);
        certificate &&= cert;
        const msg = this.tls ? describeTlsError(err, hostLabel(h), this.tls) : `${hostLabel(h)}: ${err.message}`;
        failures.push(this.tls || this.url.hosts.length > 1 ? msg : err.message);
        // A certificate refusal is a configuration fault: say so, even while other brokers answer.
        log[cert ? 'error' : 'debug']({ host: hostLabel(h), err: msg }, 'AMQP connection failed');
        continue;
      }
      await this.adopt(conn, i);
      return;
    }
    throw new DialFailure(failures.join('; ') || 'no hosts', certificate);
  }

  /**
   * Make `conn` (to host `index`) the connection: fresh declarations, every consumer declared
   * and consuming on it, then 'connected'.
   */
  private async adopt(conn: ChannelModel, index: number): Promise<void> {
    if (this.isClosed) {
      await conn.close().catch(() => undefined);
      throw new Error('closed');
    }
    const h = this.url.hosts[index];
    this.conn = conn;
    this.hostIndex = index;
    this.declared = new Set(); // another broker knows none of our exchanges and queues
    this.pubChannel = undefined;
    conn.on('error', (err: Error) => log.warn({ err: err.message }, 'AMQP connection error'));
    conn.on('close', (err?: Error) => this.onConnectionLost(conn, err));
    for (const sub of this.subs) {
      await this.setupSubscription(sub, conn).catch((e: Error) => this.retrySubscriptionLater(sub, conn, e));
    }
    if (this.conn !== conn) throw new Error('connection lost during setup');
    this.state = 'connected';
    this.attempt = 0;
    const fields = { host: hostLabel(h), vhost: this.url.virtualHost };
    if (index > 0) log.warn({ ...fields, preferred: hostLabel(this.url.hosts[0]) }, 'connected to RabbitMQ (not the first host of transport_url)');
    else log.info(fields, 'connected to RabbitMQ');
    this.emit('connected', hostLabel(h));
    this.scheduleFailback();
  }

  private scheduleFailback(): void {
    clearTimeout(this.failbackTimer);
    this.failbackTimer = undefined;
    if (this.opts.failbackSeconds <= 0 || failbackCandidates(this.hostIndex).length === 0) return;
    this.failbackTimer = setTimeout(() => {
      this.failbackTimer = undefined;
      this.failback().catch((e: Error) => log.warn({ err: e.message }, 'moving back to an earlier RabbitMQ host failed'));
    }, this.opts.failbackSeconds * 1000);
    this.failbackTimer.unref(); // never what keeps a process alive
  }

  /**
   * Dial the hosts listed before the current one; on the first that answers, leave the current
   * broker as if its connection dropped (pending calls fail fast and are asked again) and take
   * up the new connection.
   */
  private async failback(): Promise<void> {
    const from = this.conn;
    for (const i of failbackCandidates(this.hostIndex)) {
      if (this.state !== 'connected' || this.conn !== from) return;
      let conn: ChannelModel;
      try {
        conn = await this.dial(this.url.hosts[i]);
      } catch {
        continue; // still down
      }
      if (this.state !== 'connected' || this.conn !== from || !from) {
        await conn.close().catch(() => undefined);
        return;
      }
      const reason = new Error(`moving back to RabbitMQ ${hostLabel(this.url.hosts[i])}`);
      log.warn({ from: hostLabel(this.url.hosts[this.hostIndex]), to: hostLabel(this.url.hosts[i]) }, 'moving back to an earlier RabbitMQ host');
      this.detach();
      this.state = 'reconnecting';
      this.emit('disconnected', reason);
      from.close().catch(() => undefined);
      try {
        await this.adopt(conn, i);
      } catch (e) {
        if (this.isClosed) return;
        log.warn({ err: (e as Error).message }, 'setting up on the earlier host failed; reconnecting');
        this.state = 'reconnecting';
        this.scheduleReconnect();
      }
      return;
    }
    this.scheduleFailback();
  }

  /** Forget the current connection and everything opened on it. */
  private detach(): void {
    this.conn = undefined;
    this.pubChannel = undefined;
    clearTimeout(this.failbackTimer);
    this.failbackTimer = undefined;
    for (const sub of this.subs) {
      sub.channel = undefined;
      clearTimeout(sub.retryTimer);
    }
  }

  private dial(h: BrokerHost): Promise<ChannelModel> {
    return amqp.connect(
      {
        protocol: this.tls ? 'amqps' : 'amqp',
        hostname: h.hostname,
        port: h.port,
        username: h.username,
        password: h.password,
        vhost: this.url.virtualHost,
        heartbeat: this.heartbeatSeconds,
      },
      {
        timeout: 10_000,
        clientProperties: { connection_name: this.opts.connectionName },
        ...(this.tls ? tlsSocketOptions(this.tls) : {}),
      },
    );
  }

  private onConnectionLost(conn: ChannelModel, err?: Error): void {
    if (this.conn !== conn) return;
    this.detach();
    // Lost while still opening: open() fails and its caller retries; only an established
    // connection starts the reconnect loop here.
    if (this.state !== 'connected') return;
    const reason = err ?? new Error('connection closed');
    log.warn({ err: reason.message }, 'lost the RabbitMQ connection; reconnecting');
    this.state = 'reconnecting';
    this.emit('disconnected', reason);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.isClosed || this.reconnectTimer) return;
    const delay = this.backoff(this.attempt++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.isClosed) return;
      this.open().catch((e: Error) => {
        if (this.isClosed) return;
        // Warn on the 1st, 2nd, 4th, 8th ... failure: an outage should not flood the log.
        const n = this.attempt;
        log[(n & (n - 1)) === 0 ? 'warn' : 'debug']({ err: e.message, attempt: n }, 'reconnect failed');
        this.state = 'reconnecting';
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** Resolve once connected; MessagingUnavailable if the deadline passes or the transport closes. */
  waitConnected(deadline: number): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.isClosed) return Promise.reject(new MessagingUnavailable('transport is closed'));
    if (this.state === 'idle') return Promise.reject(new MessagingUnavailable('transport is not connected (call connect() first)'));
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.off('connected', onUp);
        this.off('closed', onClosed);
      };
      const onUp = () => {
        done();
        resolve();
      };
      const onClosed = () => {
        done();
        reject(new MessagingUnavailable('transport closed'));
      };
      const timer = setTimeout(
        () => {
          done();
          reject(new MessagingUnavailable(`no connection to RabbitMQ at ${this.hostsLabel()}`));
        },
        Math.max(0, deadline - Date.now()),
      );
      this.on('connected', onUp);
      this.on('closed', onClosed);
    });
  }

  // ---- publishing ----

  private publishChannel(conn: ChannelModel): Promise<ConfirmChannel> {
    if (!this.pubChannel) {
      const p = conn.createConfirmChannel().then((ch) => {
        ch.on('error', (err: Error) => log.warn({ err: err.message }, 'publish channel error'));
        ch.on('close', () => {
          if (this.pubChannel === p) this.pubChannel = undefined;
        });
        return ch;
      });
      p.catch(() => {
        if (this.pubChannel === p) this.pubChannel = undefined;
      });
      this.pubChannel = p;
    }
    return this.pubChannel;
  }

  /** Publish one message and wait for the broker's confirm. */
  async publish(req: PublishRequest): Promise<void> {
    const deadline = req.deadline ?? Date.now() + this.opts.publishWaitSeconds * 1000;
    await this.waitConnected(deadline);
    const conn = this.conn;
    if (!conn) throw new MessagingUnavailable('not connected to RabbitMQ');
    // The sender's identity: RabbitMQ refuses a user_id other than the connection's own user, so a consumer can trust it.
    const userId = this.url.hosts[this.hostIndex]?.username || undefined;
    const where = `${req.exchange?.name ?? '(default)'}/${req.routingKey}`;
    try {
      let ch = await this.publishChannel(conn);
      if (req.exchange) {
        const ex = req.exchange;
        const key = `x:${ex.name}`;
        if (!this.declared.has(key)) {
          await ch.assertExchange(ex.name, ex.type, { durable: ex.durable, autoDelete: ex.autoDelete });
          this.declared.add(key);
        }
        if (req.ensureQueue) {
          const q = req.ensureQueue;
          const qkey = `q:${ex.name}:${q.name}:${req.routingKey}`;
          if (!this.declared.has(qkey)) {
            await ch.assertQueue(q.name, { durable: q.durable, autoDelete: q.autoDelete, arguments: q.arguments ?? {} });
            await ch.bindQueue(q.name, ex.name, req.routingKey);
            this.declared.add(qkey);
          }
        }
      }
      // A quorum queue whose leader just died (a cluster node lost) refuses messages until the
      // election ends, and a channel that saw the old leader may go on being refused: send the
      // same message again (its msg_id lets a server drop a copy) on a new channel.
      for (let nacks = 0; (await this.sendConfirmed(ch, req, userId)) === 'nacked'; nacks++) {
        if (Date.now() + NACK_RETRY_MS > deadline) throw new Error(`message nacked (${nacks + 1} times)`);
        if (nacks === 0) log.warn({ where }, 'the broker refused a message (nack); sending it again on a new channel');
        if (this.pubChannel) {
          this.pubChannel = undefined;
          const old = ch;
          // Closed once the messages others sent on it are settled.
          old
            .waitForConfirms()
            .catch(() => undefined)
            .finally(() => old.close().catch(() => undefined));
        }
        await sleep(NACK_RETRY_MS);
        if (this.conn !== conn) throw new Error('connection lost while sending again a refused message');
        ch = await this.publishChannel(conn);
      }
    } catch (e) {
      if (e instanceof MessagingUnavailable) throw e;
      throw new MessagingUnavailable(`could not publish to ${where}: ${(e as Error).message}`);
    }
  }

  /** Publish on the confirm channel; 'nacked' when the broker refused the message. */
  private sendConfirmed(ch: ConfirmChannel, req: PublishRequest, userId: string | undefined): Promise<'confirmed' | 'nacked'> {
    return new Promise((resolve, reject) => {
      // A dropped connection must not leave the confirm pending forever.
      const onLost = () => reject(new Error('connection lost before the broker confirmed'));
      this.once('disconnected', onLost);
      ch.publish(
        req.exchange?.name ?? '',
        req.routingKey,
        req.body,
        {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          deliveryMode: 2, // kombu's default (persistent)
          priority: 0,
          headers: {},
          ...(userId ? { userId } : {}),
          ...(req.expirationMs !== undefined ? { expiration: String(Math.max(0, Math.floor(req.expirationMs))) } : {}),
        },
        (err: unknown) => {
          this.off('disconnected', onLost);
          // amqplib reports a basic.nack as this error; anything else (channel closed) is a failure.
          if (err instanceof Error && err.message === 'message nacked') resolve('nacked');
          else if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve('confirmed');
        },
      );
    });
  }

  // ---- consuming ----

  /**
   * Declare the queue (and its exchanges and bindings) and consume it, now if connected and
   * again after every reconnect, until the returned Consumer is cancelled.
   */
  async consume(spec: ConsumerSpec, handler: (d: Delivery) => void): Promise<Consumer> {
    if (this.isClosed) throw new MessagingUnavailable('transport is closed');
    const sub = new Subscription(spec, handler);
    this.subs.add(sub);
    const conn = this.conn;
    if (conn && this.state === 'connected') {
      try {
        await this.setupSubscription(sub, conn);
      } catch (e) {
        this.subs.delete(sub);
        throw new MessagingUnavailable(`cannot consume ${spec.queue.name}: ${(e as Error).message}`);
      }
    }
    return { queue: spec.queue.name, cancel: () => this.cancelSubscription(sub) };
  }

  private async setupSubscription(sub: Subscription, conn: ChannelModel): Promise<void> {
    if (sub.cancelled) return;
    const { spec } = sub;
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => log.warn({ queue: spec.queue.name, err: err.message }, 'consumer channel error'));
    ch.on('close', () => {
      // A channel closed under a live connection (queue deleted, channel error): set it up
      // again. Checked a tick later, because a dying connection closes its channels first.
      setImmediate(() => {
        if (sub.channel === ch && !sub.cancelled && this.conn === conn) {
          sub.channel = undefined;
          this.retrySubscriptionLater(sub, conn, new Error('consumer channel closed'));
        }
      });
    });
    try {
      if (spec.prefetch) await ch.prefetch(spec.prefetch);
      for (const b of spec.bindings) {
        await ch.assertExchange(b.exchange.name, b.exchange.type, { durable: b.exchange.durable, autoDelete: b.exchange.autoDelete });
      }
      const q = spec.queue;
      await ch.assertQueue(q.name, { durable: q.durable, autoDelete: q.autoDelete, arguments: q.arguments ?? {} });
      for (const b of spec.bindings) await ch.bindQueue(q.name, b.exchange.name, b.routingKey);
      sub.channel = ch;
      const noAck = spec.noAck ?? false;
      const ok = await ch.consume(
        q.name,
        (m: ConsumeMessage | null) => {
          if (m === null) {
            // The broker cancelled us (queue deleted): declare and consume again.
            if (sub.channel === ch && !sub.cancelled) {
              sub.channel = undefined;
              ch.close().catch(() => undefined);
              this.retrySubscriptionLater(sub, conn, new Error('consumer cancelled by the broker'));
            }
            return;
          }
          this.deliver(sub, ch, m, noAck);
        },
        { noAck },
      );
      sub.consumerTag = ok.consumerTag;
      if (sub.cancelled) await ch.close().catch(() => undefined);
    } catch (e) {
      if (sub.channel === ch) sub.channel = undefined;
      await ch.close().catch(() => undefined);
      throw e;
    }
  }

  private retrySubscriptionLater(sub: Subscription, conn: ChannelModel, err: Error): void {
    if (sub.cancelled || this.isClosed) return;
    log.warn({ queue: sub.spec.queue.name, err: err.message }, 'consumer not active; retrying');
    clearTimeout(sub.retryTimer);
    sub.retryTimer = setTimeout(() => {
      if (this.conn !== conn || sub.cancelled || sub.channel) return;
      this.setupSubscription(sub, conn).catch((e: Error) => this.retrySubscriptionLater(sub, conn, e));
    }, 1000);
  }

  private deliver(sub: Subscription, ch: Channel, m: ConsumeMessage, noAck: boolean): void {
    let settled = noAck;
    const settle = (what: 'ack' | 'reject', requeue = false): boolean => {
      if (settled) return false;
      settled = true;
      // After a reconnect the old channel is gone and the broker has requeued the message.
      if (sub.channel !== ch) return false;
      try {
        if (what === 'ack') ch.ack(m);
        else ch.reject(m, requeue);
        return true;
      } catch (e) {
        log.warn({ err: (e as Error).message }, `could not ${what} a message`);
        return false;
      }
    };
    const d: Delivery = {
      body: m.content,
      properties: m.properties,
      routingKey: m.fields.routingKey,
      exchange: m.fields.exchange,
      redelivered: m.fields.redelivered,
      ack: () => settle('ack'),
      reject: (requeue: boolean) => void settle('reject', requeue),
    };
    try {
      sub.handler(d);
    } catch (e) {
      log.error({ err: (e as Error).message, queue: sub.spec.queue.name }, 'message handler threw; rejecting the message');
      d.reject(false);
    }
  }

  private async cancelSubscription(sub: Subscription): Promise<void> {
    sub.cancelled = true;
    clearTimeout(sub.retryTimer);
    this.subs.delete(sub);
    const ch = sub.channel;
    sub.channel = undefined;
    if (!ch) return;
    try {
      if (sub.consumerTag) await ch.cancel(sub.consumerTag);
      await ch.close();
    } catch {
      /* the connection is already gone: nothing to cancel */
    }
  }

  /** Delete a queue (tests and cleanup); ignores a missing queue. */
  async deleteQueue(name: string): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.deleteQueue(name);
      await ch.close();
    } catch {
      /* gone already */
    }
  }

  /** Stop reconnecting, cancel consumers, close the connection. Pending work fails with MessagingUnavailable. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    clearTimeout(this.failbackTimer);
    this.failbackTimer = undefined;
    for (const sub of this.subs) {
      sub.cancelled = true;
      clearTimeout(sub.retryTimer);
    }
    this.subs.clear();
    const conn = this.conn;
    this.conn = undefined;
    this.pubChannel = undefined;
    this.emit('closed');
    if (conn) await conn.close().catch(() => undefined);
  }
}
