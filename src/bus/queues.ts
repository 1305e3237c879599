/**
 * What Ferry declares on RabbitMQ, as oslo.messaging's RabbitMQ driver does for the same
 * [oslo_messaging_rabbit] options, so that Ferry and Python services share exchanges and queues:
 *
 * - shared queues (RPC topic and `topic.server` queues, notification queues): classic and not
 *   durable by default; with rabbit_quorum_queue, quorum queues (durable, replicated over the
 *   cluster) with x-delivery-limit / x-max-in-memory-length / x-max-in-memory-bytes when set,
 *   and the topic exchange durable (oslo: `durable = amqp_durable_queues or rabbit_quorum_queue`);
 * - transient queues (reply_<uuid>, <topic>_fanout_<uuid>): classic, expiring after
 *   rabbit_transient_queues_ttl unused; with rabbit_transient_quorum_queue, quorum and durable,
 *   their fanout exchange durable too.
 */
import type { RabbitValues } from '../conf/rabbit.js';
import { rabbitDefaults } from './tls.js';

export interface ExchangeSpec {
  name: string;
  type: 'topic' | 'fanout' | 'direct';
  durable: boolean;
  autoDelete: boolean;
}

export interface QueueSpec {
  name: string;
  durable: boolean;
  autoDelete: boolean;
  arguments?: Record<string, unknown>;
}

export type QueueOptions = Pick<
  RabbitValues,
  | 'rabbit_quorum_queue'
  | 'rabbit_transient_quorum_queue'
  | 'rabbit_quorum_delivery_limit'
  | 'rabbit_quorum_max_memory_length'
  | 'rabbit_quorum_max_memory_bytes'
  | 'rabbit_transient_queues_ttl'
>;

export class QueueLayout {
  constructor(readonly options: QueueOptions = rabbitDefaults()) {}

  /** The exchange of RPC topics and notifications (Ferry's `ferry`, Nova's `nova`). */
  topicExchange(name: string): ExchangeSpec {
    return { name, type: 'topic', durable: this.options.rabbit_quorum_queue, autoDelete: false };
  }

  fanoutExchange(topic: string): ExchangeSpec {
    return { name: `${topic}_fanout`, type: 'fanout', durable: this.options.rabbit_transient_quorum_queue, autoDelete: true };
  }

  /** A queue every server of a topic (or every listener of a pool) shares. */
  sharedQueue(name: string): QueueSpec {
    const quorum = this.options.rabbit_quorum_queue;
    return { name, durable: quorum, autoDelete: false, arguments: quorum ? this.quorumArguments() : {} };
  }

  /** A queue of one process (its replies, its copy of a fanout), deleted by the broker once unused. */
  transientQueue(name: string): QueueSpec {
    const quorum = this.options.rabbit_transient_quorum_queue;
    const ttl = this.options.rabbit_transient_queues_ttl;
    return {
      name,
      durable: quorum,
      autoDelete: false,
      arguments: { ...(quorum ? this.quorumArguments() : {}), ...(ttl > 0 ? { 'x-expires': ttl * 1000 } : {}) },
    };
  }

  private quorumArguments(): Record<string, unknown> {
    const o = this.options;
    return {
      'x-queue-type': 'quorum',
      ...(o.rabbit_quorum_delivery_limit ? { 'x-delivery-limit': o.rabbit_quorum_delivery_limit } : {}),
      ...(o.rabbit_quorum_max_memory_length ? { 'x-max-in-memory-length': o.rabbit_quorum_max_memory_length } : {}),
      ...(o.rabbit_quorum_max_memory_bytes ? { 'x-max-in-memory-bytes': o.rabbit_quorum_max_memory_bytes } : {}),
    };
  }
}
