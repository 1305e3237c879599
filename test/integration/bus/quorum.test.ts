/**
 * Quorum queues on a three-node RabbitMQ cluster (a private one: test/helpers/private-rabbit-cluster.ts).
 * With [oslo_messaging_rabbit] rabbit_quorum_queue = true Ferry declares its topic, server and
 * notification queues as quorum queues (with the delivery limit set), keeps its reply and fanout
 * queues classic as oslo.messaging does, and Python oslo.messaging peers with the same options
 * share them. Then the node every process is connected to is killed by its PID while a stream
 * of calls runs: every call is answered, none is run twice.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { RequestContext } from '../../../src/common/context.js';
import { MessagingUnavailable, MessagingTimeout } from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import { NotificationListener, type Notification } from '../../../src/bus/listener.js';
import { Notifier } from '../../../src/bus/notifier.js';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { rabbitDefaults } from '../../../src/bus/tls.js';
import { Transport } from '../../../src/bus/transport.js';
import { PrivateRabbitCluster } from '../../helpers/private-rabbit-cluster.js';
import { PythonPeer, unique } from './peer.js';

jest.setTimeout(180_000);

const DELIVERY_LIMIT = 10;
const rabbit = { ...rabbitDefaults(), rabbit_quorum_queue: true, rabbit_quorum_delivery_limit: DELIVERY_LIMIT };
const exchange = unique('ferry-quorum');
const topic = unique('qserver');
const pyTopic = unique('qpyserver');
const ctx = new RequestContext({ user_id: 'u-q', project_id: 'p-q', roles: ['admin'], is_admin: true });

class Manager {
  readonly target = { version: '1.0' };
  readonly casts: unknown[] = [];
  /** How many times each request (key and attempt) ran. */
  readonly runs = new Map<string, number>();

  echo(_ctx: RequestContext, args: Record<string, unknown>) {
    return args;
  }
  record(_ctx: RequestContext, args: Record<string, unknown>) {
    this.casts.push(args);
  }
  async step(_ctx: RequestContext, args: { key: string; attempt: number }) {
    const id = `${args.key}#${args.attempt}`;
    this.runs.set(id, (this.runs.get(id) ?? 0) + 1);
    await sleep(20); // long enough that a kill lands on calls being handled
    return args.key;
  }
}

let cluster: PrivateRabbitCluster;
let serverTransport: Transport;
let clientTransport: Transport;
let manager: Manager;
let server: RPCServer;
let client: RPCClient;
const notifications: Notification[] = [];
let listener: NotificationListener;
let confDir: string;

beforeAll(async () => {
  cluster = new PrivateRabbitCluster();
  await cluster.start();
  const opts = { exchange, rabbit, reconnectMaxMs: 1000 };
  serverTransport = Transport.fromUrl(cluster.transportUrl, { ...opts, connectionName: 'quorum-server' });
  clientTransport = Transport.fromUrl(cluster.transportUrl, { ...opts, connectionName: 'quorum-client' });
  await serverTransport.connect();
  await clientTransport.connect();
  manager = new Manager();
  server = new RPCServer(serverTransport, { topic, server: 'ts-a' }, [manager]);
  await server.start();
  client = new RPCClient(clientTransport, { topic }, { timeoutSeconds: 10 });
  listener = new NotificationListener(serverTransport, { topics: [`${topic}-notifications`], priorities: ['info'] }, (n) => void notifications.push(n));
  await listener.start();
  confDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-quorum-'));
  fs.writeFileSync(path.join(confDir, 'peer.conf'), `[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = ${DELIVERY_LIMIT}\n`);
});

afterAll(async () => {
  await listener?.stop();
  await server?.stop(1000);
  await clientTransport?.close();
  await serverTransport?.close();
  await cluster?.destroy();
  if (confDir) fs.rmSync(confDir, { recursive: true, force: true });
});

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}

test('topic, server and notification queues are quorum queues with the delivery limit; reply and fanout queues stay classic', async () => {
  expect(await client.call(ctx, 'echo', { a: 1 })).toEqual({ a: 1 });
  const types = await cluster.queueTypes();
  expect(types.get(topic)).toBe('quorum');
  expect(types.get(`${topic}.ts-a`)).toBe('quorum');
  expect(types.get(`${topic}-notifications.info`)).toBe('quorum');
  expect(types.get(server.fanoutQueue)).toBe('classic');
  const replies = [...types].filter(([name]) => name.startsWith('reply_'));
  expect(replies.length).toBeGreaterThan(0);
  expect(replies.every(([, type]) => type === 'classic')).toBe(true);
  // rabbitmqctl's JSON gives each argument as [name, type, value].
  const listed = JSON.parse(await cluster.nodes[0].ctl(['list_queues', 'name', 'arguments', '--formatter', 'json'])) as {
    name: string;
    arguments: [string, string, unknown][];
  }[];
  const topicArgs = Object.fromEntries(listed.find((q) => q.name === topic)!.arguments.map(([k, , v]) => [k, v]));
  expect(topicArgs).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': DELIVERY_LIMIT });
});

