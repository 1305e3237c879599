/**
 * Python oslo.messaging RPCClient -> Ferry's TypeScript RPCServer, on a real RabbitMQ.
 * Where oslo defines the answer (version mismatch, unknown method) the same request is also
 * sent to a real Python RPC server and the two answers must be identical.
 */
import { jest } from '@jest/globals';
import * as amqp from 'amqplib';
import { MigrationNotFound } from '../../../src/common/errors.js';
import type { RequestContext } from '../../../src/common/context.js';
import { serializeMsg, uuidHex } from '../../../src/bus/envelope.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { parseTransportUrl } from '../../../src/bus/url.js';
import { PythonPeer, deleteEntities, testBroker, unique, type Broker } from './peer.js';
import { sleep } from '../../../src/common/sleep.js';

jest.setTimeout(120_000);

class TestManager {
  readonly target = { version: '1.3' };
  readonly casts: { args: Record<string, unknown>; ctx: RequestContext }[] = [];

  echo(ctx: RequestContext, args: Record<string, unknown>) {
    return {
      args,
      ctx: { user_id: ctx.user_id, project_id: ctx.project_id, roles: ctx.roles, request_id: ctx.request_id, is_admin: ctx.is_admin },
    };
  }

  record(ctx: RequestContext, args: Record<string, unknown>) {
    this.casts.push({ args, ctx });
  }

  get_migration(_ctx: RequestContext, args: Record<string, unknown>) {
    throw new MigrationNotFound(`Migration ${String(args.migration_id)} could not be found.`, { migration_id: args.migration_id });
  }

  async slow(_ctx: RequestContext, args: Record<string, unknown>) {
    await sleep(Number(args.seconds) * 1000);
    return `slept ${String(args.seconds)}`;
  }

  _private() {
    return 'must not be callable';
  }
}

let broker: Broker;
let transport: Transport;
let server: RPCServer;
let manager: TestManager;
let py: PythonPeer;
let pyServer: PythonPeer;
const exchange = unique('ferry-bus-test');
const topic = unique('tsserver');
const pyTopic = unique('pyserver');

beforeAll(async () => {
  broker = await testBroker();
  transport = Transport.fromUrl(broker.url, { exchange });
  await transport.connect();
  manager = new TestManager();
  server = new RPCServer(transport, { topic, server: 'host-a' }, [manager]);
  await server.start();
  py = await PythonPeer.start('client', { url: broker.url, exchange });
  pyServer = await PythonPeer.start('rpc-server', { url: broker.url, exchange, topic: pyTopic, server: 'py-a', version: '1.3' });
});

afterAll(async () => {
  await py?.stop();
  await pyServer?.stop();
  await server?.stop();
  await transport?.close();
  if (broker) await deleteEntities(broker.url, [topic, `${topic}.host-a`, pyTopic, `${pyTopic}.py-a`], [exchange]);
  await broker?.stop();
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}

const oddArgs = {
  text: 'héllo ✓ 😀 "quoted" \\ back',
  n: 42,
  f: 1.5,
  neg: -7,
  nothing: null,
  yes: true,
  list: [1, 'two', { three: [3] }],
  nested: { a: { b: { c: 'deep' } } },
};

test('call: arguments arrive intact, the context comes through, the result goes back', async () => {
  const ctx = { _oslo: true, user_id: 'u-1', project_id: 'p-1', roles: ['admin', 'member'], is_admin: true, request_id: 'req-1234' };
  const r = await py.command({ op: 'call', topic, method: 'echo', args: oddArgs, ctx, version: '1.3' });
  expect(r.ok).toBe(true);
  expect(r.result).toEqual({
    args: oddArgs,
    ctx: { user_id: 'u-1', project_id: 'p-1', roles: ['admin', 'member'], request_id: 'req-1234', is_admin: true },
  });
});

test('server-targeted call reaches the server queue', async () => {
  const r = await py.command({ op: 'call', topic, server: 'host-a', method: 'echo', args: { x: 1 } });
  expect(r).toMatchObject({ ok: true, result: { args: { x: 1 } } });
});

test('cast: arguments and context arrive', async () => {
  const before = manager.casts.length;
  const r = await py.command({
    op: 'cast',
    topic,
    method: 'record',
    args: oddArgs,
    ctx: { _oslo: true, user_id: 'u-2', project_id: 'p-2', roles: ['reader'] },
  });
  expect(r).toEqual({ ok: true, result: null });
  await waitFor(() => manager.casts.length > before);
  const got = manager.casts[before];
  expect(got.args).toEqual(oddArgs);
  expect(got.ctx.user_id).toBe('u-2');
  expect(got.ctx.project_id).toBe('p-2');
  expect(got.ctx.roles).toEqual(['reader']);
  expect(got.ctx.request_id).toMatch(/^req-[0-9a-f-]{36}$/);
});

test('fanout cast reaches the server through <topic>_fanout', async () => {
  const before = manager.casts.length;
  const r = await py.command({ op: 'cast', topic, fanout: true, method: 'record', args: { via: 'fanout' } });
  expect(r.ok).toBe(true);
  await waitFor(() => manager.casts.length > before);
  expect(manager.casts[before].args).toEqual({ via: 'fanout' });
});

test("a Ferry error reaches Python as an exception with Ferry's class name and message", async () => {
  const r = await py.command({ op: 'call', topic, method: 'get_migration', args: { migration_id: 'm-77' }, version: '1.0' });
  expect(r.ok).toBe(false);
  expect(r.error).toMatchObject({
    python_class: 'RemoteError',
    exc_type: 'MigrationNotFound',
    value: 'Migration m-77 could not be found.',
  });
});

describe('dispatch errors are the ones a Python server gives', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['unknown method', { method: 'no_such_thing', args: {} }],
    ['private method', { method: '_private', args: {} }],
    ['major version mismatch', { method: 'echo', args: {}, version: '2.0' }],
    ['minor version too new', { method: 'echo', args: {}, version: '1.4' }],
    ['other namespace', { method: 'echo', args: {}, namespace: 'elsewhere' }],
  ];
  test.each(cases)('%s', async (_name, req) => {
    const fromTs = await py.command({ op: 'call', topic, ...req });
    const fromPy = await py.command({ op: 'call', topic: pyTopic, ...req });
    expect(fromPy.ok).toBe(false);
    expect(fromTs.ok).toBe(false);
    expect(['NoSuchMethod', 'UnsupportedVersion']).toContain(fromPy.error!.exc_type);
    expect({ exc_type: fromTs.error!.exc_type, value: fromTs.error!.value, python_class: fromTs.error!.python_class }).toEqual({
      exc_type: fromPy.error!.exc_type,
      value: fromPy.error!.value,
      python_class: fromPy.error!.python_class,
    });
  });
});

