/**
 * A request whose caller stopped waiting never runs (on a private RabbitMQ node, never the dev
 * cloud's): a call that waited on its call monitor and gave up is not run by a server that
 * starts consuming later, and a message that says its caller's deadline has passed is dropped.
 */
import { jest } from '@jest/globals';
import { RequestContext } from '../../../src/common/context.js';
import { serializeMsg } from '../../../src/bus/envelope.js';
import { RPCClient, topicExchange } from '../../../src/bus/rpc/client.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { MessagingTimeout } from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import { startPrivateBus, type PrivateBus } from '../../helpers/private-rabbit.js';
import { unique } from './peer.js';

jest.setTimeout(120_000);

let bus: PrivateBus;
const ran: string[] = [];
const ctx = new RequestContext({ user_id: 'u-deadline' });

function makeServer(topic: string): RPCServer {
  return new RPCServer(bus.server, { topic, server: 'h1' }, [
    {
      work: (_c: RequestContext, a: Record<string, unknown>) => {
        ran.push(String(a.tag));
        return 'done';
      },
    },
  ]);
}

beforeAll(async () => {
  bus = await startPrivateBus();
});

afterAll(async () => {
  await bus?.close();
});

test('a call its caller gave up on (call monitor) is not run by a server that comes later', async () => {
  const topic = unique('late');
  // The queue exists (a server ran once) but nobody consumes it while the call waits.
  const first = makeServer(topic);
  await first.start();
  await first.stop(1000);
  const client = new RPCClient(bus.client, { topic, server: 'h1' }, { timeoutSeconds: 60 });
  const t0 = Date.now();
  await expect(client.prepare({ callMonitorTimeout: 2 }).call(ctx, 'work', { tag: 'late' })).rejects.toBeInstanceOf(MessagingTimeout);
  // Gave up on the 2 s monitor, long before the 60 s timeout (the bound leaves room for a busy machine).
  expect(Date.now() - t0).toBeLessThan(30_000);
  const server = makeServer(topic);
  await server.start();
  await sleep(2000);
  expect(ran).not.toContain('late');
  // The server itself serves a live caller.
  expect(await client.prepare({ callMonitorTimeout: 30 }).call(ctx, 'work', { tag: 'live' })).toBe('done');
  expect(ran).toContain('live');
  await server.stop(1000);
});

test('a message whose _expires_at has passed is dropped by the server', async () => {
  const topic = unique('expired');
  const server = makeServer(topic);
  await server.start();
  const body = (tag: string, expiresAt: number) =>
    serializeMsg({ method: 'work', args: { tag }, version: '1.0', _unique_id: `${tag}-${Date.now()}`, _expires_at: expiresAt / 1000 });
  await bus.client.publish({ exchange: topicExchange('ferry'), routingKey: topic, body: body('stale', Date.now() - 1000) });
  await bus.client.publish({ exchange: topicExchange('ferry'), routingKey: topic, body: body('fresh', Date.now() + 60_000) });
  // The fresh message comes after the stale one on the same queue: once it ran, the stale one was seen.
  for (let i = 0; i < 300 && !ran.includes('fresh'); i++) await sleep(100);
  expect(ran).toContain('fresh');
  expect(ran).not.toContain('stale');
  await server.stop(1000);
});
