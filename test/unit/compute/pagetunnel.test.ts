/**
 * The post-copy page tunnel over real loopback sockets, with certificates made by openssl and a
 * stand-in for CRIU's page server (a TCP server that records what it gets): only a client with a
 * certificate naming the expected target and the migration's token within the hello time is
 * served, only one, and the target's end of stream reaches the page server only after a close
 * request (else `peer-lost`, the page server left waiting). On the target side only the
 * connection of the expected process is admitted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { clientTlsOptions, loadTlsMaterial, type TlsMaterial } from '../../../src/compute/datachannel/tls.js';
import {
  CloseRequestWatcher,
  newPageToken,
  PAGE_TUNNEL_HELLO,
  PageTunnelClient,
  PageTunnelServer,
  PS_IOV_CLOSE,
  PS_IOV_FORCE_CLOSE,
  PS_REQUEST_BYTES,
} from '../../../src/compute/pagetunnel.js';
import { ensureHostCert } from '../../../src/devcloud/certs.js';
import { sleep } from '../../../src/common/sleep.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-pt-'));
let tls1: TlsMaterial;
let tls2: TlsMaterial;
let tls3: TlsMaterial;
let foreign2: TlsMaterial; // "compute2" from another CA

beforeAll(() => {
  tls1 = loadTlsMaterial(ensureHostCert(path.join(tmp, 'pki'), 'compute1'));
  tls2 = loadTlsMaterial(ensureHostCert(path.join(tmp, 'pki'), 'compute2'));
  tls3 = loadTlsMaterial(ensureHostCert(path.join(tmp, 'pki'), 'compute3'));
  foreign2 = loadTlsMaterial(ensureHostCert(path.join(tmp, 'other'), 'compute2'));
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function request(cmd: number, flags = 0): Buffer {
  const b = Buffer.alloc(PS_REQUEST_BYTES);
  b.writeUInt32LE((cmd | (flags << 16)) >>> 0, 0);
  b.writeBigUInt64LE(1n, 8);
  return b;
}

/** A stand-in for CRIU's page server: answers each request with 'P', records what came and whether EOF came. */
interface FakePageServer {
  port: number;
  received: () => Buffer;
  eof: () => boolean;
  close(): void;
}

async function fakePageServer(): Promise<FakePageServer> {
  let got = Buffer.alloc(0);
  let eof = false;
  const conns: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.push(s);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      s.write('P');
    });
    s.on('end', () => {
      eof = true;
      s.end();
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => got,
    eof: () => eof,
    close() {
      for (const c of conns) c.destroy();
      server.close();
    },
  };
}

async function connectUpstream(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup(opts: { helloTimeoutMs?: number } = {}): Promise<{ server: PageTunnelServer; fake: FakePageServer; token: string; upstream: net.Socket }> {
  const fake = await fakePageServer();
  const upstream = await connectUpstream(fake.port);
  const token = newPageToken();
  const server = new PageTunnelServer({
    tls: tls1,
    token,
    bindAddress: '127.0.0.1',
    port: 0,
    peerHost: 'compute2',
    upstream,
    helloTimeoutMs: opts.helloTimeoutMs,
  });
  await server.listen();
  cleanups.push(() => {
    server.stop();
    upstream.destroy();
    fake.close();
  });
  return { server, fake, token, upstream };
}

/** A TLS client of the tunnel; resolves once the handshake is done, or with the error that ended it. */
function dial(port: number, material: TlsMaterial): Promise<{ sock: tls.TLSSocket; data: () => Buffer; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const sock = tls.connect({ ...clientTlsOptions(material, 'compute1'), host: '127.0.0.1', port });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('data', (d: Buffer) => (data = Buffer.concat([data, d])));
    sock.once('secureConnect', () => resolve({ sock, data: () => data, closed }));
    sock.once('error', reject);
    cleanups.push(() => sock.destroy());
  });
}

async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('CloseRequestWatcher', () => {
  test('sees a close request only at a record boundary, across chunks, with flag bits', () => {
    const w = new CloseRequestWatcher();
    const get = request(7, 0x2);
    const close = request(PS_IOV_CLOSE, 0x1);
    const stream = Buffer.concat([get, get, close]);
    w.feed(stream.subarray(0, 5));
    w.feed(stream.subarray(5, 40));
    expect(w.closeSeen).toBe(false);
    w.feed(stream.subarray(40, 95));
    expect(w.closeSeen).toBe(false); // the close record is not whole yet
    w.feed(stream.subarray(95));
    expect(w.closeSeen).toBe(true);
  });

  test('a close code inside a record (not its command word) is no close request', () => {
    const w = new CloseRequestWatcher();
    const b = request(7);
    b.writeUInt32LE(PS_IOV_FORCE_CLOSE, 8);
    w.feed(b);
    expect(w.closeSeen).toBe(false);
    w.feed(request(PS_IOV_FORCE_CLOSE));
    expect(w.closeSeen).toBe(true);
  });
});