test('a caller allowing oslo_messaging.rpc.dispatcher gets the real UnsupportedVersion class, as from Python', async () => {
  const strict = await PythonPeer.start('client', { url: broker.url, exchange, 'allowed-exmods': 'oslo_messaging.rpc.dispatcher' });
  try {
    const fromTs = await strict.command({ op: 'call', topic, method: 'echo', args: {}, version: '2.0' });
    const fromPy = await strict.command({ op: 'call', topic: pyTopic, method: 'echo', args: {}, version: '2.0' });
    expect(fromPy.error!.python_class).toBe('UnsupportedVersion_Remote');
    expect(fromTs.error!.python_class).toBe(fromPy.error!.python_class);
  } finally {
    await strict.stop();
  }
});

test('heartbeats keep a long call alive past call_monitor_timeout', async () => {
  // Without heartbeats every _timeout/2 s, Python would give up after 2 s.
  const t0 = Date.now();
  const r = await py.command({ op: 'call', topic, method: 'slow', args: { seconds: 5 }, call_monitor_timeout: 2, timeout: 30 });
  expect(r).toEqual({ ok: true, result: 'slept 5' });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(5000);
});

describe('robustness', () => {
  let raw: amqp.ChannelModel;
  let ch: amqp.Channel;
  beforeAll(async () => {
    const u = parseTransportUrl(broker.url);
    const h = u.hosts[0];
    raw = await amqp.connect({ hostname: h.hostname, port: h.port, username: h.username, password: h.password, vhost: u.virtualHost });
    ch = await raw.createChannel();
  });
  afterAll(async () => {
    await raw?.close();
  });

  test('malformed messages are rejected and the server keeps serving', async () => {
    const bad = [
      Buffer.from('this is not json'),
      Buffer.from('[1,2,3]'),
      Buffer.from(JSON.stringify({ 'oslo.version': '3.0', 'oslo.message': '{}' })),
      Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': 'not json either' })),
      serializeMsg({ args: {}, _unique_id: uuidHex() }), // no method
      serializeMsg({ method: 'echo', args: 'not an object', _unique_id: uuidHex() }),
      Buffer.from([0xff, 0xfe, 0x00]),
    ];
    for (const body of bad) ch.publish(exchange, topic, body, { contentType: 'application/json' });
    // The server is still there and answers.
    const r = await py.command({ op: 'call', topic, method: 'echo', args: { after: 'garbage' } });
    expect(r).toMatchObject({ ok: true, result: { args: { after: 'garbage' } } });
    // Nothing was left unacked or requeued: the queue is empty.
    await waitFor(() => true, 200);
    const q = await ch.checkQueue(topic);
    expect(q.messageCount).toBe(0);
  });

  test('a duplicate _unique_id is dropped', async () => {
    const before = manager.casts.length;
    const id = uuidHex();
    const body = serializeMsg({ method: 'record', args: { dup: id }, _unique_id: id });
    ch.publish(exchange, topic, body, { contentType: 'application/json' });
    ch.publish(exchange, topic, body, { contentType: 'application/json' });
    const other = serializeMsg({ method: 'record', args: { dup: 'marker' }, _unique_id: uuidHex() });
    ch.publish(exchange, topic, other, { contentType: 'application/json' });
    await waitFor(() => manager.casts.some((c) => c.args.dup === 'marker'));
    const seen = manager.casts.slice(before).filter((c) => c.args.dup === id);
    expect(seen).toHaveLength(1);
  });
});
