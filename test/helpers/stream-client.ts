/**
 * One TCP connection to a stream container from the dev cloud's tenant-side namespace
 * (`ferry-client`): each number it reads is pushed onto `lines`. A connection that reads
 * nothing within 2 s (the container still starting) is ended and tried again, up to 20 times.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from '../../src/common/sleep.js';

export async function connectStreamClient(ip: string, lines: number[], port = 9000): Promise<ChildProcess | null> {
  let client: ChildProcess | null = null;
  for (let attempt = 0; attempt < 20 && lines.length === 0; attempt++) {
    let buf = '';
    const nc = spawn('ip', ['netns', 'exec', 'ferry-client', 'busybox', 'nc', ip, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    client = nc;
    nc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const p of parts) if (p.trim()) lines.push(Number(p.trim()));
    });
    for (let i = 0; i < 20 && lines.length === 0 && nc.exitCode === null; i++) await sleep(100);
    if (lines.length === 0 && nc.exitCode === null && nc.pid) process.kill(nc.pid, 'SIGTERM');
    if (lines.length === 0) await sleep(300);
  }
  return client;
}
