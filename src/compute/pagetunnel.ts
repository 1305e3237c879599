/**
 * The post-copy page tunnel: memory pages travel between CRIU's page server (source) and its
 * lazy-pages daemon (target) only through mutual TLS with the hosts' data-channel certificates,
 * and only for the one target the migration was set up for.
 *
 * Source (PageTunnelServer): CRIU's page server listens on loopback only; the agent connects to it
 * at once (CRIU accepts a single connection, so no stray local process can be first) and offers a
 * TLS listener on the migration address. A client must show a certificate from the deployment CA
 * naming the expected target and send `FERRY-PAGES/1 <token>\n` with the migration's one-time token
 * within HELLO_TIMEOUT_MS; anything else is closed at once and the listener waits on for the right
 * target. Only the first authenticated peer is piped through.
 *
 * CRIU's page server treats an end of stream before the client's close request as a failure and
 * then ends the source's tasks; the tunnel therefore passes the target's end of stream on only
 * after a close request (PS_IOV_CLOSE / PS_IOV_FORCE_CLOSE) went by. Any other end leaves CRIU
 * waiting with the source frozen and whole, and is reported as `peer-lost` for the rollback.
 *
 * Target (PageTunnelClient): the lazy-pages daemon connects to a loopback listener of the agent,
 * which admits only a connection owned by the daemon's PID and carries it over TLS to the source.
 */
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { clientTlsOptions, peerNames, type TlsMaterial } from './datachannel/tls.js';

export const PAGE_TUNNEL_HELLO = 'FERRY-PAGES/1';
export const HELLO_TIMEOUT_MS = 5000;
const MAX_HELLO_BYTES = 128;

/** CRIU 4.x page-server requests: struct page_server_iov { u32 cmd; u64 nr_pages; u64 vaddr; u64 dst_id; } = 32 bytes. */
export const PS_REQUEST_BYTES = 32;
export const PS_IOV_CLOSE = 0x1023;
export const PS_IOV_FORCE_CLOSE = 0x1024;
const PS_CMD_MASK = 0xffff;

/** A fresh one-time token for one migration's page tunnel (32 random bytes, hex). */
export function newPageToken(): string {
  return crypto.randomBytes(32).toString('hex');
}

export function isPageToken(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}

/**
 * Follows the requests a lazy-pages client sends (fixed 32-byte records) and tells whether a
 * close request went by. Pure, so it is tested apart from sockets.
 */
export class CloseRequestWatcher {
  private pending: Buffer = Buffer.alloc(0);
  closeSeen = false;

  feed(chunk: Buffer): void {
    if (this.closeSeen) return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (this.pending.length - off >= PS_REQUEST_BYTES) {
      const cmd = this.pending.readUInt32LE(off) & PS_CMD_MASK;
      off += PS_REQUEST_BYTES;
      if (cmd === PS_IOV_CLOSE || cmd === PS_IOV_FORCE_CLOSE) {
        this.closeSeen = true;
        this.pending = Buffer.alloc(0);
        return;
      }
    }
    this.pending = this.pending.subarray(off);
  }
}

/** What binds a post-copy's pages to its migration: the hosts' certificates and a one-time token. */
export interface PageTunnelSecurity {
  /** null only with [compute] data_channel_insecure: plain TCP, the token still required. */
  tls: TlsMaterial | null;
  token: string;
  /** The other host's name as its certificate says (the target for the source, the source for the target). */
  peerHost: string | null;
}

/** How a tunnel ended: `closed` = the client closed the protocol; the others are failures. */
export type TunnelEnd = 'closed' | 'peer-lost' | 'upstream-lost' | 'stopped';
export type TunnelState = 'waiting' | 'piping' | TunnelEnd;

export interface PageTunnelServerOptions {
  /** null: plain TCP (only with [compute] data_channel_insecure); the token is still required. */
  tls: TlsMaterial | null;
  token: string;
  bindAddress: string;
  port: number;
  /** The target's host name its certificate must carry (null: any certificate from the CA). */
  peerHost: string | null;
  /** Already connected to CRIU's page server. */
  upstream: Duplex;
  helloTimeoutMs?: number;
}

/** Source side: one authenticated target piped to CRIU's page server. */
export class PageTunnelServer extends EventEmitter {
  state: TunnelState = 'waiting';
  /** Why connections were refused (for the log and the tests). */
  readonly refused: string[] = [];
  port = 0;
  readonly ended: Promise<TunnelEnd>;
  private finish!: (e: TunnelEnd) => void;
  private readonly server: net.Server;
  private peer: Duplex | null = null;
  private readonly watcher = new CloseRequestWatcher();
  private readonly pendingClients = new Set<Duplex>();
  /** The served client's address:port. */
  private admitted: string | null = null;