describe('PageTunnelServer', () => {
  test('the expected target with the token is piped both ways; its end after a close request reaches the page server', async () => {
    const { server, fake, token } = await setup();
    const c = await dial(server.port, tls2);
    c.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
    c.sock.write(request(7));
    await until('the first answer', () => c.data().length === 1);
    c.sock.write(request(PS_IOV_CLOSE));
    await until('the answer to close', () => c.data().length === 2);
    c.sock.end();
    await until('EOF at the page server', () => fake.eof());
    expect(fake.received()).toEqual(Buffer.concat([request(7), request(PS_IOV_CLOSE)])); // the hello is not passed on
    expect(await server.ended).toBe('closed');
  });

  test('an end before the close request does not reach the page server: peer-lost', async () => {
    const { server, fake, token, upstream } = await setup();
    const c = await dial(server.port, tls2);
    c.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
    c.sock.write(request(7));
    await until('the first answer', () => c.data().length === 1);
    c.sock.end();
    expect(await server.ended).toBe('peer-lost');
    await sleep(300);
    expect(fake.eof()).toBe(false);
    expect(upstream.destroyed).toBe(false); // CRIU keeps waiting, the source frozen and whole
  });

  test('a wrong token is closed at once and the listener waits on for the right target', async () => {
    const { server, fake, token } = await setup();
    const bad = await dial(server.port, tls2);
    bad.sock.write(`${PAGE_TUNNEL_HELLO} ${newPageToken()}\n${request(7).toString('latin1')}`);
    await bad.closed;
    expect(bad.data().length).toBe(0);
    expect(server.refused).toContain('wrong hello or token');
    expect(server.state).toBe('waiting');
    const good = await dial(server.port, tls2);
    good.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
    good.sock.write(request(7));
    await until('an answer to the right target', () => good.data().length === 1);
    expect(fake.received()).toEqual(request(7));
  });

  test('no hello in time: closed', async () => {
    const { server, fake } = await setup({ helloTimeoutMs: 200 });
    const c = await dial(server.port, tls2);
    const t0 = Date.now();
    await c.closed;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(server.refused).toContain('no hello in time');
    expect(server.state).toBe('waiting');
    expect(fake.received().length).toBe(0);
  });

  test('a plain TCP connection that never starts TLS is dropped within the hello time', async () => {
    const { server, fake } = await setup({ helloTimeoutMs: 300 });
    const raw = net.connect({ host: '127.0.0.1', port: server.port });
    raw.on('error', () => undefined);
    cleanups.push(() => raw.destroy());
    const t0 = Date.now();
    await new Promise<void>((r) => raw.once('close', () => r()));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(server.state).toBe('waiting');
    expect(fake.received().length).toBe(0);
  });

  test('a second client, even with the token, is refused while the first is served', async () => {
    const { server, fake, token } = await setup();
    const first = await dial(server.port, tls2);
    first.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
    await until('the first to be served', () => server.state === 'piping');
    // The listener is closed once a target is served: the second is refused at connect or after its hello.
    const second = await dial(server.port, tls2).catch(() => null);
    if (second) {
      second.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
      second.sock.write(request(7));
      await second.closed;
      expect(second.data().length).toBe(0);
    }
    first.sock.write(request(7));
    await until('the first answered', () => first.data().length === 1);
    expect(fake.received()).toEqual(request(7));
  });

  test('TLS: a certificate from another CA, or of another host than the target, is refused', async () => {
    const { server, fake, token } = await setup();
    const foreign = await dial(server.port, foreign2).then(
      async (c) => {
        c.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
        await c.closed;
        return c.data().length;
      },
      () => 0,
    );
    expect(foreign).toBe(0);
    expect(server.state).toBe('waiting');
    const other = await dial(server.port, tls3);
    other.sock.write(`${PAGE_TUNNEL_HELLO} ${token}\n`);
    await other.closed;
    expect(server.refused.some((r) => /certificate of compute3, not compute2/.test(r))).toBe(true);
    expect(server.state).toBe('waiting');
    expect(fake.received().length).toBe(0);
  });

  test('a client refusing the server: the target checks that it reached the source it means', async () => {
    const { server } = await setup();
    const err = await new Promise<Error>((resolve) => {
      const s = tls.connect({ ...clientTlsOptions(tls2, 'compute9'), host: '127.0.0.1', port: server.port });
      s.once('error', resolve);
      s.once('secureConnect', () => resolve(new Error('connected')));
      cleanups.push(() => s.destroy());
    });
    expect(err.message).not.toBe('connected');
  });
});

describe('PageTunnelClient', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  });

  /** A separate process that connects to 127.0.0.1:port, sends a request and a close request, prints what it got. */
  function daemonLike(port: number): ChildProcess {
    const script = `
      const net = require('node:net');
      const req = (cmd) => { const b = Buffer.alloc(32); b.writeUInt32LE(cmd, 0); b.writeBigUInt64LE(1n, 8); return b; };
      const s = net.connect(${port}, '127.0.0.1', () => { s.write(req(7)); });
      let n = 0;
      s.on('data', (d) => { n += d.length; if (n === 1) s.write(req(${PS_IOV_CLOSE})); if (n === 2) { process.stdout.write('ok'); s.end(); } });
      s.on('close', () => process.exit(n === 2 ? 0 : 3));
      s.on('error', () => process.exit(4));
    `;
    const c = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(c);
    return c;
  }

  const exitOf = (c: ChildProcess) => new Promise<number | null>((r) => c.once('exit', (code) => r(code)));

  test('admits only the expected process and carries it through the tunnel to the page server', async () => {
    const { server, fake, token } = await setup();
    const client = new PageTunnelClient({ tls: tls2, sourceHost: 'compute1', sourceAddress: '127.0.0.1', sourcePort: server.port, token });
    await client.listen();
    cleanups.push(() => client.stop());
    // An unexpected process first: refused, the listener waits on.
    client.ownerPid = process.pid;
    const stray = daemonLike(client.port);
    expect(await exitOf(stray)).not.toBe(0);
    expect(client.refused.length).toBe(1);
    expect(fake.received().length).toBe(0);
    // The expected one (its PID known before it connects, as the agent knows the daemon's).
    const real = daemonLike(client.port);
    client.ownerPid = real.pid ?? null;
    expect(await exitOf(real)).toBe(0);
    await until('EOF at the page server', () => fake.eof());
    expect(fake.received()).toEqual(Buffer.concat([request(7), request(PS_IOV_CLOSE)]));
    expect(await server.ended).toBe('closed');
  });
});
