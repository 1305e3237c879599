/**
 * Notifications as oslo.messaging's `messagingv2` driver sends them: to the control exchange
 * with routing key `<topic>.<priority>`, in the 2.0 envelope, with the sanitized context as
 * `_context_*`. Like oslo, the publisher also declares the `<topic>.<priority>` queue so that
 * notifications sent before any listener exists are kept for it.
 */
import { randomUUID } from 'node:crypto';
import { InvalidInput } from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { packContext, sanitizeForNotification } from './context.js';
import { serializeMsg, uuidHex, type JsonObject } from './envelope.js';
import { contextDict, type ContextLike } from './rpc/client.js';
import type { Transport } from './transport.js';

const log = getLogger('bus.notifier');

/** oslo's priorities (lower case on the routing key, upper case in the message). */
export const PRIORITIES = ['audit', 'debug', 'info', 'warn', 'error', 'critical', 'sample'] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface NotifierOptions {
  publisherId: string;
  driver?: 'messagingv2' | 'noop';
  topics?: string[];
  /** Defaults to the transport's control exchange. */
  exchange?: string;
  /** How long to wait for a lost connection before giving up on a notification, seconds. */
  sendTimeoutSeconds?: number;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, Python's `str(datetime.utcnow())`. */
export function pyUtcTimestamp(d = new Date()): string {
  const iso = d.toISOString(); // 2024-01-02T03:04:05.678Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`;
}

/** The notification message (before the envelope), as oslo's Notifier builds it. */
export function buildNotification(publisherId: string, eventType: string, priority: Priority, payload: unknown, ctx: JsonObject): JsonObject {
  const msg: JsonObject = {
    message_id: randomUUID(),
    publisher_id: publisherId,
    event_type: eventType,
    priority: priority.toUpperCase(),
    payload: payload === undefined ? null : payload,
    timestamp: pyUtcTimestamp(),
  };
  packContext(msg, sanitizeForNotification(ctx));
  msg._unique_id = uuidHex();
  return msg;
}

/** Nova's exception payload for `*.error` events. */
export function exceptionPayload(err: Error, functionName: string, moduleName: string): JsonObject {
  return {
    function_name: functionName,
    module_name: moduleName,
    exception: err.name,
    exception_message: err.message,
    traceback: err.stack ?? '',
  };
}

export class Notifier {
  readonly publisherId: string;
  readonly driver: 'messagingv2' | 'noop';
  readonly topics: string[];
  private readonly exchange?: string;
  private readonly sendTimeoutMs: number;

  constructor(
    readonly transport: Transport,
    options: NotifierOptions,
  ) {
    if (!options.publisherId) throw new InvalidInput('a notifier needs a publisher id');
    this.publisherId = options.publisherId;
    this.driver = options.driver ?? 'messagingv2';
    if (this.driver !== 'messagingv2' && this.driver !== 'noop') throw new InvalidInput(`unknown notification driver ${String(this.driver)}`);
    this.topics = options.topics ?? ['notifications'];
    this.exchange = options.exchange;
    this.sendTimeoutMs = (options.sendTimeoutSeconds ?? 30) * 1000;
  }

  /** A notifier like this one with another publisher id (oslo's `prepare(publisher_id=)`). */
  prepare(publisherId: string): Notifier {
    return new Notifier(this.transport, {
      publisherId,
      driver: this.driver,
      topics: this.topics,
      exchange: this.exchange,
      sendTimeoutSeconds: this.sendTimeoutMs / 1000,
    });
  }

  audit(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'audit');
  }
  debug(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'debug');
  }
  info(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'info');
  }
  warn(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'warn');
  }
  error(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'error');
  }
  critical(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'critical');
  }
  sample(ctx: ContextLike, eventType: string, payload: unknown): Promise<void> {
    return this.notify(ctx, eventType, payload, 'sample');
  }

  /**
   * Send one notification to every topic. Like oslo, a failure to send is logged, not thrown:
   * a notification must never break the operation it reports on.
   */
  async notify(ctx: ContextLike, eventType: string, payload: unknown, priority: Priority): Promise<void> {
    if (this.driver === 'noop') return;
    const body = serializeMsg(buildNotification(this.publisherId, eventType, priority, payload, contextDict(ctx)));
    const ex = this.transport.queues.topicExchange(this.exchange ?? this.transport.exchange);
    await Promise.all(
      this.topics.map(async (topic) => {
        const routingKey = `${topic}.${priority}`;
        try {
          await this.transport.publish({
            exchange: ex,
            routingKey,
            body,
            ensureQueue: this.transport.queues.sharedQueue(routingKey),
            deadline: Date.now() + this.sendTimeoutMs,
          });
        } catch (e) {
          log.error({ topic: routingKey, event_type: eventType, err: (e as Error).message }, 'could not send notification');
        }
      }),
    );
  }
}
