/**
 * The page carrier (dist/compute/docker/pagecarrier.js, a real process over a real socket):
 * when the agent's side of it ends before the lazy-pages client closed the protocol, it
 * SIGKILLs "CRIU" (by the PID in its pid file) instead of passing the end of stream on; after a
 * close request it passes the end on and leaves CRIU alone; started before the page server
 * listens, it connects as soon as it does. "CRIU" here is a copy of sleep named criu.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PS_IOV_CLOSE, PS_REQUEST_BYTES } from '../../../src/compute/pagetunnel.js';

const carrier = path.resolve('dist/compute/docker/pagecarrier.js');
let dir: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-carrier-'));
  fs.copyFileSync('/bin/sleep', path.join(dir, 'criu'));
  fs.chmodSync(path.join(dir, 'criu'), 0o755);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The carrier for `port`, with `pid` written to its pid file (null: not written, as before CRIU listened). */
function carrierFor(port: number, pid: number | null | undefined): ChildProcess {
  const pidFile = path.join(dir, `pid-${port}`);
  if (pid) fs.writeFileSync(pidFile, String(pid));
  const c = spawn(process.execPath, [carrier, String(port), pidFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(c);
  return c;
}

function fakeCriu(): ChildProcess {
  const c = spawn(path.join(dir, 'criu'), ['300'], { stdio: 'ignore' });
  children.push(c);
  return c;
}

const exited = (c: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) resolve({ code: c.exitCode, signal: c.signalCode });
    else c.once('exit', (code, signal) => resolve({ code, signal }));
  });

/** A page server stand-in: records what it got and whether an end of stream came. */
async function pageServer(): Promise<{ port: number; got: () => Buffer; ended: Promise<'end' | 'close'>; conn: Promise<net.Socket>; close(): void }> {
  let got = Buffer.alloc(0);
  let connResolve!: (s: net.Socket) => void;
  const conn = new Promise<net.Socket>((r) => (connResolve = r));
  let endResolve!: (x: 'end' | 'close') => void;
  const ended = new Promise<'end' | 'close'>((r) => (endResolve = r));
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    s.on('end', () => endResolve('end'));
    s.on('close', () => endResolve('close'));
    s.on('error', () => undefined);
    connResolve(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, got: () => got, ended, conn, close: () => server.close() };
}

function request(cmd: number): Buffer {
  const b = Buffer.alloc(PS_REQUEST_BYTES);
  b.writeUInt32LE(cmd, 0);
  return b;
}

describe('page carrier', () => {
  it('the agent side gone mid-protocol: CRIU is SIGKILLed, the carrier exits 3', async () => {
    const criu = fakeCriu();
    const ps = await pageServer();
    const c = carrierFor(ps.port, criu.pid);
    const sock = await ps.conn;
    c.stdin!.write(request(0x1021)); // a page request, no close
    sock.write(Buffer.from('page bytes'));
    let echoed = '';
    c.stdout!.on('data', (d: Buffer) => (echoed += d.toString()));
    for (let i = 0; i < 100 && ps.got().length < PS_REQUEST_BYTES; i++) await new Promise((r) => setTimeout(r, 20));
    c.stdin!.end(); // the agent died
    expect(await exited(c)).toEqual({ code: 3, signal: null });
    expect(await exited(criu)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(ps.got().length).toBe(PS_REQUEST_BYTES);
    expect(echoed).toBe('page bytes');
    ps.close();
  });

  it('after a close request the end is passed on and CRIU is left alone', async () => {
    const criu = fakeCriu();
    const ps = await pageServer();
    const c = carrierFor(ps.port, criu.pid);
    const sock = await ps.conn;
    c.stdout!.resume();
    c.stdin!.end(Buffer.concat([request(0x1021), request(PS_IOV_CLOSE)]));
    expect(await ps.ended).toBe('end'); // a half-close, as CRIU expects after the close request
    sock.end(); // CRIU answers and closes
    expect(await exited(c)).toEqual({ code: 0, signal: null });
    expect(criu.exitCode === null && criu.signalCode === null).toBe(true);
    criu.kill('SIGKILL');
    ps.close();
  });

  it('a PID that is no longer CRIU is not killed', async () => {
    const other = spawn('/bin/sleep', ['300'], { stdio: 'ignore' });
    children.push(other);
    const ps = await pageServer();
    const c = carrierFor(ps.port, other.pid);
    await ps.conn;
    c.stdin!.end();
    expect((await exited(c)).code).toBe(3);
    await new Promise((r) => setTimeout(r, 200));
    expect(other.exitCode === null && other.signalCode === null).toBe(true);
    other.kill('SIGKILL');
    ps.close();
  });

  it('started before the page server listens, it connects the moment it does; without a PID yet it kills nothing', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = carrierFor(port, null);
    await new Promise((r) => setTimeout(r, 300)); // refused meanwhile: it keeps trying
    let got = Buffer.alloc(0);
    const server = net.createServer((s) => s.on('data', (d: Buffer) => (got = Buffer.concat([got, d]))));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    c.stdin!.write(request(0x1021));
    for (let i = 0; i < 100 && got.length < PS_REQUEST_BYTES; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBe(PS_REQUEST_BYTES);
    c.stdin!.end();
    expect((await exited(c)).code).toBe(3);
    server.close();
  });
});
