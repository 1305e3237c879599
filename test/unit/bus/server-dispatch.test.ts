/**
 * The RPC server runs at most `poolSize` requests at once and acknowledges a request only once
 * it holds a slot (the rest stay unacknowledged, so the broker's prefetch keeps them queued);
 * a request whose caller stopped waiting is still dropped, also after waiting for a slot.
 * The transport is a small in-memory stand-in that records acks and publishes: what is proved
 * is the server's own bookkeeping, not RabbitMQ's.
 */
import { QueueLayout } from '../../../src/bus/queues.js';
import { describe, expect, it } from '@jest/globals';
import { serializeMsg, uuidHex } from '../../../src/bus/envelope.js';
import { RPCServer, type MessageOrigin } from '../../../src/bus/rpc/server.js';
import { DispatchSlots } from '../../../src/bus/rpc/slots.js';
import type { Consumer, ConsumerSpec, Delivery, PublishRequest, Transport } from '../../../src/bus/transport.js';
import type { RequestContext } from '../../../src/common/context.js';

class FakeBus {
  readonly specs: ConsumerSpec[] = [];
  readonly handlers: ((d: Delivery) => void)[] = [];
  readonly published: PublishRequest[] = [];
  readonly exchange = 'ferry';
  readonly queues = new QueueLayout();

  consume(spec: ConsumerSpec, handler: (d: Delivery) => void): Promise<Consumer> {
    this.specs.push(spec);
    this.handlers.push(handler);
    return Promise.resolve({ queue: spec.queue.name, cancel: () => Promise.resolve() });
  }

  publish(req: PublishRequest): Promise<void> {
    this.published.push(req);
    return Promise.resolve();
  }

  /** Hand one request to the server's first consumer; returns what became of the delivery. */
  deliver(msg: Record<string, unknown>, userId?: string): { acked: boolean; rejected: boolean | null; channelGone: boolean } {
    const state = { acked: false, rejected: null as boolean | null, channelGone: false };
    const d: Delivery = {
      body: serializeMsg({ _unique_id: uuidHex(), ...msg }),
      properties: { userId } as Delivery['properties'],
      routingKey: 'topic',
      exchange: this.exchange,
      redelivered: false,
      ack: () => {
        if (state.channelGone) return false;
        state.acked = true;
        return true;
      },
      reject: (requeue: boolean) => {
        state.rejected = requeue;
      },
    };
    this.handlers[0](d);
    return state;
  }
}

/** An endpoint whose `work` runs until the test lets that call end. */
class HeldEndpoint {
  readonly started: string[] = [];
  readonly senders: (string | null | undefined)[] = [];
  private readonly ends = new Map<string, () => void>();

  work(_ctx: RequestContext, args: Record<string, unknown>, origin?: MessageOrigin): Promise<void> {
    const id = String(args.id);
    this.started.push(id);
    this.senders.push(origin?.sender);
    return new Promise((resolve) => this.ends.set(id, resolve));
  }

  end(id: string): void {
    this.ends.get(id)?.();
  }
}

const settle = () => new Promise((r) => setImmediate(r));

async function serverWith(poolSize: number) {
  const bus = new FakeBus();
  const ep = new HeldEndpoint();
  const server = new RPCServer(bus as unknown as Transport, { topic: 'topic', server: 'h1' }, [ep], { poolSize });
  await server.start();
  return { bus, ep, server };
}

describe('RPC server dispatch bound', () => {
  it('with two slots, a third request is neither acknowledged nor dispatched until one of the two ends', async () => {
    const { bus, ep, server } = await serverWith(2);
    const a = bus.deliver({ method: 'work', args: { id: 'a' } });
    const b = bus.deliver({ method: 'work', args: { id: 'b' } });
    const c = bus.deliver({ method: 'work', args: { id: 'c' } });
    await settle();
    expect(ep.started).toEqual(['a', 'b']);
    expect([a.acked, b.acked, c.acked]).toEqual([true, true, false]);
    expect(server.slots.waiting).toBe(1);

    ep.end('a');
    await settle();
    expect(ep.started).toEqual(['a', 'b', 'c']);
    expect(c.acked).toBe(true);
    ep.end('b');
    ep.end('c');
    await server.stop(1000);
    expect(server.slots.inUse).toBe(0);
  });

  it('asks the broker for no more unacknowledged messages than it has slots, on every consumer', async () => {
    const { bus, server } = await serverWith(3);
    expect(bus.specs.map((s) => s.prefetch)).toEqual([3, 3, 3]);
    await server.stop(1000);
  });

  it('drops a request whose caller gave up while it waited for a slot (acknowledged, never run)', async () => {
    const { bus, ep, server } = await serverWith(1);
    bus.deliver({ method: 'work', args: { id: 'a' } });
    const late = bus.deliver({ method: 'work', args: { id: 'late' }, _expires_at: Date.now() / 1000 + 0.05 });
    await new Promise((r) => setTimeout(r, 120));
    ep.end('a');
    await settle();
    expect(ep.started).toEqual(['a']);
    expect(late.acked).toBe(true);
    expect(server.slots.inUse).toBe(0);
    await server.stop(1000);
  });

  it('does not run a waiting request whose channel was lost (the broker hands it out again)', async () => {
    const { bus, ep, server } = await serverWith(1);
    bus.deliver({ method: 'work', args: { id: 'a' } });
    const lost = bus.deliver({ method: 'work', args: { id: 'lost' } });
    lost.channelGone = true;
    await settle();
    ep.end('a');
    await settle();
    expect(ep.started).toEqual(['a']);
    expect(server.slots.inUse).toBe(0);
    await server.stop(1000);
  });

  it('a stopping server leaves waiting requests unacknowledged (the broker takes them back) instead of running them', async () => {
    const { bus, ep, server } = await serverWith(1);
    bus.deliver({ method: 'work', args: { id: 'a' } });
    const waiting = bus.deliver({ method: 'work', args: { id: 'w' } });
    await settle();
    const stopped = server.stop(1000);
    ep.end('a');
    await stopped;
    expect(ep.started).toEqual(['a']);
    expect(waiting).toMatchObject({ acked: false });
  });
});

describe('RPC server sender', () => {
  it('hands the endpoint the broker-validated publisher (user_id), or null, outside the context', async () => {
    const { bus, ep, server } = await serverWith(2);
    bus.deliver({ method: 'work', args: { id: 'a' }, _context_user_id: 'u' }, 'compute1');
    bus.deliver({ method: 'work', args: { id: 'b' } });
    await settle();
    expect(ep.senders).toEqual(['compute1', null]);
    ep.end('a');
    ep.end('b');
    await server.stop(1000);
  });
});

describe('DispatchSlots', () => {
  it('hands freed slots to waiters in arrival order', async () => {
    const slots = new DispatchSlots(1);
    expect(await slots.take()).toBe(true);
    const order: string[] = [];
    const x = slots.take().then(() => order.push('x'));
    const y = slots.take().then(() => order.push('y'));
    slots.release();
    await x;
    slots.release();
    await y;
    expect(order).toEqual(['x', 'y']);
    slots.release();
    expect(slots.inUse).toBe(0);
  });

  it('refuses a size below one', () => {
    expect(() => new DispatchSlots(0)).toThrow(RangeError);
  });
});
