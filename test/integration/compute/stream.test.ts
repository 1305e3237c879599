/**
 * The stream that broke the famous 2016 demo: a client in the `ferry-client` namespace reads
 * ferry/stream over ONE TCP connection on ferry-fabric while the container moves
 * compute1 -> compute2. The same connection (same client port, never reconnected, the nc
 * process never exits) goes on receiving 1, 2, 3, ... with no number missing or repeated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, expect, jest, test } from '@jest/globals';
import { cloud } from '../../helpers/cloud.js';
import { dk, exists, isRunning, logTimings, sh, uniqueName, waitFor, useAgents, migrate } from './helpers.js';
import { sleep } from '../../../src/common/sleep.js';

jest.setTimeout(180_000);

let client: ChildProcess | null = null;
const name = uniqueName('stream');
const IP = '10.250.0.21';
const MAC = '02:42:0a:fa:00:15';

const agents = useAgents([name]);
afterAll(async () => {
  if (client && client.exitCode === null && client.pid) process.kill(client.pid, 'SIGTERM');
});

/** The client's TCP connection(s) to the container, as `ss` in the client namespace sees them. */
async function clientConnections(): Promise<string[]> {
  const out = await sh('ip', ['netns', 'exec', cloud().fabric.client_netns, 'ss', '-Htn', 'state', 'established', 'dst', `${IP}:9000`]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/).slice(-2)[0]); // local address:port
}

/** Which fabric port the bridge has learnt the container's MAC on. */
async function fdbPort(): Promise<string | null> {
  const out = await sh('bridge', ['-n', cloud().fabric.bridge_netns, 'fdb', 'show']);
  const line = out.split('\n').find((l) => l.startsWith(MAC));
  return line ? line.split(/\s+/)[2] : null;
}

test('one TCP connection survives the move, no number missing or repeated', async () => {
  await dk('compute1', [
    'run',
    '-d',
    '--name',
    name,
    '--network',
    cloud().fabric.network,
    '--ip',
    IP,
    '--mac-address',
    MAC,
    '-e',
    'STREAM_INTERVAL_US=50000',
    'ferry/stream',
  ]);
  await waitFor('the stream to listen', async () => (await isRunning('compute1', name)) && (await dk('compute1', ['top', name])).includes('nc'));
  await sleep(300);

  const lines: { n: number; t: number }[] = [];
  let buf = '';
  client = spawn('ip', ['netns', 'exec', cloud().fabric.client_netns, 'busybox', 'nc', IP, '9000'], { stdio: ['pipe', 'pipe', 'pipe'] });
  client.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) lines.push({ n: Number(p.trim()), t: Date.now() });
  });
  let exited = false;
  client.on('exit', () => (exited = true));

  await waitFor('the client to read 20 numbers', async () => lines.length >= 20, 20_000);
  const connBefore = await clientConnections();
  expect(connBefore).toHaveLength(1);
  expect(await fdbPort()).toBe('fab-compute1');

  const atStart = lines.length;
  const r = await migrate(agents.a1, agents.a2, name);
  logTimings('stream compute1->compute2', r);
  expect(r.error).toBeNull();
  expect(r.status).toBe('completed');
  expect(r.connections_preserved).toBe(true);
  expect(await isRunning('compute2', name)).toBe(true);
  expect(await exists('compute1', name)).toBe(false);
  // The gratuitous ARP taught the fabric where the MAC is now.
  expect(await fdbPort()).toBe('fab-compute2');
  const ins = JSON.parse(await dk('compute2', ['inspect', name]))[0];
  expect(ins.NetworkSettings.Networks[cloud().fabric.network].IPAddress).toBe(IP);
  expect(ins.NetworkSettings.Networks[cloud().fabric.network].MacAddress).toBe(MAC);

  const afterMove = lines.length;
  await waitFor('30 more numbers after the move', async () => lines.length >= afterMove + 30, 20_000);
  expect(exited).toBe(false);
  const connAfter = await clientConnections();
  expect(connAfter).toEqual(connBefore); // the same client port: the same connection

  const nums = lines.map((l) => l.n);
  nums.forEach((n, i) => expect(n).toBe(i + 1)); // 1, 2, 3, ... nothing missing, nothing repeated
  // The longest silence the client saw (the downtime as the tenant feels it).
  let gap = 0;
  for (let i = Math.max(1, atStart - 1); i < lines.length; i++) gap = Math.max(gap, lines[i].t - lines[i - 1].t);
  process.stdout.write(`[timings] stream: client saw a longest gap of ${gap} ms; ${lines.length} numbers, last ${nums[nums.length - 1]}\n`);
});
