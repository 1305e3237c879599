/**
 * What a compute host receives of the caller: the message as serialized for the bus carries
 * who asks and for what request, never the caller's Keystone token or service catalog. The
 * transport is an in-memory stand-in that keeps each published body and answers calls.
 */
import { QueueLayout } from '../../../src/bus/queues.js';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { deserializeMsg, serializeMsg, type JsonObject } from '../../../src/bus/envelope.js';
import type { Consumer, ConsumerSpec, Delivery, PublishRequest, Transport } from '../../../src/bus/transport.js';
import { RequestContext } from '../../../src/common/context.js';
import { InventoryRPCAPI } from '../../../src/compute/inventory.js';
import { ComputeRPCAPI } from '../../../src/compute/rpcapi.js';

class AnsweringBus extends EventEmitter {
  readonly exchange = 'ferry';
  readonly queues = new QueueLayout();
  readonly sent: JsonObject[] = [];
  private replies?: (d: Delivery) => void;

  consume(spec: ConsumerSpec, handler: (d: Delivery) => void): Promise<Consumer> {
    this.replies = handler;
    return Promise.resolve({ queue: spec.queue.name, cancel: () => Promise.resolve() });
  }

  publish(req: PublishRequest): Promise<void> {
    const msg = deserializeMsg(req.body);
    this.sent.push(msg);
    if (typeof msg._msg_id === 'string') {
      const body = serializeMsg({ result: { containers: [], taken_at: new Date().toISOString() }, failure: null, ending: true, _msg_id: msg._msg_id });
      setImmediate(() =>
        this.replies?.({
          body,
          properties: {} as Delivery['properties'],
          routingKey: '',
          exchange: '',
          redelivered: false,
          ack: () => true,
          reject: () => undefined,
        }),
      );
    }
    return Promise.resolve();
  }
}

const caller = () =>
  new RequestContext({
    user_id: 'u1',
    project_id: 'p1',
    roles: ['admin'],
    is_admin: true,
    auth_token: 'gAAAAA-the-callers-token',
    extra: { service_catalog: [{ type: 'identity', endpoints: [] }], auth_token_info: { token: {} }, tenant_note: 'kept' },
  });

function contextOf(msg: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(msg).filter(([k]) => k.startsWith('_context_')));
}

describe('compute RPC context', () => {
  it('a compute step sent to a host carries no token and no catalog, and still says who asks', async () => {
    const bus = new AnsweringBus();
    const api = new ComputeRPCAPI(bus as unknown as Transport, { shortTimeout: 5, longTimeout: 5 });
    const ctx = caller();
    await api.call(ctx, 'host-b', 'check_can_migrate_source', { container: 'web' } as never).catch(() => undefined);
    expect(bus.sent).toHaveLength(1);
    const wire = contextOf(bus.sent[0]);
    expect(wire._context_auth_token).toBeNull();
    expect(wire).not.toHaveProperty('_context_service_catalog');
    expect(wire).not.toHaveProperty('_context_auth_token_info');
    expect(JSON.stringify(bus.sent[0])).not.toContain('the-callers-token');
    expect(wire).toMatchObject({ _context_user_id: 'u1', _context_project_id: 'p1', _context_request_id: ctx.request_id, _context_tenant_note: 'kept' });
    // The caller's own context is untouched (the conductor may still need it).
    expect(ctx.auth_token).toBe('gAAAAA-the-callers-token');
  });

  it('a live inventory check sent to a host carries no token either', async () => {
    const bus = new AnsweringBus();
    await new InventoryRPCAPI(bus as unknown as Transport, 5).inventory(caller(), 'host-b');
    expect(JSON.stringify(bus.sent[0])).not.toContain('the-callers-token');
    expect(contextOf(bus.sent[0])).not.toHaveProperty('_context_service_catalog');
  });

  it('withoutCredentials keeps every other field', () => {
    const ctx = caller();
    const bare = ctx.withoutCredentials().toDict();
    const { auth_token: _t, service_catalog: _c, auth_token_info: _i, ...rest } = ctx.toDict();
    expect(bare).toEqual({ ...rest, auth_token: null });
  });
});
