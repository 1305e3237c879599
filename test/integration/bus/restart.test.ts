/**
 * RabbitMQ restarted in the middle of a series of calls, on a private node (never the dev
 * cloud's): the call in flight fails clearly and early, calls during the outage fail within
 * their timeout, and once the broker is back the server serves again by itself.
 */
import { jest } from '@jest/globals';
import { MessagingTimeout, MessagingUnavailable } from '../../../src/common/errors.js';
import { RequestContext } from '../../../src/common/context.js';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { PrivateRabbit } from '../../helpers/private-rabbit.js';
import { unique } from './peer.js';
import { sleep } from '../../../src/common/sleep.js';

jest.setTimeout(180_000);

let rabbit: PrivateRabbit;
let serverT: Transport;
let clientT: Transport;
let server: RPCServer;
let client: RPCClient;
const ctx = new RequestContext({ user_id: 'u-r' });
const topic = unique('restart');
const events: string[] = [];

beforeAll(async () => {
  rabbit = new PrivateRabbit();
  await rabbit.start();
  serverT = Transport.fromUrl(rabbit.transportUrl, { exchange: 'ferry', reconnectMaxMs: 1000 });
  clientT = Transport.fromUrl(rabbit.transportUrl, { exchange: 'ferry', reconnectMaxMs: 1000 });
  for (const [n, t] of [
    ['server', serverT],
    ['client', clientT],
  ] as const) {
    t.on('connected', () => events.push(`${n}:connected`));
    t.on('disconnected', () => events.push(`${n}:disconnected`));
  }
  await serverT.connect();
  await clientT.connect();
  server = new RPCServer(serverT, { topic, server: 'h1' }, [
    {
      ping: (_c: RequestContext, a: Record<string, unknown>) => a.i,
      slow: async (_c: RequestContext, a: Record<string, unknown>) => {
        await sleep(Number(a.seconds) * 1000);
        return 'done';
      },
    },
  ]);
  await server.start();
  client = new RPCClient(clientT, { topic }, { timeoutSeconds: 5 });
});

afterAll(async () => {
  await server?.stop(1000);
  await serverT?.close();
  await clientT?.close();
  await rabbit?.destroy();
});

function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() > end) reject(new Error('timed out waiting'));
      else setTimeout(tick, 100);
    };
    tick();
  });
}

test('RabbitMQ restart during a series of calls', async () => {
  for (let i = 0; i < 3; i++) expect(await client.call(ctx, 'ping', { i })).toBe(i);

  // A call in flight when the broker goes away: 30 s timeout, but it must fail long before.
  const inflightStart = Date.now();
  const inflight = client
    .prepare({ timeout: 30 })
    .call(ctx, 'slow', { seconds: 8 })
    .then(
      () => ({ ok: true as const, at: Date.now() }),
      (e: unknown) => ({ ok: false as const, err: e as Error, at: Date.now() }),
    );
  await sleep(500); // the server has it now

  // Calls keep coming during the outage; each must settle within its 3 s timeout (+ slack).
  const outcomes: { ok: boolean; err?: Error; took: number }[] = [];
  let stopSeries = false;
  const series = (async () => {
    let i = 100;
    while (!stopSeries) {
      const t0 = Date.now();
      try {
        await client.prepare({ timeout: 3 }).call(ctx, 'ping', { i: i++ });
        outcomes.push({ ok: true, took: Date.now() - t0 });
      } catch (e) {
        outcomes.push({ ok: false, err: e as Error, took: Date.now() - t0 });
      }
      await sleep(200);
    }
  })();

  const stoppedAt = Date.now();
  await rabbit.stop();
  const r = await inflight;
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.err).toBeInstanceOf(MessagingUnavailable);
    expect(r.err.message).toMatch(/connection to RabbitMQ lost while waiting for the reply to slow/);
    expect(r.at - inflightStart).toBeLessThan(30_000);
    expect(r.at - stoppedAt).toBeLessThan(15_000); // failed with the broker, not at the timeout
  }
  await sleep(2000); // some calls hit the outage
  await rabbit.start();

  // Both sides come back by themselves.
  await waitUntil(() => serverT.isConnected && clientT.isConnected, 30_000);
  stopSeries = true;
  await series;

  for (const o of outcomes) {
    expect(o.took).toBeLessThan(4500);
    if (!o.ok) expect(o.err instanceof MessagingTimeout || o.err instanceof MessagingUnavailable).toBe(true);
  }
  expect(outcomes.some((o) => !o.ok)).toBe(true); // the outage was real

  // Later calls succeed: the server re-declared its queues and consumes again.
  for (let i = 0; i < 5; i++) expect(await client.call(ctx, 'ping', { i: 1000 + i })).toBe(1000 + i);
  // Casts and server-targeted calls work again too.
  expect(await client.prepare({ server: 'h1' }).call(ctx, 'ping', { i: 7 })).toBe(7);
  expect(events).toEqual(expect.arrayContaining(['server:disconnected', 'client:disconnected']));
  expect(events.filter((e) => e === 'server:connected').length).toBeGreaterThanOrEqual(2);
});

test('cluster URL: a dead first host is skipped, the next one is used', async () => {
  const t = Transport.fromUrl('rabbit://guest:guest@127.0.0.1:1,guest:guest@127.0.0.1:5682/', { exchange: 'ferry' });
  const hosts: string[] = [];
  t.on('connected', (h: string) => hosts.push(h));
  try {
    await t.connect();
    expect(hosts).toEqual(['127.0.0.1:5682']);
    expect(await new RPCClient(t, { topic }, { timeoutSeconds: 5 }).call(ctx, 'ping', { i: 3 })).toBe(3);
  } finally {
    await t.close();
  }
});

test('no broker at all: connect() fails clearly, calls on a closed transport fail at once', async () => {
  const t = Transport.fromUrl('rabbit://guest:guest@127.0.0.1:1/', { connectTimeoutSeconds: 1 });
  const t0 = Date.now();
  await expect(t.connect()).rejects.toThrow(MessagingUnavailable);
  expect(Date.now() - t0).toBeLessThan(5000);
  await t.close();
  await expect(new RPCClient(t, { topic }).call(ctx, 'ping', { i: 1 })).rejects.toThrow(MessagingUnavailable);
});

test('closing the transport fails the calls waiting on it', async () => {
  const t = Transport.fromUrl(rabbit.transportUrl, { exchange: 'ferry' });
  await t.connect();
  const p = new RPCClient(t, { topic }, { timeoutSeconds: 30 }).call(ctx, 'slow', { seconds: 3 }).catch((e: unknown) => e);
  await sleep(300);
  const t0 = Date.now();
  await t.close();
  const err = await p;
  expect(err).toBeInstanceOf(MessagingUnavailable);
  expect(Date.now() - t0).toBeLessThan(1000);
});
