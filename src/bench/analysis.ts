/**
 * Where Docker's checkpoint/restore time goes (docs/platform-facts.md: ~20x raw CRIU). On one workload
 * container on compute1, each step timed with the CPU time dockerd and containerd spent in it:
 *   A  `docker checkpoint create` (Docker API path), CRIU's own stats-dump read from the result
 *   B  `docker start --checkpoint` of it (restore through Docker)
 *   C  the same checkpoint under `strace -c -f` on containerd and dockerd (syscall profile)
 *   D  the same checkpoint under `perf record -g` on containerd and dockerd (top symbols)
 *   E  containerd's own checkpoint with an image path (`ctr tasks checkpoint --image-path`),
 *      which skips the content store, and its stats-dump
 *   F  `docker start --checkpoint` of E's images (restore path alone)
 *   G  the same restore under `perf record -g` on containerd and dockerd
 * Everything runs against compute1's engine and its own containerd socket; the container is
 * named bench-analysis-* and removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { benchAddress, type BenchCloud, dk, fillContainerRedis, removeContainer, runWorkloadContainer, sh, treeBytes, waitUntil } from './cloud.js';
import { readStatsDump, type DumpStats } from './criu-stats.js';
import { withRuncConfShared } from '../compute/docker/runcconf.js';
import { fmtBytes } from './stats.js';
import type { Workload } from './types.js';
import { sleep } from '../common/sleep.js';

const CLK_TCK = 100;

function readPid(file: string): number | null {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || null;
  } catch {
    return null;
  }
}

function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // utime + stime
  } catch {
    return 0;
  }
}

interface Step {
  step: string;
  what: string;
  wall_ms: number;
  dockerd_cpu_ms: number;
  containerd_cpu_ms: number;
  image_bytes: number | null;
  criu: DumpStats | null;
}

interface Procs {
  dockerd: number;
  containerd: number;
}

async function timed(procs: Procs, step: string, what: string, fn: () => Promise<void>): Promise<Step> {
  const d0 = cpuMs(procs.dockerd);
  const c0 = cpuMs(procs.containerd);
  const t0 = Date.now();
  await fn();
  const wall = Date.now() - t0;
  return {
    step,
    what,
    wall_ms: wall,
    dockerd_cpu_ms: cpuMs(procs.dockerd) - d0,
    containerd_cpu_ms: cpuMs(procs.containerd) - c0,
    image_bytes: null,
    criu: null,
  };
}

function startTool(cmd: string, args: string[]): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out += String(d)));
  child.stderr?.on('data', (d) => (out += String(d)));
  const done = new Promise<string>((r) => child.on('close', () => r(out)));
  return { child, done };
}

async function stopTool(t: { child: ChildProcess; done: Promise<string> }): Promise<string> {
  t.child.kill('SIGINT');
  const killer = setTimeout(() => t.child.kill('SIGKILL'), 30_000);
  const out = await t.done;
  clearTimeout(killer);
  return out;
}

/** The top lines of an `strace -c` summary (sorted by time). */
function straceTop(text: string, n = 8): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^% time/.test(l));
  if (start < 0) return [text.trim().split('\n').slice(-3).join(' ')];
  const body = lines.slice(start + 2).filter((l) => l.trim() && !/^-+/.test(l));
  const total = body.find((l) => /total$/.test(l.trim()));
  return [lines[start], ...body.filter((l) => !/total$/.test(l.trim())).slice(0, n), ...(total ? [total] : [])];
}

async function perfTop(file: string, n = 15): Promise<string[]> {
  const r = await sh('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'comm,sym', '--percent-limit', '1'], {
    allowFail: true,
    timeoutMs: 300_000,
  });
  return r.stdout
    .split('\n')
    .filter((l) => /^\s+\d+\.\d+%/.test(l))
    .slice(0, n)
    .map((l) => l.trim());
}

async function waitExited(cloud: BenchCloud, name: string): Promise<void> {
  await waitUntil(`${name} to exit`, async () => (await dk(cloud.source, ['inspect', '-f', '{{.State.Running}}', name])).stdout === 'false', 30_000, 20);
}

