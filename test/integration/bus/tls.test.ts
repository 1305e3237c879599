/**
 * RabbitMQ over TLS on a private node that has no plain listener (node `ferrytls@localhost`,
 * AMQPS on 127.0.0.1:5691, distribution 25691; never the dev cloud's): an RPC round trip whose
 * bytes, seen by a relay on the wire, are TLS records and never AMQP or the payload; a wrong CA,
 * refused at once with the broker named; failover past a dead host and an impostor whose
 * certificate another CA signed; Python oslo.messaging calling the same server over TLS with
 * `?ssl=1&ssl_ca_file=` in its URL.
 */
import { jest } from '@jest/globals';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { MessagingUnavailable } from '../../../src/common/errors.js';
import { RequestContext } from '../../../src/common/context.js';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { ensureCa, ensureHostCert } from '../../../src/devcloud/certs.js';
import { PrivateRabbit } from '../../helpers/private-rabbit.js';
import { PythonPeer, unique } from './peer.js';

jest.setTimeout(180_000);

const TLS_PORT = 5691;
const RELAY_PORT = 5692;
const IMPOSTOR_PORT = 5693;
const DEAD_PORT = 5694; // nothing listens here

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bus-tls-'));
const goodPki = path.join(dir, 'good');
const otherPki = path.join(dir, 'other');
const MARKER = 'plaintext-marker-7f3a9c';
const AMQP_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');

let rabbit: PrivateRabbit;
let caFile: string;
let otherCa: string;
let serverT: Transport;
let server: RPCServer;
const topic = unique('tls');
const ctx = new RequestContext({ user_id: 'u-tls' });
const closers: (() => Promise<void> | void)[] = [];

/** A TCP relay to the broker that keeps every byte each way, as a capture on the wire would. */
function relay(port: number, target: number): Promise<{ up: Buffer[]; down: Buffer[]; server: net.Server }> {
  const up: Buffer[] = [];
  const down: Buffer[] = [];
  const srv = net.createServer((c) => {
    const b = net.connect({ host: '127.0.0.1', port: target });
    c.on('data', (d: Buffer) => up.push(d));
    b.on('data', (d: Buffer) => down.push(d));
    c.pipe(b);
    b.pipe(c);
    c.on('error', () => b.destroy());
    b.on('error', () => c.destroy());
    c.on('close', () => b.destroy());
    b.on('close', () => c.destroy());
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve({ up, down, server: srv })));
}

