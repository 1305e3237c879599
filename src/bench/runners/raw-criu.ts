/**
 * Method 3: raw CRIU on the same kind of process outside Docker — the floor this machine allows.
 * A host redis-server on 127.0.0.1 holding the same data (or, for the counter, a busybox shell
 * loop with httpd), `criu dump --tcp-established --shell-job` (which ends the original), then
 * `criu restore -d` on the same host (its PID is free again once the original is gone). No
 * transfer: the restore reads the images where the dump wrote them. Probed over 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sh, treeBytes, waitUntil } from '../cloud.js';
import type { RunResult, Workload } from '../types.js';
import { applyFailure } from '../verdict.js';
import { emptyResult, errMessage, judgedMigration, type Method, type MigrationOutcome, type RunContext, type StateAccess } from './common.js';
import { sleep } from '../../common/sleep.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const BUSYBOX = '/usr/bin/busybox';
const BASE_PORT = 16480; // 127.0.0.1 only; slot-dependent so a leftover never clashes

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killPid(pid: number | null): Promise<void> {
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** The PIDs of a process tree (root first), from /proc/PID/task/TID/children. */
function treePids(root: number): number[] {
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const t of tids) {
      try {
        for (const c of fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) walk(Number(c));
      } catch {
        /* gone */
      }
    }
  };
  walk(root);
  return out;
}

/** Kill a whole restored tree by its root's children first (counter: sh + httpd), by PID. */
export async function killTree(pid: number | null): Promise<void> {
  if (!pid) return;
  let kids: number[] = [];
  try {
    kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* gone */
  }
  await killPid(pid);
  for (const k of kids) await killPid(k);
}

export function redisCli(port: number, args: string[], timeoutMs = 300_000) {
  return sh(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { allowFail: true, timeoutMs });
}

const REAPER = `
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
pid = os.fork()
if pid == 0:
    os.setsid()
    os.execv(sys.argv[1], sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
`;

interface HostProcess {
  child: ChildProcess;
  /** redis-server itself, or the reaper whose one child is the counter's shell. */
  pid: number;
  exited: Promise<void>;
  reaper: boolean;
}

/** The process CRIU dumps: redis-server, or the counter's shell under the reaper. */
async function dumpRoot(p: HostProcess): Promise<number> {
  if (!p.reaper) return p.pid;
  let root = 0;
  await waitUntil(
    'the counter shell',
    async () => {
      root = Number(fs.readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
      return root > 0;
    },
    10_000,
    20,
  );
  return root;
}

/** Where the counter's shell prints its counts: a file on the host its stdout stays open on, across the dump and restore. */
function counterLog(dir: string): string {
  return path.join(dir, 'counter.out');
}

function startHostProcess(w: Workload, port: number, dir: string): HostProcess {
  let child: ChildProcess;
  if (w.probe === 'redis') {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--enable-debug-command',
      'local',
      '--dir',
      dir,
      '--daemonize',
      'no',
    ];
    child = spawn(REDIS_SERVER, args, { detached: true, stdio: 'ignore' });
  } else {
    const www = path.join(dir, 'www');
    fs.mkdirSync(www, { recursive: true });
    fs.writeFileSync(path.join(www, 'index.html'), '0\n');
    const interval = w.env.COUNTER_INTERVAL ?? '1';
    const script = `${BUSYBOX} httpd -f -p 127.0.0.1:${port} -h ${www} & i=0; while :; do i=$((i+1)); echo "$i" > ${www}/.next && ${BUSYBOX} mv ${www}/.next ${www}/index.html; echo "$i"; ${BUSYBOX} sleep ${interval}; done`;
    // A small reaper (child subreaper) parents the shell: when the dump ends the tree, httpd and
    // sleep are reaped at once instead of whenever PID 1 gets to them, so their PIDs are free
    // for the restore (Debian's /usr/bin/python3, ctypes prctl(PR_SET_CHILD_SUBREAPER)).
    const out = fs.openSync(counterLog(dir), 'a');
    child = spawn('/usr/bin/python3', ['-c', REAPER, BUSYBOX, 'sh', '-c', script], { detached: true, stdio: ['ignore', out, 'ignore'], cwd: dir });
    fs.closeSync(out);
  }
  if (!child.pid) throw new Error(`could not start the host process for ${w.name}`);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, pid: child.pid, exited, reaper: w.probe !== 'redis' };
}

