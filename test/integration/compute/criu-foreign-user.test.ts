/**
 * The CRIU Ferry installs dumps and restores a process of another user than root (issue 22,
 * item 1). Root on this machine lacks CAP_SYS_RESOURCE, so an unpatched CRIU fails the dump at
 * "Can't get rlimit 0: Operation not permitted"; Ferry's patch (scripts/criu/) reads the limits
 * from /proc/PID/limits. A plain process outside any container: no dev cloud needed.
 * FERRY_TEST_CRIU points it at another build (the default is the `criu` the dev cloud uses).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, expect, test } from '@jest/globals';
import { run } from '../../../src/compute/docker/exec.js';

const CRIU = process.env.FERRY_TEST_CRIU ?? 'criu';
const NOBODY = 65534;
// Lowered (root may lower limits without the capability) to values no default has, so the
// restored process's limits can only have come from the dump.
const NOFILE = { soft: 321, hard: 654 };

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-criu-user-'));
const images = path.join(work, 'images');
const state = path.join(work, 'state');
const counts = path.join(state, 'counts');
const pause = path.join(state, 'pause');
let restoredPid = 0;

afterAll(() => {
  if (restoredPid) {
    try {
      process.kill(restoredPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The numbers the process has appended so far, one a line. */
function countsSoFar(): number[] {
  return fs.readFileSync(counts, 'utf8').split('\n').filter(Boolean).map(Number);
}

async function until<T>(what: string, probe: () => T | null, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function statusIds(pid: number, key: 'Uid' | 'Gid'): number[] {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return (new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).map(Number);
}

function openFilesLimit(pid: number): number[] {
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  return m ? [Number(m[1]), Number(m[2])] : [];
}

function logTail(file: string): string {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => /Error|FAILED/.test(l))
      .slice(-4)
      .join(' | ');
  } catch {
    return '(no log)';
  }
}

const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('a process running as nobody is dumped and restored with its uid, its rlimits and its count', async () => {
  fs.chmodSync(work, 0o755);
  fs.mkdirSync(images);
  fs.mkdirSync(state);
  fs.chownSync(state, NOBODY, NOBODY);
  await run('mkfifo', ['-m', '0600', pause]);
  fs.chownSync(pause, NOBODY, NOBODY);
  // One process and no children (a child's pid would be a zombie of init's for a while after the
  // dump, and busy at the restore): bash waits on a FIFO that never gets data instead of running
  // sleep. The count lives in its memory; each number is appended through a file descriptor it
  // keeps open. Its own session and /dev/null for stdio, so no --shell-job.
  const child = spawn(
    'prlimit',
    [
      `--nofile=${NOFILE.soft}:${NOFILE.hard}`,
      'setpriv',
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      '/bin/bash',
      '-c',
      'exec 3<>"$1/pause" 4>>"$1/counts"; i=0; while :; do i=$((i+1)); echo $i >&4; read -t 0.1 -u 3; done',
      'counter',
      state,
    ],
    { detached: true, stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid as number;
  let dumped = false;
  try {
    // Long enough that a restart from one could not pass for the restored count.
    await until('30 numbers', () => (fs.existsSync(counts) && countsSoFar().length >= 30 ? true : null));
    expect(statusIds(pid, 'Uid')).toEqual([NOBODY, NOBODY, NOBODY, NOBODY]);

    const dump = await run(CRIU, ['dump', '-t', String(pid), '-D', images, '-o', 'dump.log', '-v4'], { timeoutMs: 60_000 });
    if (dump.code !== 0) throw new Error(`criu dump of a process of uid ${NOBODY} failed (${dump.code}): ${logTail(path.join(images, 'dump.log'))}`);
    dumped = true;
  } finally {
    // A failed dump leaves it running.
    if (!dumped) process.kill(pid, 'SIGKILL');
  }
  await exited; // reaped: its pid is free for the restore
  const atDump = countsSoFar().length;

  const pidfile = path.join(work, 'restored.pid');
  const restore = await run(CRIU, ['restore', '-D', images, '-d', '--pidfile', pidfile, '-o', 'restore.log', '-v4'], { timeoutMs: 60_000 });
  if (restore.code !== 0) throw new Error(`criu restore failed (${restore.code}): ${logTail(path.join(images, 'restore.log'))}`);
  restoredPid = Number(fs.readFileSync(pidfile, 'utf8').trim());
  expect(restoredPid).toBe(pid); // CRIU gives the process its pid back

  expect(statusIds(pid, 'Uid')).toEqual([NOBODY, NOBODY, NOBODY, NOBODY]);
  expect(statusIds(pid, 'Gid')).toEqual([NOBODY, NOBODY, NOBODY, NOBODY]);
  expect(openFilesLimit(pid)).toEqual([NOFILE.soft, NOFILE.hard]);
  // It counts on from where it was frozen, through the same descriptor: 1..n with no gap and no
  // second 1 (a fresh start would write 1, 2, ... again).
  const after = await until('the restored process to count on', () => {
    const now = countsSoFar();
    return now.length >= atDump + 5 ? now : null;
  });
  expect(after).toEqual(oneToN(after.length));
});