function closeServer(s: net.Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

beforeAll(async () => {
  ({ ca_file: caFile } = ensureCa(goodPki, 'Ferry bus test CA'));
  const cert = ensureHostCert(goodPki, 'rabbit', ['IP:127.0.0.1']);
  ({ ca_file: otherCa } = ensureCa(otherPki, 'Some other CA'));
  rabbit = new PrivateRabbit({
    port: 5690, // unused: no plain listener
    distPort: 25691,
    nodeName: 'ferrytls@localhost',
    plain: false,
    tls: { port: TLS_PORT, certFile: cert.cert_file, keyFile: cert.key_file, caFile },
  });
  await rabbit.start();
  serverT = Transport.fromUrl(rabbit.tlsTransportUrl(caFile), { exchange: 'ferry', reconnectMaxMs: 1000 });
  await serverT.connect();
  server = new RPCServer(serverT, { topic, server: 'h1' }, [{ echo: (_c: RequestContext, a: Record<string, unknown>) => ({ back: a.text }) }]);
  await server.start();
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await server?.stop(1000);
  await serverT?.close();
  await rabbit?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an RPC call over TLS; on the wire only TLS records, never the AMQP header or the payload', async () => {
  const wire = await relay(RELAY_PORT, TLS_PORT);
  closers.push(() => closeServer(wire.server));
  const clientT = Transport.fromUrl(`rabbit://guest:guest@127.0.0.1:${RELAY_PORT}/?ssl=true&ssl_ca_file=${caFile}`, { exchange: 'ferry' });
  closers.push(() => clientT.close());
  await clientT.connect();
  expect(clientT.tls).toEqual({ caFile });
  const client = new RPCClient(clientT, { topic }, { timeoutSeconds: 10 });
  expect(await client.call(ctx, 'echo', { text: MARKER })).toEqual({ back: MARKER });

  const up = Buffer.concat(wire.up);
  const down = Buffer.concat(wire.down);
  expect(up.length).toBeGreaterThan(200);
  expect(down.length).toBeGreaterThan(200);
  // A TLS handshake record (0x16, version 3.x) opens the connection; AMQP would open with its header.
  expect([up[0], up[1]]).toEqual([0x16, 0x03]);
  for (const bytes of [up, down]) {
    expect(bytes.includes(AMQP_HEADER)).toBe(false);
    expect(bytes.includes(Buffer.from(MARKER))).toBe(false);
    expect(bytes.includes(Buffer.from('guest'))).toBe(false); // the credentials
  }

  // The same relay does see plaintext when a client speaks plain AMQP (what a capture would
  // show without TLS); the broker, with no plain listener, refuses that client.
  const before = wire.up.length;
  const plainT = Transport.fromUrl(`rabbit://guest:guest@127.0.0.1:${RELAY_PORT}/`, { exchange: 'ferry', connectTimeoutSeconds: 2 });
  await expect(plainT.connect()).rejects.toThrow(MessagingUnavailable);
  await plainT.close();
  expect(Buffer.concat(wire.up.slice(before)).subarray(0, 8)).toEqual(AMQP_HEADER);
});

test('a CA that did not sign the broker: refused at once, naming the broker and the CA file', async () => {
  const t = Transport.fromUrl(`rabbit://guest:guest@127.0.0.1:${TLS_PORT}/?ssl=1&ssl_ca_file=${otherCa}`, { exchange: 'ferry' });
  const started = Date.now();
  const err = await t.connect().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  await t.close();
  expect(err).toBeInstanceOf(MessagingUnavailable);
  expect(err!.message).toContain(`RabbitMQ 127.0.0.1:${TLS_PORT}: its TLS certificate is not signed by a CA in ssl_ca_file ${otherCa}`);
  // Not after connectTimeoutSeconds (30 s) of silent retries.
  expect(Date.now() - started).toBeLessThan(5000);
});

test('the host name is checked: the broker certificate names 127.0.0.1, not 127.0.0.2', async () => {
  // A server whose certificate the right CA signed, but for another address.
  const wrongName = ensureHostCert(goodPki, 'elsewhere', ['IP:127.0.0.2']);
  const srv = tls.createServer({ cert: fs.readFileSync(wrongName.cert_file), key: fs.readFileSync(wrongName.key_file) }, (s) => s.destroy());
  await new Promise<void>((r) => srv.listen(IMPOSTOR_PORT, '127.0.0.1', () => r()));
  try {
    const t = Transport.fromUrl(`rabbit://guest:guest@127.0.0.1:${IMPOSTOR_PORT}/?ssl=1&ssl_ca_file=${caFile}`, { exchange: 'ferry' });
    await expect(t.connect()).rejects.toThrow(/its TLS certificate does not name this host/);
    await t.close();
  } finally {
    await closeServer(srv);
  }
});

test('failover keeps working over TLS: past a dead host and an impostor to the real broker', async () => {
  const impostorCert = ensureHostCert(otherPki, 'impostor', ['IP:127.0.0.1']);
  let impostorHandshakes = 0;
  const srv = tls.createServer({ cert: fs.readFileSync(impostorCert.cert_file), key: fs.readFileSync(impostorCert.key_file) }, (s) => {
    impostorHandshakes++;
    s.destroy();
  });
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(IMPOSTOR_PORT, '127.0.0.1', () => r()));
  closers.push(() => closeServer(srv));
  const hosts = [DEAD_PORT, IMPOSTOR_PORT, TLS_PORT].map((p) => `guest:guest@127.0.0.1:${p}`).join(',');
  const t = Transport.fromUrl(`rabbit://${hosts}/?ssl=1&ssl_ca_file=${caFile}`, { exchange: 'ferry' });
  closers.push(() => t.close());
  await t.connect();
  expect(t.connectedHost).toBe(`127.0.0.1:${TLS_PORT}`);
  expect(impostorHandshakes).toBe(0); // the client gave up on it during the handshake
  const client = new RPCClient(t, { topic }, { timeoutSeconds: 10 });
  expect(await client.call(ctx, 'echo', { text: 'via failover' })).toEqual({ back: 'via failover' });
});

test('Python oslo.messaging calls the Ferry server over TLS, configured by its transport_url alone', async () => {
  const py = await PythonPeer.start('client', { url: rabbit.tlsTransportUrl(caFile), exchange: 'ferry' });
  closers.push(() => py.stop());
  const r = await py.command({ op: 'call', topic, method: 'echo', args: { text: 'from python' } });
  expect(r).toEqual({ ok: true, result: { back: 'from python' } });
});
