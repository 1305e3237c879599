/**
 * The main job's demo: three workloads on compute1 (the counter, Redis with 100,000 keys and
 * a TCP stream read by a client over the tenant network) live-migrate to compute2 through
 * Ferry's REST API, with progress and downtime printed as they go.
 */
import { spawn } from 'node:child_process';
import { sleep } from '../common/sleep.js';
import { gratuitousArp } from '../compute/docker/network.js';
import { FerryClient } from './ferry-client.js';
import { credentials } from './keystone.js';
import { FABRIC, KEYSTONE } from './layout.js';
import { docker } from './hosts.js';
import { apiUrl } from './services.js';
import type { Migration } from '../objects/migration.js';

type Out = (s: string) => void;

function bar(p: number): string {
  const n = Math.round(p / 5);
  return `[${'#'.repeat(n)}${'.'.repeat(20 - n)}] ${String(p).padStart(3)}%`;
}

async function migrate(ferry: FerryClient, name: string, dest: string, out: Out): Promise<Migration> {
  const m = await ferry.migrate(name, dest);
  let last = '';
  return ferry.waitMigration(m.uuid, {
    onPoll: (p) => {
      const line = `    ${name.padEnd(14)} ${bar(p.progress)} ${p.status}${p.phase ? ` (${p.phase})` : ''}`;
      if (line !== last) out(line);
      last = line;
    },
  });
}

function summary(m: Migration): string {
  const mb = (b: number | null) => `${((b ?? 0) / 1e6).toFixed(1)} MB`;
  if (m.status !== 'completed') return `    -> ${m.status}: ${m.error}`;
  return (
    `    -> completed: downtime ${m.freeze_ms} ms (checkpoint ${m.checkpoint_ms} ms, transfer ${m.transfer_ms} ms, ` +
    `restore ${m.restore_ms} ms), total ${m.total_ms} ms, moved ${mb(m.transferred_bytes)}` +
    `${m.connections_preserved ? ', TCP connections kept' : ''}`
  );
}

async function dockerOut(host: string, args: string[]): Promise<string> {
  return (await docker(host, args)).stdout.trim();
}

export async function runDemo(out: Out): Promise<boolean> {
  const ferry = new FerryClient(apiUrl, KEYSTONE.authUrl, credentials.admin);
  const names = { counter: 'demo-counter', redis: 'demo-redis', stream: 'demo-stream' };
  for (const h of ['compute1', 'compute2']) {
    for (const n of Object.values(names)) await docker(h, ['rm', '-f', n], { allowFail: true });
  }
  out('Starting the demo workloads on compute1');
  await docker('compute1', ['run', '-d', '--name', names.counter, 'ferry/counter:latest']);
  await docker('compute1', ['run', '-d', '--name', names.redis, 'ferry/redis:latest']);
  const ip = '10.250.0.40';
  await docker('compute1', [
    'run',
    '-d',
    '--name',
    names.stream,
    '--network',
    FABRIC.network,
    '--ip',
    ip,
    '--mac-address',
    '02:42:0a:fa:00:28',
    'ferry/stream:latest',
  ]);
  // The stream's IP and MAC may have lived on compute2 before (an earlier demo): the fabric bridge and the
  // client still send them there until the new container speaks. A gratuitous ARP says where it is now.
  const streamPid = Number(await dockerOut('compute1', ['inspect', '-f', '{{.State.Pid}}', names.stream]));
  if (!(await gratuitousArp(streamPid, ip))) out('    (could not announce the stream container on the fabric; the client may not reach it)');
  await sleep(1000);
  await dockerOut('compute1', ['exec', names.redis, 'redis-cli', 'DEBUG', 'POPULATE', '100000']);
  await dockerOut('compute1', ['exec', names.redis, 'redis-cli', 'SET', 'greeting', 'written before the move']);
  out(`    counter, redis (DBSIZE ${await dockerOut('compute1', ['exec', names.redis, 'redis-cli', 'DBSIZE'])}), stream on ${ip}`);

  // A tenant's client reads the stream over one TCP connection for the whole demo.
  const client = spawn('ip', ['netns', 'exec', FABRIC.clientNetns, 'busybox', 'nc', ip, '9000'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let clientExited = false;
  client.on('exit', () => (clientExited = true));
  const seen: { n: number; t: number }[] = [];
  let buf = '';
  client.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (/^\d+$/.test(l)) seen.push({ n: Number(l), t: Date.now() });
  });

  for (const n of Object.values(names)) await ferry.waitKnown(n, 'compute1');
  let ok = true;
  let streamWindow: { asked: number; done: number } | null = null;
  for (const n of [names.counter, names.redis, names.stream]) {
    out(`\nLive-migrating ${n}: compute1 -> compute2`);
    const before = n === names.counter ? await dockerOut('compute1', ['exec', n, 'cat', '/www/index.html']) : '';
    const asked = Date.now();
    const m = await migrate(ferry, n, 'compute2', out);
    if (n === names.stream) streamWindow = { asked, done: Date.now() };
    out(summary(m));
    ok &&= m.status === 'completed';
    if (m.status !== 'completed') continue;
    if (n === names.counter) {
      const after = await dockerOut('compute2', ['exec', n, 'cat', '/www/index.html']);
      out(`    the count was ${before} before the move and is ${after} on compute2: it went on`);
    } else if (n === names.redis) {
      const size = await dockerOut('compute2', ['exec', n, 'redis-cli', 'DBSIZE']);
      const g = await dockerOut('compute2', ['exec', n, 'redis-cli', 'GET', 'greeting']);
      out(`    on compute2: DBSIZE ${size}, greeting = "${g}"`);
    }
  }
  await sleep(2000);
  const stillConnected = !clientExited;
  client.kill();
  const verdict = streamVerdict(seen, streamWindow, stillConnected);
  out(`\n${verdict.text}`);
  out('The demo containers keep running on compute2; `ferry-devcloud demo` again starts over.');
  return ok && verdict.ok;
}

/**
 * What the stream's client saw, judged on evidence: its one connection still open at the end,
 * numbers read before the migration was asked for and after it completed, none missing or
 * repeated in between.
 */
export function streamVerdict(
  seen: { n: number; t: number }[],
  window: { asked: number; done: number } | null,
  stillConnected: boolean,
): { ok: boolean; text: string } {
  let gaps = 0;
  let pause = 0;
  for (let i = 1; i < seen.length; i++) {
    if (seen[i].n !== seen[i - 1].n + 1) gaps++;
    pause = Math.max(pause, seen[i].t - seen[i - 1].t);
  }
  const before = window ? seen.filter((x) => x.t < window.asked).length : 0;
  const after = window ? seen.filter((x) => x.t > window.done).length : 0;
  const range = `${seen[0]?.n ?? '-'}..${seen[seen.length - 1]?.n ?? '-'}`;
  const problems: string[] = [];
  if (!window) problems.push('the stream was not migrated');
  if (!stillConnected) problems.push('the connection closed');
  if (before === 0) problems.push('nothing was read before the migration');
  if (after === 0) problems.push('nothing was read after it');
  if (gaps > 0) problems.push(`${gaps} numbers missing or repeated`);
  if (problems.length > 0) {
    return {
      ok: false,
      text: `The stream's client read ${seen.length} numbers (${range}), but NOT across the move on one connection: ${problems.join('; ')}.`,
    };
  }
  return {
    ok: true,
    text:
      `The stream's client read ${seen.length} numbers (${range}) over one TCP connection, ${before} before the migration and ` +
      `${after} after it: none missing or repeated; longest pause ${pause} ms.`,
  };
}
