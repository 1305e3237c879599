/**
 * Drives the Python oslo.messaging peer (test/interop/oslo_peer.py) and picks the broker for
 * the bus tests: the development cloud's RabbitMQ when it is up, else a private node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { cloud, repoRoot } from '../../helpers/cloud.js';
import { PrivateRabbit } from '../../helpers/private-rabbit.js';
import { uuidHex } from '../../../src/bus/envelope.js';

export const PYTHON = '/usr/bin/python3'; // Debian's python, the one with python3-oslo.messaging
const PEER = path.join(repoRoot, 'test/interop/oslo_peer.py');

export interface Broker {
  url: string;
  kind: 'devcloud' | 'private';
  stop(): Promise<void>;
}

/** The dev cloud's broker (vhost `ferry`) when it runs; otherwise a private node for this file. */
export async function testBroker(): Promise<Broker> {
  if (process.env.FERRY_BUS_PRIVATE_RABBIT !== '1' && fs.existsSync(path.join(repoRoot, 'dist/cmd/devcloud.js'))) {
    try {
      const c = cloud();
      if (c.rabbit.state === 'up') return { url: c.rabbit.transport_url, kind: 'devcloud', stop: async () => undefined };
    } catch {
      /* no dev cloud status: fall back */
    }
  }
  const r = new PrivateRabbit();
  await r.start();
  return { url: r.transportUrl, kind: 'private', stop: () => r.destroy() };
}

/** A name no other test or service uses, so tests never meet real traffic. */
export function unique(prefix: string): string {
  return `${prefix}-${uuidHex().slice(0, 10)}`;
}

export type PeerLine = Record<string, unknown>;

export class PythonPeer {
  private readonly proc: ChildProcess;
  private readonly lines: PeerLine[] = [];
  private waiters: { pred: (l: PeerLine) => boolean; resolve: (l: PeerLine) => void }[] = [];
  private stderr = '';
  private exited = false;

  private constructor(args: string[]) {
    this.proc = spawn(PYTHON, [PEER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.proc.stdout! }).on('line', (text) => {
      let l: PeerLine;
      try {
        l = JSON.parse(text) as PeerLine;
      } catch {
        return;
      }
      const i = this.waiters.findIndex((w) => w.pred(l));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(l);
      else this.lines.push(l);
    });
    this.proc.stderr!.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-20000)));
    this.proc.on('exit', () => (this.exited = true));
  }

  static async start(mode: 'rpc-server' | 'client' | 'listen', opts: Record<string, string | undefined>): Promise<PythonPeer> {
    const args: string[] = [mode];
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) args.push(`--${k}`, v);
    const p = new PythonPeer(args);
    await p.next((l) => l.event === 'ready', 30_000);
    return p;
  }

  /** The next stdout line matching pred (earlier unread lines first). */
  next(pred: (l: PeerLine) => boolean = () => true, timeoutMs = 15_000): Promise<PeerLine> {
    const i = this.lines.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: PeerLine) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`python peer: no matching line within ${timeoutMs} ms (exited=${this.exited}); stderr:\n${this.stderr}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Unread lines matching pred, taken out. */
  drain(pred: (l: PeerLine) => boolean): PeerLine[] {
    const out = this.lines.filter(pred);
    for (const l of out) this.lines.splice(this.lines.indexOf(l), 1);
    return out;
  }

  /** client mode: send one command and wait for its answer. */
  async command(cmd: Record<string, unknown>, timeoutMs = 30_000): Promise<{ ok: boolean; result?: unknown; error?: Record<string, unknown> }> {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
    const l = await this.next((x) => 'ok' in x, timeoutMs);
    return l as { ok: boolean; result?: unknown; error?: Record<string, unknown> };
  }

  get stderrText(): string {
    return this.stderr;
  }

  /** Close stdin (the peer stops cleanly), then end it by its PID if it lingers. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}

/**
 * Delete what a test declared on a shared broker (the dev cloud's), so test runs leave no
 * queues or exchanges behind. Missing ones are fine.
 */
export async function deleteEntities(url: string, queues: string[], exchanges: string[]): Promise<void> {
  const { parseTransportUrl } = await import('../../../src/bus/url.js');
  const amqp = await import('amqplib');
  const u = parseTransportUrl(url);
  const h = u.hosts[0];
  const conn = await amqp.connect({ hostname: h.hostname, port: h.port, username: h.username, password: h.password, vhost: u.virtualHost });
  conn.on('error', () => undefined);
  try {
    for (const [kind, name] of [...queues.map((q) => ['q', q] as const), ...exchanges.map((x) => ['x', x] as const)]) {
      // A failed delete closes the channel: one channel per delete.
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      try {
        if (kind === 'q') await ch.deleteQueue(name);
        else await ch.deleteExchange(name);
        await ch.close();
      } catch {
        /* already gone */
      }
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}
