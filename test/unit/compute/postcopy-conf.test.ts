/**
 * Post-copy's pure decisions: runc.conf's temporary block (added, removed, repaired after a
 * writer died), the lock that keeps it away from stop-and-copies (on a temporary file, not
 * /etc/criu), and which memory modes a host supports.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { ensurePipeMaxSize, judgeModes, PIPE_MAX_SIZE_NEEDED } from '../../../src/compute/docker/lazy.js';
import { hasLazyBlock, withLazyBlock, withLazyRuncConf, withoutLazyBlock, withRuncConfShared } from '../../../src/compute/docker/runcconf.js';
import { sleep } from '../../../src/common/sleep.js';

let dir: string;
let file: string;
let lockFile: string;
const BASE = 'tcp-established\nskip-in-flight\n';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-runcconf-'));
  file = path.join(dir, 'runc.conf');
  lockFile = path.join(dir, 'lock');
  fs.writeFileSync(file, BASE);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the lazy block is added after the normal options and removed to exactly the normal content', () => {
  const lazy = withLazyBlock(BASE, ['lazy-pages', 'address 127.0.0.1', 'port 27027']);
  expect(lazy.startsWith(BASE)).toBe(true);
  expect(lazy).toMatch(/^lazy-pages$/m);
  expect(lazy).toMatch(/^port 27027$/m);
  expect(hasLazyBlock(lazy)).toBe(true);
  expect(withoutLazyBlock(lazy)).toBe(BASE);
  expect(withoutLazyBlock(BASE)).toBe(BASE);
  // A second block replaces the first rather than piling up.
  expect(withLazyBlock(lazy, ['lazy-pages', 'work-dir /x/y'])).not.toMatch(/port 27027/);
  // A file without a final newline keeps its last option on its own line.
  expect(withLazyBlock('tcp-established', ['lazy-pages'])).toMatch(/^tcp-established\n/);
});

test('an option that is not one CRIU config line is refused', () => {
  expect(() => withLazyBlock(BASE, ['lazy-pages\nleave-running'])).toThrow(/refusing/);
  expect(() => withLazyBlock(BASE, ['work-dir /tmp/a b'])).toThrow(/refusing/);
});

test('the options are in the file while the step runs and gone afterwards, also when it throws', async () => {
  let seen = '';
  await withLazyRuncConf(
    ['lazy-pages', 'port 1'],
    async () => {
      seen = fs.readFileSync(file, 'utf8');
    },
    { file, lockFile },
  );
  expect(seen).toMatch(/^port 1$/m);
  expect(fs.readFileSync(file, 'utf8')).toBe(BASE);
  await expect(
    withLazyRuncConf(
      ['lazy-pages'],
      async () => {
        throw new Error('dump failed');
      },
      { file, lockFile },
    ),
  ).rejects.toThrow('dump failed');
  expect(fs.readFileSync(file, 'utf8')).toBe(BASE);
});

test('configRead() restores the normal content before the step ends', async () => {
  await withLazyRuncConf(
    ['lazy-pages'],
    async (configRead) => {
      configRead();
      expect(fs.readFileSync(file, 'utf8')).toBe(BASE);
    },
    { file, lockFile },
  );
});

test('a stop-and-copy waits for a post-copy step and never sees its options', async () => {
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const lazy = withLazyRuncConf(
    ['lazy-pages'],
    async () => {
      order.push('lazy start');
      await gate;
      order.push('lazy end');
    },
    { file, lockFile },
  );
  await sleep(150); // the lazy step holds the lock now
  const plain = withRuncConfShared(
    async () => {
      order.push(`plain sees lazy options: ${hasLazyBlock(fs.readFileSync(file, 'utf8'))}`);
    },
    { file, lockFile },
  );
  await sleep(200);
  expect(order).toEqual(['lazy start']); // still waiting
  release();
  await Promise.all([lazy, plain]);
  expect(order).toEqual(['lazy start', 'lazy end', 'plain sees lazy options: false']);
});

test('stop-and-copies hold the lock side by side', async () => {
  let inside = 0;
  let most = 0;
  const step = () =>
    withRuncConfShared(
      async () => {
        inside++;
        most = Math.max(most, inside);
        await sleep(200);
        inside--;
      },
      { file, lockFile },
    );
  await Promise.all([step(), step()]);
  expect(most).toBe(2);
});

test('a block left by a writer that died is removed by the next one to take the lock', async () => {
  // A process that wrote the block and was killed: its lock is gone with it, the block is not.
  const text = withLazyBlock(BASE, ['lazy-pages', 'port 9']);
  const child = spawn('flock', ['-x', lockFile, 'sh', '-c', 'printf "%s" "$1" > "$2"; exec sleep 30', 'writer', text, file], {
    stdio: 'ignore',
    detached: true,
  });
  const closed = new Promise((r) => child.on('close', r));
  await sleep(300);
  expect(fs.readFileSync(file, 'utf8')).toBe(text);
  process.kill(-(child.pid as number), 'SIGKILL'); // the writer's whole process group, by its ID
  await closed;
  let seen = '';
  await withRuncConfShared(
    async () => {
      seen = fs.readFileSync(file, 'utf8');
    },
    { file, lockFile, timeoutMs: 10_000 },
  );
  expect(seen).toBe(BASE);
  expect(fs.readFileSync(file, 'utf8')).toBe(BASE);
});

test('a lock that cannot be taken in time is a clear error', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const holder = withLazyRuncConf(['lazy-pages'], () => gate, { file, lockFile });
  await sleep(150);
  await expect(withRuncConfShared(async () => undefined, { file, lockFile, timeoutMs: 1000 })).rejects.toThrow(/could not lock/);
  release();
  await holder;
});

test('memory modes: post-copy needs uffd-noncoop and the pipe size, pre-copy needs dirty tracking', () => {
  const ok = { ok: true, reason: null };
  const no = (r: string) => ({ ok: false, reason: r });
  const here = judgeModes({ criuOk: true, criuError: null, uffd: ok, dirtyTrack: no('exit 1'), pipe: { ok: true, error: null } });
  expect(here.post_copy).toEqual(ok);
  expect(here.pre_copy.ok).toBe(false);
  expect(here.pre_copy.reason).toMatch(/dirty tracking.*exit 1/);
  expect(judgeModes({ criuOk: true, criuError: null, uffd: ok, dirtyTrack: ok, pipe: { ok: true, error: null } }).pre_copy).toEqual(ok);
  const noUffd = judgeModes({ criuOk: true, criuError: null, uffd: no('uffd: not supported'), dirtyTrack: ok, pipe: { ok: true, error: null } });
  expect(noUffd.post_copy.reason).toMatch(/userfaultfd.*not supported/);
  const noPipe = judgeModes({ criuOk: true, criuError: null, uffd: ok, dirtyTrack: ok, pipe: { ok: false, error: 'fs.pipe-max-size is 1048576' } });
  expect(noPipe.post_copy).toEqual({ ok: false, reason: 'fs.pipe-max-size is 1048576' });
  const noCriu = judgeModes({ criuOk: false, criuError: 'CRIU 4.1 is older than 4.2', uffd: ok, dirtyTrack: ok, pipe: { ok: true, error: null } });
  expect(noCriu).toEqual({ post_copy: { ok: false, reason: 'CRIU 4.1 is older than 4.2' }, pre_copy: { ok: false, reason: 'CRIU 4.1 is older than 4.2' } });
});

test('fs.pipe-max-size is raised when lower, left alone when high enough, and a failure says why', () => {
  const f = path.join(dir, 'pipe-max-size');
  fs.writeFileSync(f, '1048576\n');
  expect(ensurePipeMaxSize(f)).toEqual({ ok: true, value: PIPE_MAX_SIZE_NEEDED, error: null });
  expect(Number(fs.readFileSync(f, 'utf8'))).toBe(PIPE_MAX_SIZE_NEEDED);
  fs.writeFileSync(f, '8388608\n');
  expect(ensurePipeMaxSize(f)).toEqual({ ok: true, value: 8388608, error: null });
  expect(fs.readFileSync(f, 'utf8')).toBe('8388608\n');
  const missing = ensurePipeMaxSize(path.join(dir, 'absent', 'pipe-max-size'));
  expect(missing.ok).toBe(false);
  expect(missing.error).toMatch(/could not be raised to 4194304.*CAP_SYS_RESOURCE/);
});