  constructor(private readonly o: PageTunnelServerOptions) {
    super();
    this.ended = new Promise((resolve) => (this.finish = resolve));
    const onClient = (sock: Duplex & { remoteAddress?: string }) => this.onClient(sock);
    this.server = o.tls
      ? tls.createServer({ cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: true, rejectUnauthorized: true, allowHalfOpen: true }, onClient)
      : net.createServer({ allowHalfOpen: true }, onClient);
    // A handshake that fails (no or foreign certificate) never reaches onClient.
    this.server.on('tlsClientError', (e: Error) => this.refused.push(`TLS: ${e.message}`));
    this.server.on('error', () => undefined);
    // Every connection must have shown its hello within the hello time from its TCP connect
    // (one that never completes a TLS handshake included).
    this.server.on('connection', (raw: net.Socket) => {
      // Requests are 32 bytes each, answered one by one: Nagle's delay would stall every page fault.
      raw.setNoDelay(true);
      const key = `${raw.remoteAddress}:${raw.remotePort}`;
      const timer = setTimeout(() => {
        if (this.admitted !== key) {
          this.refused.push('no hello in time');
          raw.destroy();
        }
      }, o.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
      raw.once('close', () => clearTimeout(timer));
    });
    o.upstream.on('error', () => undefined);
    o.upstream.once('close', () => {
      if (this.state === 'waiting') this.end('upstream-lost');
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.bindAddress, () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  private refuse(sock: Duplex, why: string): void {
    this.refused.push(why);
    this.pendingClients.delete(sock);
    sock.destroy();
  }

  private onClient(sock: Duplex): void {
    sock.on('error', () => undefined);
    if (this.state !== 'waiting') return this.refuse(sock, 'a peer is already served');
    if (this.o.tls && this.o.peerHost && !peerNames(sock as tls.TLSSocket).includes(this.o.peerHost)) {
      return this.refuse(sock, `certificate of ${peerNames(sock as tls.TLSSocket).join(',') || 'nobody'}, not ${this.o.peerHost}`);
    }
    this.pendingClients.add(sock);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => this.refuse(sock, 'no hello in time'), this.o.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_HELLO_BYTES) {
          clearTimeout(timer);
          sock.off('data', onData);
          this.refuse(sock, 'hello too long');
        }
        return;
      }
      clearTimeout(timer);
      sock.off('data', onData);
      sock.pause();
      const line = buf.subarray(0, nl).toString('latin1');
      const rest = buf.subarray(nl + 1);
      if (!this.helloOk(line)) return this.refuse(sock, 'wrong hello or token');
      if (this.state !== 'waiting') return this.refuse(sock, 'a peer is already served');
      this.pendingClients.delete(sock);
      const peer = sock as Duplex & { remoteAddress?: string; remotePort?: number };
      this.admitted = `${peer.remoteAddress}:${peer.remotePort}`;
      this.pipe(sock, rest);
    };
    sock.on('data', onData);
    sock.once('close', () => {
      clearTimeout(timer);
      this.pendingClients.delete(sock);
    });
  }

  private helloOk(line: string): boolean {
    const m = /^FERRY-PAGES\/1 ([0-9a-f]{64})$/.exec(line);
    if (!m) return false;
    const a = Buffer.from(m[1], 'hex');
    const b = Buffer.from(this.o.token, 'hex');
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  private pipe(sock: Duplex, first: Buffer): void {
    this.state = 'piping';
    this.peer = sock;
    this.server.close(); // one peer only
    for (const c of this.pendingClients) c.destroy();
    this.pendingClients.clear();
    const up = this.o.upstream;
    const forward = (d: Buffer) => {
      this.watcher.feed(d);
      if (!up.write(d)) {
        sock.pause();
        up.once('drain', () => sock.resume());
      }
    };
    if (first.length) forward(first);
    sock.on('data', forward);
    sock.once('end', () => {
      // EOF passes to CRIU only once the protocol was closed; otherwise CRIU keeps the source whole.
      if (this.watcher.closeSeen) up.end();
      else this.end('peer-lost');
    });
    sock.once('close', () => {
      if (this.watcher.closeSeen) {
        up.end();
        this.end('closed');
      } else this.end('peer-lost');
    });
    up.on('data', (d: Buffer) => {
      if (sock.write(d)) return;
      up.pause();
      sock.once('drain', () => up.resume());
    });
    up.once('end', () => sock.end());
    up.once('close', () => {
      sock.end();
      if (!this.watcher.closeSeen) this.end('upstream-lost');
    });
    sock.resume();
  }

  private end(how: TunnelEnd): void {
    if (this.state !== 'waiting' && this.state !== 'piping') return;
    this.state = how;
    this.server.close();
    for (const c of this.pendingClients) c.destroy();
    this.pendingClients.clear();
    if (how !== 'closed') this.peer?.destroy();
    this.finish(how);
    this.emit('end', how);
  }

  /** Stop serving: the listener and the peer are closed; the upstream is left to its owner. */
  stop(): void {
    this.end('stopped');
  }
}

/** Sockets (by inode) a process holds open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** The inode of the TCP socket with this local port and remote port, from /proc/net/tcp{,6}. */
function tcpInode(localPort: number, remotePort: number): string | null {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1].endsWith(`:${hex(localPort)}`) && f[2].endsWith(`:${hex(remotePort)}`)) return f[9];
    }
  }
  return null;
}