test('call, cast, fanout and notifications work over quorum queues', async () => {
  await client.cast(ctx, 'record', { k: 'cast' });
  await client.prepare({ fanout: true }).cast(ctx, 'record', { k: 'fanout' });
  const notifier = new Notifier(clientTransport, { publisherId: 'quorum-test', topics: [`${topic}-notifications`] });
  await notifier.info(ctx, 'quorum.test', { n: 1 });
  await until(() => manager.casts.length === 2 && notifications.length === 1);
  expect(manager.casts).toEqual(expect.arrayContaining([{ k: 'cast' }, { k: 'fanout' }]));
  expect(notifications[0].eventType).toBe('quorum.test');
  expect(await client.prepare({ server: 'ts-a' }).call(ctx, 'echo', { b: 2 })).toEqual({ b: 2 });
});

test('Python oslo.messaging peers with rabbit_quorum_queue share the queues both ways', async () => {
  const peerConf = path.join(confDir, 'peer.conf');
  const pyServer = await PythonPeer.start('rpc-server', { url: cluster.transportUrl, exchange, topic: pyTopic, server: 'py-a', 'config-file': peerConf });
  const py = await PythonPeer.start('client', { url: cluster.transportUrl, exchange, 'config-file': peerConf });
  try {
    // Ferry -> Python server (queues Python declared as quorum).
    expect(await client.prepare({ topic: pyTopic }).call(ctx, 'add', { a: 40, b: 2 })).toBe(42);
    // Python -> Ferry server.
    const r = await py.command({ op: 'call', topic, method: 'echo', args: { from: 'python' }, ctx: { user_id: 'u-py' } });
    expect(r).toEqual({ ok: true, result: { from: 'python' } });
    // A Python notification reaches Ferry's listener through the same quorum queue.
    const n = await py.command({
      op: 'notify',
      publisher_id: 'py',
      priority: 'info',
      event_type: 'quorum.python',
      payload: { p: 1 },
      topics: [`${topic}-notifications`],
    });
    expect(n.ok).toBe(true);
    await until(() => notifications.some((x) => x.eventType === 'quorum.python'));
    const types = await cluster.queueTypes();
    expect(types.get(pyTopic)).toBe('quorum');
    expect(types.get(`${pyTopic}.py-a`)).toBe('quorum');
  } finally {
    await py.stop();
    await pyServer.stop();
  }
});

test('killing the node everyone is connected to: every call of a running stream is answered, none runs twice', async () => {
  const first = cluster.nodes[0];
  expect(serverTransport.connectedHost).toBe(`127.0.0.1:${first.port}`);
  expect(clientTransport.connectedHost).toBe(`127.0.0.1:${first.port}`);
  const N = 120;
  const answered = new Map<string, number>();
  let retries = 0;
  const stream = (async () => {
    for (let i = 0; i < N; i++) {
      const key = `k${i}`;
      for (let attempt = 0; ; attempt++) {
        try {
          answered.set(key, (answered.get(key) ?? 0) + ((await client.call(ctx, 'step', { key, attempt })) === key ? 1 : 0));
          break;
        } catch (e) {
          // The connection dropped under the call: ask again (a new request, its own attempt number).
          if (!(e instanceof MessagingUnavailable || e instanceof MessagingTimeout) || attempt > 20) throw e;
          retries++;
          await sleep(200);
        }
      }
    }
  })();
  await until(() => answered.size >= 20, 30_000);
  const killedAt = Date.now();
  await first.kill();
  await stream;
  const elapsed = Date.now() - killedAt;
  expect(answered.size).toBe(N);
  expect([...answered.values()].every((n) => n === 1)).toBe(true);
  // No request (key and attempt) ran more than once, and every key ran.
  expect([...manager.runs.values()].every((n) => n === 1)).toBe(true);
  const keysRun = new Set([...manager.runs.keys()].map((id) => id.split('#')[0]));
  expect(keysRun.size).toBe(N);
  expect(serverTransport.connectedHost).not.toBe(`127.0.0.1:${first.port}`);
  expect((await cluster.queueTypes()).get(topic)).toBe('quorum');
  process.stdout.write(`quorum failover: ${N} calls, ${retries} retried after the kill, stream finished ${elapsed} ms after it\n`);
});
