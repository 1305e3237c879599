/**
 * Ferry's TypeScript RPCClient -> Python oslo.messaging RPC servers, on a real RabbitMQ:
 * call, cast, server-targeted call, fanout, typed remote errors, the dispatcher's errors,
 * timeouts and the version cap. The Python servers are the reference for the dispatch errors:
 * a TypeScript server must produce the same typed errors for the same requests.
 */
import { jest } from '@jest/globals';
import { MessagingTimeout, MigrationNotFound, NoSuchMethod, RemoteError, UnsupportedVersion } from '../../../src/common/errors.js';
import { RequestContext } from '../../../src/common/context.js';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { PythonPeer, deleteEntities, testBroker, unique, type Broker } from './peer.js';
import { sleep } from '../../../src/common/sleep.js';

jest.setTimeout(120_000);

let broker: Broker;
let transport: Transport;
let pyA: PythonPeer;
let pyB: PythonPeer;
let client: RPCClient;
const exchange = unique('ferry-bus-test');
const topic = unique('pyserver');
const tsTopicName = unique('tsserver');
const ctx = new RequestContext({ user_id: 'u-9', project_id: 'p-9', roles: ['admin'], is_admin: true });

beforeAll(async () => {
  broker = await testBroker();
  transport = Transport.fromUrl(broker.url, { exchange });
  await transport.connect();
  [pyA, pyB] = await Promise.all([
    PythonPeer.start('rpc-server', { url: broker.url, exchange, topic, server: 'py-a', version: '1.3' }),
    PythonPeer.start('rpc-server', { url: broker.url, exchange, topic, server: 'py-b', version: '1.3' }),
  ]);
  client = new RPCClient(transport, { topic, version: '1.0' }, { timeoutSeconds: 15 });
});

afterAll(async () => {
  await pyA?.stop();
  await pyB?.stop();
  await transport?.close();
  if (broker) {
    const queues = [topic, `${topic}.py-a`, `${topic}.py-b`, tsTopicName, `${tsTopicName}.ts-a`];
    await deleteEntities(broker.url, queues, [exchange]);
  }
  await broker?.stop();
});

test('call: Python gets the arguments and context; the result comes back', async () => {
  const args = { text: 'héllo ✓ 😀', n: 3, list: [1, { two: 2 }], nothing: null };
  const r = await client.call<{ args: unknown; ctxt: Record<string, unknown>; server: string }>(ctx, 'echo', args);
  expect(r.args).toEqual(args);
  expect(r.ctxt.user_id).toBe('u-9');
  expect(r.ctxt.user).toBe('u-9'); // oslo.context's own spelling, for Python services that read it
  expect(r.ctxt.project_id).toBe('p-9');
  expect(r.ctxt.roles).toEqual(['admin']);
  expect(r.ctxt.request_id).toBe(ctx.request_id);
  expect(['py-a', 'py-b']).toContain(r.server);
  expect(await client.call(ctx, 'add', { a: 2, b: 40 })).toBe(42);
});

test('cast reaches one Python server with its arguments', async () => {
  await client.cast(ctx, 'record', { k: 'cast-1' });
  const pred = (l: Record<string, unknown>) => l.event === 'cast' && (l.args as Record<string, unknown>).k === 'cast-1';
  let seen: Record<string, unknown>[] = [];
  for (let i = 0; i < 200 && seen.length === 0; i++) {
    await sleep(50);
    seen = [...pyA.drain(pred), ...pyB.drain(pred)];
  }
  await sleep(300);
  seen.push(...pyA.drain(pred), ...pyB.drain(pred));
  expect(seen).toHaveLength(1); // a topic cast goes to exactly one server
  const got = seen[0];
  expect(got.args).toEqual({ k: 'cast-1' });
  expect((got.ctxt as Record<string, unknown>).project_id).toBe('p-9');
});

test('server-targeted call always reaches the named server', async () => {
  const toB = client.prepare({ server: 'py-b' });
  for (let i = 0; i < 6; i++) expect(await toB.call(ctx, 'whoami')).toBe('py-b');
  const toA = client.prepare({ server: 'py-a' });
  for (let i = 0; i < 6; i++) expect(await toA.call(ctx, 'whoami')).toBe('py-a');
});

test('fanout cast reaches every server', async () => {
  await client.prepare({ fanout: true }).cast(ctx, 'record', { k: 'fan-1' });
  const pred = (l: Record<string, unknown>) => l.event === 'cast' && (l.args as Record<string, unknown>).k === 'fan-1';
  const [a, b] = await Promise.all([pyA.next(pred), pyB.next(pred)]);
  expect(a.server).toBe('py-a');
  expect(b.server).toBe('py-b');
});

