/**
 * On a real broker (a private RabbitMQ node, never the dev cloud's): the sender identity the RPC
 * server hands its endpoints is RabbitMQ's validated user_id (a publish that claims another user
 * is refused by the broker itself), and a server with one dispatch slot runs one request at a
 * time, the next one starting only when the first has ended.
 */
import { jest } from '@jest/globals';
import * as amqp from 'amqplib';
import { RequestContext } from '../../../src/common/context.js';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import { RPCServer, type MessageOrigin } from '../../../src/bus/rpc/server.js';
import { sleep } from '../../../src/common/sleep.js';
import { startPrivateBus, type PrivateBus } from '../../helpers/private-rabbit.js';
import { unique } from './peer.js';

jest.setTimeout(120_000);

let bus: PrivateBus;
const ctx = new RequestContext({ user_id: 'u-sender' });

beforeAll(async () => {
  bus = await startPrivateBus();
});

afterAll(async () => {
  await bus?.close();
});

test('the endpoint sees the publishing connection as sender; the broker refuses a forged user_id', async () => {
  const topic = unique('sender');
  const senders: (string | null | undefined)[] = [];
  const server = new RPCServer(bus.server, { topic, server: 'h1' }, [
    { who: (_c: RequestContext, _a: Record<string, unknown>, o?: MessageOrigin) => (senders.push(o?.sender), o?.sender ?? null) },
  ]);
  await server.start();
  try {
    expect(await new RPCClient(bus.client, { topic, server: 'h1' }, { timeoutSeconds: 10 }).call(ctx, 'who')).toBe('guest');
    expect(senders).toEqual(['guest']);

    const conn = await amqp.connect(`amqp://guest:guest@${new URL(bus.rabbit.transportUrl.replace('rabbit://', 'http://')).host}/`);
    try {
      const ch = await conn.createChannel();
      const closed = new Promise<Error>((resolve) => ch.on('error', resolve));
      ch.publish('ferry', `${topic}.h1`, Buffer.from('{}'), { userId: 'compute1' });
      expect((await closed).message).toMatch(/PRECONDITION_FAILED.*user_id property/i);
    } finally {
      await conn.close().catch(() => undefined);
    }
    expect(senders).toEqual(['guest']);
  } finally {
    await server.stop(1000);
  }
});

test('one dispatch slot: the second request starts only after the first ended', async () => {
  const topic = unique('slots');
  const events: string[] = [];
  const server = new RPCServer(
    bus.server,
    { topic, server: 'h1' },
    [
      {
        work: async (_c: RequestContext, a: Record<string, unknown>) => {
          events.push(`start ${String(a.id)}`);
          await sleep(500);
          events.push(`end ${String(a.id)}`);
          return a.id;
        },
      },
    ],
    { poolSize: 1 },
  );
  await server.start();
  try {
    const client = new RPCClient(bus.client, { topic, server: 'h1' }, { timeoutSeconds: 20 });
    await Promise.all([client.call(ctx, 'work', { id: 'a' }), sleep(50).then(() => client.call(ctx, 'work', { id: 'b' }))]);
    expect(events).toEqual(['start a', 'end a', 'start b', 'end b']);
  } finally {
    await server.stop(1000);
  }
});
