/**
 * The disk pre-copy ([compute] disk_precopy) on real engines: a container writing on in its
 * writable layer and in a local volume moves with its disk sent in rounds while it runs, and
 * every write it made is there afterwards; a target copy that does not match the source's at
 * the freeze is refused, and the container goes on on the source, whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { dk, exists, isRunning, logTimings, makeAgent, migrate, removeEverywhere, uniqueName, waitFor, type TestAgent } from './helpers.js';

jest.setTimeout(120_000);

const moved = uniqueName('precopy');
const refused = uniqueName('precopy-bad');
const volumes = [`${moved}-vol`, `${refused}-vol`];
let a1: TestAgent;
let a2: TestAgent;

beforeAll(async () => {
  a1 = await makeAgent('compute1', { diskPrecopy: { maxRounds: 4 } });
  a2 = await makeAgent('compute2');
});
afterAll(async () => {
  await removeEverywhere([moved, refused], volumes);
  await a1?.stop();
  await a2?.stop();
});

const BIG_BLOCKS = 320; // /big: 20 MiB of 64 KiB blocks, one rewritten per step

/** Counts; each step appends to /log (writable layer) and /vol/log (volume) and rewrites one block of /big. */
async function startWriter(name: string, vol: string): Promise<void> {
  await dk('compute1', ['volume', 'create', vol]);
  const script =
    `busybox dd if=/dev/urandom of=/big bs=65536 count=${BIG_BLOCKS} 2>/dev/null; echo x > /gone; i=0; ` +
    'while :; do i=$((i+1)); echo $i >> /log; echo $i >> /vol/log; ' +
    `busybox dd if=/dev/urandom of=/big bs=65536 count=1 seek=$((i % ${BIG_BLOCKS})) conv=notrunc 2>/dev/null; ` +
    '[ $i = 60 ] && rm /gone /bin/kill; usleep 20000; done';
  await dk('compute1', ['run', '-d', '--name', name, '-v', `${vol}:/vol`, 'ferry/counter', 'sh', '-c', script]);
  await waitFor('the writer to start', async () => Number((await dk('compute1', ['exec', name, 'sh', '-c', 'tail -n1 /log'], { allowFail: true })) || 0) > 5);
}

/** Every number 1..n once, in order: no write lost, none twice. */
function contiguous(text: string): number {
  const lines = text.split('\n').filter(Boolean).map(Number);
  lines.forEach((v, i) => expect(v).toBe(i + 1));
  return lines.length;
}

test('layer and volume move in rounds while the container writes; every write is there afterwards', async () => {
  await startWriter(moved, volumes[0]);
  // The writer runs on for a while after the rounds (the freeze's round catches up with it, the deletions included).
  a1.setFaults({ delayBeforeCheckpointMs: 1500 });
  const r = await migrate(a1, a2, moved);
  a1.setFaults({});
  logTimings('disk pre-copy compute1->compute2', r);
  expect(r.error).toBeNull();
  expect(r.status).toBe('completed');
  const pre = r.live?.disk_precopy;
  process.stdout.write(`[precopy] ${JSON.stringify(pre)}\n`);
  expect(pre?.rounds).toBeGreaterThanOrEqual(1);
  // The rounds moved the 20 MiB; the freeze only what changed since the last one.
  expect(pre?.live_bytes).toBeGreaterThan(BIG_BLOCKS * 65536);
  expect(pre?.frozen_bytes).toBeLessThan(BIG_BLOCKS * 65536);
  expect(await isRunning('compute2', moved)).toBe(true);
  expect(await exists('compute1', moved)).toBe(false);

  // Paused, both files are read at one moment: the volume's is at most the step being written behind.
  const upper = await dk('compute2', ['inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', moved]);
  const volDir = await dk('compute2', ['volume', 'inspect', '-f', '{{.Mountpoint}}', volumes[0]]);
  await dk('compute2', ['pause', moved]);
  const n1 = contiguous(fs.readFileSync(path.join(upper, 'log'), 'utf8'));
  const n2 = contiguous(fs.readFileSync(path.join(volDir, 'log'), 'utf8'));
  await dk('compute2', ['unpause', moved]);
  expect(n1 - n2).toBeGreaterThanOrEqual(0);
  expect(n1 - n2).toBeLessThanOrEqual(1);
  expect(n1).toBeGreaterThan(60);
  expect(await dk('compute2', ['exec', moved, 'sh', '-c', 'ls /gone /bin/kill 2>&1 | wc -l; wc -c < /big'])).toBe(`2\n${BIG_BLOCKS * 65536}`);
  // It goes on writing there.
  await waitFor('the writer to go on on compute2', async () => contiguous(await dk('compute2', ['exec', moved, 'cat', '/log'])) > n1 + 5);
});

test('a target copy that differs from the source at the freeze is refused: rolled back, whole on the source, nothing left on the target', async () => {
  await startWriter(refused, volumes[1]);
  await dk('compute1', ['exec', refused, 'sh', '-c', 'busybox dd if=/dev/urandom of=/seed bs=65536 count=32 2>/dev/null']);
  const seed = await dk('compute1', ['exec', refused, 'busybox', 'sha256sum', '/seed']);
  const staging = await a2.driver.stagingRoot();
  // Time to alter the target's copy between the rounds and the freeze.
  a1.setFaults({ delayBeforeCheckpointMs: 4000 });
  const running = migrate(a1, a2, refused);
  const copy = await waitFor(
    'the pre-copied /seed on compute2',
    async () => {
      for (const d of fs.readdirSync(staging).filter((e) => e.endsWith('.disk'))) {
        const f = path.join(staging, d, 'rootfs', 'seed');
        if (fs.existsSync(f) && fs.statSync(f).size === 32 * 65536) return f;
      }
      return null;
    },
    15_000,
    20,
  );
  // One byte flipped in place: the size stays, the source's /seed does not change (no later round sends it).
  const fd = fs.openSync(copy, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, 1000);
  b[0] ^= 0xff;
  fs.writeSync(fd, b, 0, 1, 1000);
  fs.closeSync(fd);
  const r = await running;
  a1.setFaults({});
  expect(r.status).toBe('failed');
  expect(r.error).toMatch(/seed differs in content/);
  expect(r.error).toMatch(/rolled back to compute1/);
  // One running copy, on the source, with its state.
  expect(await isRunning('compute1', refused)).toBe(true);
  expect(await exists('compute2', refused)).toBe(false);
  expect(await dk('compute1', ['exec', refused, 'busybox', 'sha256sum', '/seed'])).toBe(seed);
  const n = contiguous(await dk('compute1', ['exec', refused, 'cat', '/log']));
  await waitFor('the writer to go on on compute1', async () => contiguous(await dk('compute1', ['exec', refused, 'cat', '/log'])) > n + 5);
  // Nothing of the migration left in compute2's staging (its copy included), nor its volume.
  expect(fs.readdirSync(staging).filter((e) => e.startsWith(r.uuid))).toEqual([]);
  expect(await dk('compute2', ['volume', 'inspect', volumes[1]], { allowFail: true })).toBe('');
});