test('a call cannot be fanout', async () => {
  await expect(client.prepare({ fanout: true }).call(ctx, 'whoami')).rejects.toThrow('A call cannot be used with fanout');
});

test('a Python exception reaches TypeScript as a typed remote error', async () => {
  const err = await client.call(ctx, 'fail_value', { text: 'bad input 7' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RemoteError);
  const re = err as InstanceType<typeof RemoteError>;
  expect(re.details.remote_class).toBe('ValueError');
  expect(re.details.remote_module).toBe('builtins');
  expect(re.details.remote_message).toBe('bad input 7');
  expect(String(re.details.traceback)).toContain('raise ValueError(text)');
  expect(re.message).toBe('Remote error: ValueError bad input 7');
});

test("a Python exception whose class is in Ferry's registry becomes that class", async () => {
  const err = await client.call(ctx, 'fail_not_found', { migration_id: 'm-5' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationNotFound);
  expect((err as Error).message).toBe('Migration m-5 could not be found.');
  expect((err as InstanceType<typeof MigrationNotFound>).details.remote_module).toBe('__main__');
});

describe('dispatcher errors: typed, and the same from a Python and a TypeScript server', () => {
  let tsTransport: Transport;
  let tsServer: RPCServer;
  const tsTopic = tsTopicName;
  beforeAll(async () => {
    tsTransport = Transport.fromUrl(broker.url, { exchange });
    await tsTransport.connect();
    const endpoint = {
      target: { version: '1.3' },
      echo: () => 'ok',
      whoami: () => 'ts',
    };
    tsServer = new RPCServer(tsTransport, { topic: tsTopic, server: 'ts-a' }, [endpoint]);
    await tsServer.start();
  });
  afterAll(async () => {
    await tsServer?.stop();
    await tsTransport?.close();
  });

  const cases: [string, { method: string; version?: string; namespace?: string }, typeof UnsupportedVersion][] = [
    ['unknown method', { method: 'no_such_thing' }, NoSuchMethod],
    ['major version mismatch', { method: 'whoami', version: '2.0' }, UnsupportedVersion],
    ['minor version too new', { method: 'whoami', version: '1.7' }, UnsupportedVersion],
    ['other namespace', { method: 'whoami', namespace: 'elsewhere' }, UnsupportedVersion],
  ];
  test.each(cases)('%s', async (_n, req, cls) => {
    const call = async (t: string): Promise<InstanceType<typeof UnsupportedVersion>> => {
      try {
        await client.prepare({ topic: t, version: req.version, namespace: req.namespace }).call(ctx, req.method);
      } catch (e) {
        return e as InstanceType<typeof UnsupportedVersion>;
      }
      throw new Error('the call should have failed');
    };
    const fromPy = await call(topic);
    const fromTs = await call(tsTopic);
    expect(fromPy).toBeInstanceOf(cls);
    expect(fromTs).toBeInstanceOf(cls);
    expect(fromTs.message).toBe(fromPy.message);
    expect(fromTs.details.remote_module).toBe('oslo_messaging.rpc.dispatcher');
    expect(fromPy.details.remote_module).toBe('oslo_messaging.rpc.dispatcher');
  });
});

test('a call nobody answers fails with MessagingTimeout at its timeout, not later', async () => {
  const nobody = client.prepare({ server: 'no-such-server', timeout: 2 });
  const t0 = Date.now();
  const err = await nobody.call(ctx, 'whoami').catch((e: unknown) => e);
  const took = Date.now() - t0;
  expect(err).toBeInstanceOf(MessagingTimeout);
  expect((err as Error).message).toMatch(/^Timed out waiting for a reply to message ID [0-9a-f]{32}\.$/);
  expect(took).toBeGreaterThanOrEqual(1900);
  expect(took).toBeLessThan(4000);
});

test('call_monitor_timeout: Python heartbeats keep a long call alive; without them it would time out', async () => {
  const monitored = client.prepare({ timeout: 30, callMonitorTimeout: 2 });
  expect(await monitored.call(ctx, 'slow', { seconds: 4 })).toBe('slept 4');
});

test('version cap: a message above the cap is not sent', async () => {
  const capped = new RPCClient(transport, { topic, version: '1.3' }, { versionCap: '1.2' });
  expect(capped.canSendVersion()).toBe(false);
  expect(capped.canSendVersion('1.2')).toBe(true);
  expect(capped.canSendVersion('2.0')).toBe(false);
  await expect(capped.call(ctx, 'whoami')).rejects.toBeInstanceOf(UnsupportedVersion);
  await expect(capped.call(ctx, 'whoami')).rejects.toThrow('Requested message version, 1.3 is incompatible');
  expect(await capped.prepare({ version: '1.2' }).call(ctx, 'whoami')).toMatch(/^py-[ab]$/);
});
