/**
 * Method: raw CRIU post-copy on one host — the floor for lazy pages. A host redis-server in its own
 * PID and network namespaces (`unshare --pid --net --fork`, loopback up): the dump takes the
 * namespaces with it, so the restore makes new ones and neither the PID nor the port clash with
 * the original, which stays frozen behind its page server until every page was fetched.
 *   criu dump --lazy-pages --address 127.0.0.1 --port P   (images without memory; then serves pages)
 *   criu lazy-pages --page-server --address 127.0.0.1 --port P -W LPW
 *   criu restore --lazy-pages -W LPW -d                    (returns once the tree runs)
 * The page server and the daemon talk over the root namespace's 127.0.0.1. No probe can follow the
 * process into its new namespace, so the downtime is measured by asking the process itself
 * (`nsenter -n redis-cli GET key:1`): the last answer before the dump, the first after the restore.
 * Redis workloads only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../../common/sleep.js';
import { sh, treeBytes, waitUntil } from '../cloud.js';
import type { RunResult, Workload } from '../types.js';
import { applyFailure, applyVerdict, emptyEvidence } from '../verdict.js';
import { emptyResult, errMessage, stateAfterMove, stateBeforeFreeze, type Method, type RunContext, type StateAccess } from './common.js';
import { alive, killTree, originalGone, procStart, tailLog } from './raw-criu.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const PAGE_PORT = 16540; // 127.0.0.1 of the root namespace, slot-dependent

/** redis-cli inside the namespaces of `pid` (its own network namespace's 127.0.0.1:6379). */
function askIn(pid: number, args: string[], timeoutMs = 300_000) {
  return sh('nsenter', ['-t', String(pid), '-n', REDIS_CLI, '-h', '127.0.0.1', '-p', '6379', ...args], { allowFail: true, timeoutMs });
}

async function listening(port: number): Promise<boolean> {
  return (await sh('ss', ['-Hltn', `sport = :${port}`], { allowFail: true })).stdout.trim() !== '';
}