export const rawCriu: Method = {
  name: 'raw-criu',
  label: 'raw CRIU, same host (floor)',
  // The services (w.client) need their image's files: they run in containers only.
  supports: (w: Workload) => !w.client,
  async run(w: Workload, ctx: RunContext): Promise<RunResult> {
    const { cloud } = ctx;
    const result = emptyResult('raw-criu', w, ctx.run);
    const port = BASE_PORT + (ctx.slot % 20);
    const dir = path.join(cloud.workDir, `criu-${w.name}-${process.pid}-${ctx.slot}`);
    const img = path.join(dir, 'img');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(img, { recursive: true });
    const criu = cloud.status.criu.binary;
    let proc: HostProcess | null = null;
    let restoredPid: number | null = null;
    try {
      proc = startHostProcess(w, port, dir);
      const p = proc;
      if (w.probe === 'redis') {
        await waitUntil(`host redis-server on ${port}`, async () => (await redisCli(port, ['PING'])).stdout === 'PONG', 15_000);
        await redisCli(port, ['DEBUG', 'POPULATE', String(w.keys)]);
        const n = (await redisCli(port, ['DBSIZE'])).stdout;
        if (n !== String(w.keys)) throw new Error(`host redis-server holds ${n} keys, not ${w.keys}`);
      }
      const root = await dumpRoot(p);
      result.detail.host_pid = root;
      // The restore gives the tree its PIDs back: the original is told apart by its start time.
      const start = procStart(root);
      const cli = async (args: string[]) => (await redisCli(port, args)).stdout.trim();
      const readFrom = (offset: number) => {
        const b = fs.readFileSync(counterLog(dir));
        return b.subarray(Math.min(offset, b.length)).toString('utf8');
      };
      let dumpedAt: number | null = null; // the log's size when the dump had ended the original
      const access: StateAccess = {
        redisBefore: cli,
        redisAfter: cli,
        counterBefore: async () => readFrom(0),
        // Only what the restored process printed (after the dump the original printed nothing more).
        counterAfter: async () => (dumpedAt === null ? '' : readFrom(dumpedAt)),
        sourceGone: async () => originalGone(root, start),
      };
      await judgedMigration(
        result,
        w,
        // --skip-in-flight below lets the probe open fresh connections soon after answers stop.
        { kind: w.probe, host: '127.0.0.1', port, netns: null, detectMs: 30 },
        access,
        async (): Promise<MigrationOutcome> => {
          const tree = treePids(root);
          const t0 = Date.now();
          const d = await sh(
            criu,
            [
              'dump',
              '-t',
              String(root),
              '-D',
              img,
              '--tcp-established',
              '--skip-in-flight',
              '--network-lock',
              'nftables',
              '--shell-job',
              '-o',
              'dump.log',
              '-v2',
            ],
            { allowFail: true },
          );
          if (d.code !== 0) throw new Error(`criu dump failed: ${d.stderr} ${tailLog(path.join(img, 'dump.log'))}`);
          const td = Date.now();
          // The restore needs the PIDs free again: the original is our child (reaped by Node), its
          // children (counter: httpd, sleep) are reaped by PID 1, which may take a moment.
          if (!p.reaper) await Promise.race([p.exited, sleep(5000)]);
          const deadline = Date.now() + 5000;
          while (tree.some(alive) && Date.now() < deadline) await sleep(5);
          const t1 = Date.now();
          if (w.probe !== 'redis') dumpedAt = fs.statSync(counterLog(dir)).size;
          const pidfile = path.join(dir, 'restored.pid');
          const r = await sh(
            criu,
            ['restore', '-D', img, '--tcp-established', '--network-lock', 'nftables', '--shell-job', '-d', '--pidfile', pidfile, '-o', 'restore.log', '-v2'],
            { allowFail: true },
          );
          if (r.code !== 0) throw new Error(`criu restore failed: ${r.stderr} ${tailLog(path.join(img, 'restore.log'))}`);
          const t2 = Date.now();
          restoredPid = Number(fs.readFileSync(pidfile, 'utf8').trim()) || root;
          const bytes = imageBytes(img);
          return {
            tool_freeze_ms: t2 - t0,
            total_ms: t2 - t0,
            checkpoint_ms: td - t0,
            transfer_ms: 0,
            restore_ms: t2 - t1,
            memory_bytes: bytes,
            transferred_bytes: 0,
            detail: { restored_pid: restoredPid, same_pid: restoredPid === root, reap_wait_ms: t1 - td },
          };
        },
        ctx.log,
      );
    } catch (e) {
      applyFailure(result, errMessage(e));
    } finally {
      // Only what this run started: the restored tree (same PID) or the original, by PID.
      await killTree(restoredPid);
      if (proc && alive(proc.pid)) {
        if (proc.reaper) {
          const r = await dumpRoot(proc).catch(() => 0);
          if (r) await killTree(r); // the reaper then finds no child left and exits
        }
        await killTree(proc.pid);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return result;
  },
};

export function tailLog(f: string): string {
  try {
    return fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => /Error|error/.test(l))
      .slice(-3)
      .join(' | ');
  } catch {
    return '';
  }
}

/** The CRIU images without the logs. */
function imageBytes(img: string): number {
  let logs = 0;
  for (const f of ['dump.log', 'restore.log']) {
    try {
      logs += fs.statSync(path.join(img, f)).size;
    } catch {
      /* none */
    }
  }
  return treeBytes(img) - logs;
}

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22); null when it is gone (or a zombie). */
export function procStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start after its closing parenthesis: state first.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z' || f[0] === 'X') return null;
    return f[19] ?? null;
  } catch {
    return null;
  }
}

/** The process that started at `start` is gone (its PID may be free, or reused by a restored one). */
export function originalGone(pid: number, start: string | null): boolean {
  const now = procStart(pid);
  return now === null || now !== start;
}
