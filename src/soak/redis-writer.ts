/**
 * A Redis client in the dev cloud's client namespace that writes as fast as it is answered
 * (INCR on one connection every 10 ms, reconnecting if the connection fails) and records every
 * acknowledged value with its time: the evidence that a migration lost no acknowledged write
 * and how long the client waited.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const WRITER = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
let sock = null, buf = '', pending = false;
function connect() {
  sock = net.connect(Number(port), host);
  sock.setNoDelay(true);
  sock.on('data', (d) => {
    buf += d;
    let m;
    while ((m = /^:(\\d+)\\r\\n/.exec(buf))) { buf = buf.slice(m[0].length); pending = false; process.stdout.write(JSON.stringify({ t: Date.now(), v: Number(m[1]) }) + '\\n'); }
  });
  sock.on('error', () => {});
  sock.on('close', () => { pending = false; buf = ''; setTimeout(connect, 50); });
}
connect();
setInterval(() => { if (!pending && sock && !sock.connecting && !sock.destroyed) { pending = true; sock.write('*2\\r\\n$4\\r\\nINCR\\r\\n$6\\r\\nwrites\\r\\n'); } }, 10);
`;

export interface Ack {
  t: number;
  v: number;
}

export interface RedisWriter {
  acks: Ack[];
  stop(): void;
}

const running: ChildProcess[] = [];

/** Start a writer against Redis at `ip`:6379 on ferry-fabric, from the client namespace `netns`. */
export function startWriter(ip: string, netns: string): RedisWriter {
  const acks: Ack[] = [];
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', WRITER, ip, '6379'], { stdio: ['ignore', 'pipe', 'ignore'] });
  running.push(child);
  let rest = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) acks.push(JSON.parse(l) as Ack);
  });
  return {
    acks,
    stop: () => end(child),
  };
}

function end(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** End every writer this process started (by PID). */
export function stopWriters(): void {
  for (const w of running) end(w);
}

/** The longest time between two consecutive acknowledgements within [from, to]. */
export function longestGap(acks: Ack[], from: number, to: number): number {
  let gap = 0;
  const inside = acks.filter((a) => a.t >= from && a.t <= to);
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i].t - inside[i - 1].t);
  return gap;
}
