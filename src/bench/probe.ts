/** Running the probe process beside a migration and collecting its samples. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeKind, ProbeSample } from './types.js';
import { sleep } from '../common/sleep.js';

const probeScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'probe-main.js');

export interface ProbeTarget {
  kind: ProbeKind;
  host: string;
  port: number;
  /** Network namespace to run in (ip netns exec); null = this one (127.0.0.1). */
  netns: string | null;
  intervalMs?: number;
  timeoutMs?: number;
  /** Established connections kept for asking (default: Redis 4, HTTP 8). */
  pool?: number;
  /** Silence (ms) after which fresh connections are opened too (default 200, see probe-main.ts). */
  detectMs?: number;
}

export class Probe {
  readonly samples: ProbeSample[] = [];
  private child: ChildProcess | null = null;
  private rest = '';
  private exited: Promise<void> = Promise.resolve();
  stderr = '';

  constructor(private readonly target: ProbeTarget) {}

  start(): void {
    const t = this.target;
    const args = [
      probeScript,
      '--kind',
      t.kind,
      '--host',
      t.host,
      '--port',
      String(t.port),
      '--interval',
      String(t.intervalMs ?? 10),
      '--timeout',
      String(t.timeoutMs ?? 500),
      '--pool',
      String(t.pool ?? (t.kind === 'http' ? 8 : 4)),
      '--detect',
      String(t.detectMs ?? 200),
    ];
    const child = t.netns
      ? spawn('ip', ['netns', 'exec', t.netns, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((r) => child.on('close', () => r()));
    child.stdout?.on('data', (d: Buffer) => {
      const text = this.rest + d.toString('utf8');
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.trim()) continue;
        try {
          this.samples.push(JSON.parse(l) as ProbeSample);
        } catch {
          /* a torn line: ignore */
        }
      }
    });
    child.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
  }

  answersSince(t: number): number {
    let n = 0;
    for (const s of this.samples) if (s.ok && s.t >= t) n++;
    return n;
  }

  lastAnswer(): ProbeSample | null {
    for (let i = this.samples.length - 1; i >= 0; i--) if (this.samples[i].ok) return this.samples[i];
    return null;
  }

  /** Wait until `n` answers arrived at or after `since`; false on timeout. */
  async waitAnswers(n: number, since: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.answersSince(since) >= n) return true;
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) return false;
      await sleep(20);
    }
    return false;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.pid) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child?.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(killer);
    }
  }
}
