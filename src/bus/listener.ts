/**
 * A notification listener (oslo's `get_notification_listener`): consumes
 * `<topic>.<priority>` on the control exchange (or one shared `pool` queue bound to all of
 * them, so several listeners split the stream), and hands each notification to the handler.
 * The message is acked after the handler; a handler that throws or returns 'requeue' gets it
 * back later, as oslo's NotificationResult.REQUEUE.
 */
import { getLogger } from '../common/log.js';
import { RequestContext } from '../common/context.js';
import { unpackContext } from './context.js';
import { deserializeMsg, type JsonObject } from './envelope.js';
import { PRIORITIES, type Priority } from './notifier.js';
import type { Consumer, Delivery, Transport } from './transport.js';

/** Notifications a listener holds unacknowledged at once (a slow handler must not pull a whole backlog into memory). */
const LISTENER_PREFETCH = 64;

const log = getLogger('bus.listener');

export interface Notification {
  ctxt: RequestContext;
  /** The context keys as they came. */
  ctxtDict: JsonObject;
  publisherId: string;
  eventType: string;
  /** Lower case, as oslo's dispatcher passes it. */
  priority: Priority;
  payload: unknown;
  metadata: { message_id: string | null; timestamp: string | null };
}

export type NotificationResult = 'handled' | 'requeue';
export type NotificationHandler = (n: Notification) => void | NotificationResult | Promise<void | NotificationResult>;

export interface ListenerOptions {
  topics: string[];
  priorities?: Priority[];
  pool?: string;
  /** Defaults to the transport's control exchange (Nova's would be `nova`). */
  exchange?: string;
}

export class NotificationListener {
  private consumers: Consumer[] = [];

  constructor(
    readonly transport: Transport,
    readonly options: ListenerOptions,
    readonly handler: NotificationHandler,
  ) {}

  async start(): Promise<void> {
    if (this.consumers.length) return;
    const layout = this.transport.queues;
    const ex = layout.topicExchange(this.options.exchange ?? this.transport.exchange);
    const priorities = this.options.priorities ?? [...PRIORITIES];
    const keys = this.options.topics.flatMap((t) => priorities.map((p) => `${t}.${p}`));
    try {
      if (this.options.pool) {
        this.consumers.push(
          await this.transport.consume(
            { queue: layout.sharedQueue(this.options.pool), bindings: keys.map((k) => ({ exchange: ex, routingKey: k })), prefetch: LISTENER_PREFETCH },
            (d) => this.onMessage(d),
          ),
        );
      } else {
        for (const k of keys) {
          this.consumers.push(
            await this.transport.consume({ queue: layout.sharedQueue(k), bindings: [{ exchange: ex, routingKey: k }], prefetch: LISTENER_PREFETCH }, (d) =>
              this.onMessage(d),
            ),
          );
        }
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    const cs = this.consumers;
    this.consumers = [];
    await Promise.all(cs.map((c) => c.cancel()));
  }

  private onMessage(d: Delivery): void {
    let msg: JsonObject;
    try {
      msg = deserializeMsg(d.body);
    } catch (e) {
      log.error({ err: (e as Error).message, routing_key: d.routingKey }, 'rejecting a malformed notification');
      d.reject(false);
      return;
    }
    const ctxtDict = unpackContext(msg);
    const priority = String(msg.priority ?? '').toLowerCase() as Priority;
    if (!PRIORITIES.includes(priority)) {
      log.warn({ priority: msg.priority }, 'unknown notification priority');
      d.ack();
      return;
    }
    const n: Notification = {
      ctxt: RequestContext.fromDict(ctxtDict),
      ctxtDict,
      publisherId: String(msg.publisher_id ?? ''),
      eventType: String(msg.event_type ?? ''),
      priority,
      payload: msg.payload ?? null,
      metadata: {
        message_id: typeof msg.message_id === 'string' ? msg.message_id : null,
        timestamp: typeof msg.timestamp === 'string' ? msg.timestamp : null,
      },
    };
    Promise.resolve()
      .then(() => this.handler(n))
      .then(
        (r) => (r === 'requeue' ? d.reject(true) : d.ack()),
        (e: Error) => {
          log.error({ err: e.message, event_type: n.eventType }, 'notification handler failed; requeueing');
          d.reject(true);
        },
      );
  }
}
