import { describe, expect, test } from '@jest/globals';
import { QueueLayout } from '../../../src/bus/queues.js';
import { rabbitDefaults } from '../../../src/bus/tls.js';

describe('QueueLayout (as oslo.messaging declares for the same options)', () => {
  test('defaults: classic, non-durable shared queues; transient queues expire after rabbit_transient_queues_ttl', () => {
    const l = new QueueLayout();
    expect(l.topicExchange('ferry')).toEqual({ name: 'ferry', type: 'topic', durable: false, autoDelete: false });
    expect(l.sharedQueue('t')).toEqual({ name: 't', durable: false, autoDelete: false, arguments: {} });
    expect(l.transientQueue('reply_x')).toEqual({ name: 'reply_x', durable: false, autoDelete: false, arguments: { 'x-expires': 1_800_000 } });
    expect(l.fanoutExchange('t')).toEqual({ name: 't_fanout', type: 'fanout', durable: false, autoDelete: true });
  });

  test('rabbit_quorum_queue: durable quorum shared queues with the limits set, durable topic exchange, transient queues classic', () => {
    const l = new QueueLayout({ ...rabbitDefaults(), rabbit_quorum_queue: true, rabbit_quorum_delivery_limit: 5, rabbit_quorum_max_memory_bytes: 1024 });
    expect(l.topicExchange('ferry').durable).toBe(true);
    expect(l.sharedQueue('t')).toEqual({
      name: 't',
      durable: true,
      autoDelete: false,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5, 'x-max-in-memory-bytes': 1024 },
    });
    expect(l.transientQueue('reply_x').arguments).toEqual({ 'x-expires': 1_800_000 });
    expect(l.fanoutExchange('t').durable).toBe(false);
  });

  test('rabbit_transient_quorum_queue: reply and fanout queues quorum and durable; ttl 0 sets no x-expires', () => {
    const l = new QueueLayout({ ...rabbitDefaults(), rabbit_transient_quorum_queue: true, rabbit_transient_queues_ttl: 0 });
    expect(l.transientQueue('reply_x')).toEqual({ name: 'reply_x', durable: true, autoDelete: false, arguments: { 'x-queue-type': 'quorum' } });
    expect(l.fanoutExchange('t').durable).toBe(true);
    expect(l.sharedQueue('t').arguments).toEqual({});
  });
});