function childOf(pid: number): number {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export const rawCriuLazy: Method = {
  name: 'raw-criu-lazy',
  label: 'raw CRIU post-copy (lazy pages), same host (floor)',
  supports: (w: Workload) => w.probe === 'redis',
  async run(w: Workload, ctx: RunContext): Promise<RunResult> {
    const { cloud } = ctx;
    const result = emptyResult('raw-criu-lazy', w, ctx.run);
    // No probe can follow the process into its new namespaces: the downtime is asked of it directly.
    result.probed = false;
    result.detail.downtime_measured_by = 'nsenter redis-cli GET (no probe)';
    const criu = cloud.status.criu.binary;
    const port = PAGE_PORT + (ctx.slot % 20);
    const dir = path.join(cloud.workDir, `criu-lazy-${w.name}-${process.pid}-${ctx.slot}`);
    const img = path.join(dir, 'img');
    const lpw = path.join(dir, 'lpw');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(img, { recursive: true });
    fs.mkdirSync(lpw, { recursive: true });
    let unshare: ChildProcess | null = null;
    let dump: ChildProcess | null = null;
    let daemon: ChildProcess | null = null;
    let restored = 0;
    let original = 0;
    try {
      // setsid: the dumped tree's session leader must be inside its PID namespace; no --kill-child:
      // its death signal would be restored too and end the restored process when CRIU exits.
      const script = `ip link set lo up && exec setsid ${REDIS_SERVER} --port 6379 --bind 127.0.0.1 --save '' --appendonly no --enable-debug-command local --dir ${dir} --daemonize no`;
      unshare = spawn('unshare', ['--pid', '--net', '--fork', 'sh', '-c', script], { detached: true, stdio: 'ignore' });
      const u = unshare.pid as number;
      await waitUntil(
        'redis-server in its namespaces',
        async () => {
          original = childOf(u);
          return original > 0 && (await askIn(original, ['PING'])).stdout === 'PONG';
        },
        15_000,
        50,
      );
      await askIn(original, ['DEBUG', 'POPULATE', String(w.keys)]);
      const n = (await askIn(original, ['DBSIZE'])).stdout;
      if (n !== String(w.keys)) throw new Error(`redis-server holds ${n} keys, not ${w.keys}`);
      result.detail.host_pid = original;
      const start = procStart(original);
      const ev = emptyEvidence();
      const access: StateAccess = {
        redisBefore: async (args) => (await askIn(original, args)).stdout.trim(),
        redisAfter: async (args) => (await askIn(restored, args)).stdout.trim(),
        counterBefore: () => Promise.reject(new Error('Redis workloads only')),
        counterAfter: () => Promise.reject(new Error('Redis workloads only')),
        // The original stays frozen behind its page server until the last page left; then the dump ends it.
        sourceGone: async () => originalGone(original, start),
      };
      await stateBeforeFreeze(w, access, ev);

      const before = await askIn(original, ['GET', 'key:1'], 5000);
      const lastBefore = Date.now();
      if (before.stdout !== 'value:1') throw new Error(`no answer before the dump: ${before.stdout} ${before.stderr}`);
      const t0 = Date.now();
      dump = spawn(
        criu,
        [
          'dump',
          '-t',
          String(original),
          '-D',
          img,
          '--lazy-pages',
          '--address',
          '127.0.0.1',
          '--port',
          String(port),
          '--tcp-established',
          '-o',
          'dump.log',
          '-v2',
        ],
        { stdio: 'ignore' },
      );
      const dumpExit = exitOf(dump);
      let dumpCode: number | null = null;
      void dumpExit.then((c) => (dumpCode = c));
      await waitUntil(
        'the page server',
        async () => {
          if (dumpCode !== null) throw new Error(`criu dump exited ${dumpCode}: ${tailLog(path.join(img, 'dump.log'))}`);
          return fs.existsSync(path.join(img, 'inventory.img')) && (await listening(port));
        },
        60_000,
        5,
      );
      const t1 = Date.now();
      daemon = spawn(
        criu,
        ['lazy-pages', '--page-server', '--address', '127.0.0.1', '--port', String(port), '-D', img, '-W', lpw, '-o', 'lazy-pages.log', '-v2'],
        { stdio: 'ignore' },
      );
      const daemonExit = exitOf(daemon);
      await waitUntil('the lazy-pages socket', async () => fs.existsSync(path.join(lpw, 'lazy-pages.socket')), 30_000, 2);
      const t2 = Date.now();
      const pidfile = path.join(dir, 'restored.pid');
      const r = await sh(criu, ['restore', '-D', img, '-W', lpw, '--lazy-pages', '--tcp-established', '-d', '--pidfile', pidfile, '-o', 'restore.log', '-v2'], {
        allowFail: true,
      });
      if (r.code !== 0)
        throw new Error(`criu restore --lazy-pages failed: ${r.stderr} ${tailLog(path.join(lpw, 'restore.log'))} ${tailLog(path.join(img, 'restore.log'))}`);
      const t3 = Date.now();
      restored = Number(fs.readFileSync(pidfile, 'utf8').trim());
      let firstAfter = 0;
      for (let i = 0; i < 2000 && !firstAfter; i++) {
        if ((await askIn(restored, ['GET', 'key:1'], 2000)).stdout === 'value:1') firstAfter = Date.now();
      }
      if (!firstAfter) throw new Error('the restored redis-server did not answer');
      const dcode = await daemonExit;
      const t4 = Date.now();
      if (dcode !== 0) throw new Error(`criu lazy-pages exited ${dcode}: ${tailLog(path.join(lpw, 'lazy-pages.log'))}`);
      const code = await Promise.race([dumpExit, sleep(30_000).then(() => -1)]);
      if (code !== 0) throw new Error(`criu dump (page server) ended with ${code}: ${tailLog(path.join(img, 'dump.log'))}`);
      const images = treeBytes(img);
      Object.assign(result, {
        downtime_ms: firstAfter - lastBefore,
        tool_freeze_ms: t3 - t0,
        total_ms: t4 - t0,
        checkpoint_ms: t1 - t0,
        transfer_ms: 0,
        restore_ms: t3 - t2,
        memory_bytes: null,
        transferred_bytes: 0,
      });
      result.detail = {
        ...result.detail,
        lazy_images_bytes: images,
        daemon_ms: t2 - t1,
        first_answer_after_restore_ms: firstAfter - t3,
        all_pages_after_restore_ms: t4 - t3,
      };
      result.probe = { answers: 2, failures: 0, answers_after: 1 };
      await stateAfterMove(w, access, ev, t0);
      applyVerdict(result, w, ev);
    } catch (e) {
      applyFailure(result, errMessage(e));
    } finally {
      // Only what this run started, by PID: the daemon, the dump (page server), the restored tree, the original's namespace.
      for (const c of [daemon, dump]) if (c && c.exitCode === null && c.pid) c.kill('SIGKILL');
      await killTree(restored || null);
      if (original && alive(original)) await killTree(original);
      if (unshare?.pid && alive(unshare.pid)) await killTree(unshare.pid);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return result;
  },
};
