/**
 * A steady HTTP client in the dev cloud's client namespace: one GET at a time on a fresh
 * connection, every 20 ms, each with a 10 s timeout, recording when it was answered and what
 * (status and body). The evidence that a web server answered on through a migration.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cloud } from './cloud.js';

const CLIENT = `
const http = require('node:http');
const [host, port] = process.argv.slice(1);
function ask() {
  const t0 = Date.now();
  const done = (ok, v) => { process.stdout.write(JSON.stringify({ t0, t: Date.now(), ok, v }) + '\\n'); setTimeout(ask, 20); };
  const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: 10000 }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => done(res.statusCode === 200, res.statusCode === 200 ? body : 'http ' + res.statusCode));
    res.on('error', (e) => done(false, e.code || e.message));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => done(false, e.code || e.message));
}
ask();
`;

export interface HttpAnswer {
  /** When the request was sent and when it ended (epoch ms). */
  t0: number;
  t: number;
  ok: boolean;
  /** The body, or the error. */
  v: string;
}

export interface HttpClient {
  answers: HttpAnswer[];
  stop(): void;
}

const running: ChildProcess[] = [];

export function startHttpClient(ip: string, port = 80): HttpClient {
  const answers: HttpAnswer[] = [];
  const child = spawn('ip', ['netns', 'exec', cloud().fabric.client_netns, process.execPath, '-e', CLIENT, ip, String(port)], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  running.push(child);
  let rest = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) answers.push(JSON.parse(l) as HttpAnswer);
  });
  return { answers, stop: () => end(child) };
}

function end(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** End every client this process started (by PID). */
export function stopHttpClients(): void {
  for (const c of running) end(c);
}