export async function analyzeDockerPath(cloud: BenchCloud, w: Workload, log: (s: string) => void): Promise<{ markdown: string; data: unknown }> {
  const h = cloud.source;
  const dockerd = readPid(path.join(cloud.status.state_dir, 'run', `dockerd-${h.name}.pid`));
  if (!dockerd) throw new Error(`no dockerd pid for ${h.name}`);
  const kids = fs.readFileSync(`/proc/${dockerd}/task/${dockerd}/children`, 'utf8').trim().split(/\s+/);
  const containerd = Number(kids.find((k) => k && fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'containerd'));
  if (!containerd) throw new Error(`no containerd under dockerd ${dockerd}`);
  const procs = { dockerd, containerd };
  const ctrSock = path.join(h.exec_root, 'containerd', 'containerd.sock');
  const name = `bench-analysis-${w.name}-${process.pid.toString(36)}`;
  const addr = benchAddress(19);
  const work = path.join(cloud.workDir, `analysis-${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const steps: Step[] = [];
  let strace: string[] = [];
  let perfCkpt: string[] = [];
  let perfRestore: string[] = [];
  const hasPerf = (await sh('perf', ['--version'], { allowFail: true })).code === 0;
  const hasStrace = (await sh('strace', ['-V'], { allowFail: true })).code === 0;
  try {
    const id = await runWorkloadContainer(cloud, h, w, name, addr);
    if (w.probe === 'redis') await fillContainerRedis(h, name, w.keys);
    const ckptDir = (ck: string) => path.join(h.data_root, 'containers', id, 'checkpoints', ck);
    const checkpoint = async (ck: string) => {
      await withRuncConfShared(() => dk(h, ['checkpoint', 'create', name, ck], { timeoutMs: 600_000 }));
    };
    const restore = async (ck: string) => {
      await withRuncConfShared(() => dk(h, ['start', '--checkpoint', ck, name], { timeoutMs: 600_000 }));
    };

    log('  A: docker checkpoint create');
    const a = await timed(procs, 'A', '`docker checkpoint create` (Docker API → containerd → runc → CRIU, images back through the content store)', () =>
      checkpoint('ana-a'),
    );
    a.image_bytes = treeBytes(ckptDir('ana-a'));
    a.criu = readStatsDump(ckptDir('ana-a'));
    steps.push(a);
    log('  B: docker start --checkpoint');
    steps.push(await timed(procs, 'B', '`docker start --checkpoint` of A (restore through Docker)', () => restore('ana-a')));

    if (hasStrace) {
      log('  C: checkpoint under strace -c');
      const st = startTool('strace', ['-c', '-f', '-p', String(containerd), '-p', String(dockerd)]);
      await sleep(500);
      const c = await timed(procs, 'C', '`docker checkpoint create` under `strace -c -f` on containerd + dockerd (slower: traced)', () => checkpoint('ana-c'));
      strace = straceTop(await stopTool(st));
      steps.push(c);
      await restore('ana-c');
    }
    if (hasPerf) {
      log('  D: checkpoint under perf record');
      const file = path.join(work, 'ckpt.perf');
      const pr = startTool('perf', ['record', '-F', '499', '-g', '-o', file, '-p', `${containerd},${dockerd}`]);
      await sleep(500);
      steps.push(await timed(procs, 'D', '`docker checkpoint create` under `perf record -g` on containerd + dockerd', () => checkpoint('ana-d')));
      await stopTool(pr);
      perfCkpt = await perfTop(file);
      const file2 = path.join(work, 'restore.perf');
      log('  G: restore under perf record');
      const pr2 = startTool('perf', ['record', '-F', '499', '-g', '-o', file2, '-p', `${containerd},${dockerd}`]);
      await sleep(500);
      steps.push(await timed(procs, 'G', '`docker start --checkpoint` under `perf record -g` on containerd + dockerd', () => restore('ana-d')));
      await stopTool(pr2);
      perfRestore = await perfTop(file2);
    }

    log('  E: ctr tasks checkpoint --image-path');
    const img = ckptDir('ana-e');
    const ctrWork = path.join(work, 'ctr-work');
    fs.mkdirSync(img, { recursive: true });
    fs.mkdirSync(ctrWork, { recursive: true });
    const e = await timed(procs, 'E', "`ctr tasks checkpoint --exit --image-path` on Docker's containerd (skips the content store)", async () => {
      await withRuncConfShared(() =>
        sh('ctr', ['-a', ctrSock, '-n', 'moby', 'tasks', 'checkpoint', '--exit', '--image-path', img, '--work-path', ctrWork, id], { timeoutMs: 600_000 }),
      );
      await waitExited(cloud, name);
    });
    e.image_bytes = treeBytes(img);
    e.criu = readStatsDump(ctrWork) ?? readStatsDump(img); // CRIU writes stats-dump into its work dir
    steps.push(e);
    log('  F: docker start --checkpoint of the ctr images');
    steps.push(await timed(procs, 'F', "`docker start --checkpoint` of E's images (restore alone)", () => restore('ana-e')));
  } finally {
    await removeContainer(h, name);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const data = { workload: w.name, steps, strace, perf_checkpoint: perfCkpt, perf_restore: perfRestore };
  return { markdown: analysisMarkdown(w, data), data };
}

function s(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`;
}

function analysisMarkdown(w: Workload, d: { steps: Step[]; strace: string[]; perf_checkpoint: string[]; perf_restore: string[] }): string {
  const md: string[] = [];
  md.push(`## Where Docker's checkpoint time goes (measured on ${w.label})`);
  md.push('');
  md.push('| step | what | wall | dockerd CPU | containerd CPU | image | CRIU frozen (stats-dump) | CRIU memdump+memwrite |');
  md.push('|---|---|---|---|---|---|---|---|');
  for (const x of d.steps) {
    const mem = x.criu && x.criu.memdump_us !== null && x.criu.memwrite_us !== null ? s((x.criu.memdump_us + x.criu.memwrite_us) / 1000) : '–';
    md.push(
      `| ${x.step} | ${x.what} | ${s(x.wall_ms)} | ${s(x.dockerd_cpu_ms)} | ${s(x.containerd_cpu_ms)} | ${x.image_bytes ? fmtBytes(x.image_bytes) : '–'} | ${x.criu?.frozen_us ? s(x.criu.frozen_us / 1000) : '–'} | ${mem} |`,
    );
  }
  md.push('');
  md.push("CRIU writes its own timings (stats-dump) into its work directory: only the ctr path (E) leaves that directory to us; Docker's path (A) removes it.");
  md.push('');
  if (d.strace.length) {
    md.push('`strace -c -f` on containerd + dockerd during step C (top by time):');
    md.push('');
    md.push('```');
    md.push(...d.strace);
    md.push('```');
    md.push('');
  }
  if (d.perf_checkpoint.length) {
    md.push('`perf record -g` on containerd + dockerd during a checkpoint (step D), self time by process and symbol:');
    md.push('');
    md.push('```');
    md.push(...d.perf_checkpoint);
    md.push('```');
    md.push('');
  }
  if (d.perf_restore.length) {
    md.push('… and during a restore (step G):');
    md.push('');
    md.push('```');
    md.push(...d.perf_restore);
    md.push('```');
    md.push('');
  }
  return md.join('\n');
}