/** Whether the other end of a loopback connection accepted here belongs to process `pid`. */
export function socketOwnedBy(sock: net.Socket, pid: number): boolean {
  if (!sock.remotePort || !sock.localPort) return false;
  // The peer's socket: its local port is our remote port and the other way round.
  const inode = tcpInode(sock.remotePort, sock.localPort);
  return inode !== null && inode !== '0' && socketInodes(pid).has(inode);
}

export interface PageTunnelClientOptions {
  tls: TlsMaterial | null;
  /** The source's host name its certificate must carry. */
  sourceHost: string;
  sourceAddress: string;
  sourcePort: number;
  token: string;
}

/** Target side: the lazy-pages daemon's one connection carried over TLS to the source. */
export class PageTunnelClient extends EventEmitter {
  state: TunnelState = 'waiting';
  port = 0;
  readonly refused: string[] = [];
  readonly ended: Promise<TunnelEnd>;
  private finish!: (e: TunnelEnd) => void;
  private readonly server: net.Server;
  private local: net.Socket | null = null;
  private remote: Duplex | null = null;
  /** The PID whose connection is admitted (set before that process connects). */
  ownerPid: number | null = null;
  /** Bytes that came from the source so far (pages and answers): the post-copy's progress. */
  bytesIn = 0;

  constructor(private readonly o: PageTunnelClientOptions) {
    super();
    this.ended = new Promise((resolve) => (this.finish = resolve));
    this.server = net.createServer({ allowHalfOpen: true }, (s) => this.onLocal(s));
    this.server.on('error', () => undefined);
  }

  /** Listen on loopback (port 0 = any); the daemon is then started against it. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  private onLocal(s: net.Socket): void {
    s.on('error', () => undefined);
    if (this.state !== 'waiting' || this.ownerPid === null || !socketOwnedBy(s, this.ownerPid)) {
      this.refused.push(`local connection from port ${s.remotePort} not owned by ${this.ownerPid}`);
      s.destroy();
      return;
    }
    this.state = 'piping';
    this.local = s;
    s.setNoDelay(true);
    this.server.close();
    s.pause();
    const remote = this.o.tls
      ? tls.connect({ ...clientTlsOptions(this.o.tls, this.o.sourceHost), host: this.o.sourceAddress, port: this.o.sourcePort })
      : net.connect({ host: this.o.sourceAddress, port: this.o.sourcePort, allowHalfOpen: true });
    this.remote = remote;
    (remote as net.Socket).setNoDelay(true);
    remote.on('error', (e: Error) => {
      this.refused.push(`source: ${e.message}`);
      this.end('upstream-lost');
    });
    remote.once(this.o.tls ? 'secureConnect' : 'connect', () => {
      remote.write(`${PAGE_TUNNEL_HELLO} ${this.o.token}\n`);
      s.pipe(remote);
      remote.on('data', (d: Buffer) => (this.bytesIn += d.length));
      remote.pipe(s);
      s.resume();
    });
    const watcher = new CloseRequestWatcher();
    s.on('data', (d: Buffer) => watcher.feed(d));
    remote.once('close', () => {
      s.end();
      this.end(watcher.closeSeen ? 'closed' : 'upstream-lost');
    });
    s.once('close', () => this.end(watcher.closeSeen ? 'closed' : 'peer-lost'));
  }

  private end(how: TunnelEnd): void {
    if (this.state !== 'waiting' && this.state !== 'piping') return;
    this.state = how;
    this.server.close();
    if (how !== 'closed') {
      this.local?.destroy();
      this.remote?.destroy();
    }
    this.finish(how);
    this.emit('end', how);
  }

  stop(): void {
    this.end('stopped');
  }
}
