/**
 * Post-copy (lazy pages) through Docker: the source's lazy dump and page server, the target's
 * lazy-pages daemon and lazy restore (docs/platform-facts.md, "Post-copy through Docker").
 *
 * Source: containerd's checkpoint with an image path (as the fast checkpoint), with runc.conf
 * holding `lazy-pages`, `address`, `port` for the moment CRIU starts: CRIU writes every image but
 * the memory pages (about 1.3 MB for any Redis), then becomes a page server and waits; the `ctr`
 * call returns only when the target has fetched every page (then CRIU ends the source's tasks).
 * The step is done when `inventory.img` exists and the page server listens, not when `ctr` returns.
 *
 * Target: `criu lazy-pages --page-server --address SRC --port P -D <images> -W <work dir>` opens
 * `<work dir>/lazy-pages.socket`; `docker start --checkpoint` with runc.conf holding `lazy-pages`
 * and `work-dir <work dir>` makes the restore hand its userfaultfds to that daemon, which fetches
 * faulted pages first and all the others in the background, then exits 0.
 *
 * Pages never travel in clear nor to whoever connects first (pagetunnel.ts): CRIU's page server
 * listens on loopback only (the engine's namespace's, when it has its own: the dev cloud), this
 * process connects to it at once and offers a mutual-TLS listener that serves only the expected
 * target with the migration's token; on the target, the lazy-pages daemon connects to a loopback
 * listener of this process that admits only the daemon's own connection and carries it over TLS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { PageTunnelClient, PageTunnelServer, type PageTunnelSecurity, type TunnelEnd } from '../pagetunnel.js';
import { CheckpointFailed, PostCopyFailed, RestoreFailed } from '../../common/errors.js';
import { sigkill } from '../criuproc.js';
import type { LazyRestoreRequest } from '../driver.js';
import { checkpointDir, startFromCheckpoint } from './checkpoint.js';
import { run } from './exec.js';
import { withLazyRuncConf } from './runcconf.js';
import { treeBytes } from './tree.js';
import { containerRunning, waitStopped } from './stopped.js';
import { sleep } from '../../common/sleep.js';

/** CRIU's page server asks for a ~3.3 MB pipe; above fs.pipe-max-size it stays 64 KiB and fails. */
export const PIPE_MAX_SIZE_NEEDED = 4 * 1024 * 1024;
const PIPE_MAX_SIZE = '/proc/sys/fs/pipe-max-size';

/**
 * Raise fs.pipe-max-size to what CRIU's page server needs, when it is lower. Hosts whose root has
 * CAP_SYS_RESOURCE do not need it (the kernel lets them exceed the limit); root without it (the
 * containers Ferry is developed in) does. Returns the value in force, or an error text.
 */
export function ensurePipeMaxSize(file = PIPE_MAX_SIZE): { ok: boolean; value: number | null; error: string | null } {
  let value: number | null = null;
  try {
    value = Number(fs.readFileSync(file, 'utf8').trim());
    if (value >= PIPE_MAX_SIZE_NEEDED) return { ok: true, value, error: null };
    fs.writeFileSync(file, `${PIPE_MAX_SIZE_NEEDED}\n`);
    return { ok: true, value: PIPE_MAX_SIZE_NEEDED, error: null };
  } catch (e) {
    return {
      ok: false,
      value,
      error: `fs.pipe-max-size is ${value ?? 'unreadable'} and could not be raised to ${PIPE_MAX_SIZE_NEEDED} (${(e as Error).message}): CRIU's page server needs it unless root has CAP_SYS_RESOURCE`,
    };
  }
}

export interface FeatureCheck {
  ok: boolean;
  reason: string | null;
}

/** `criu check --feature NAME`: exit 0 = the kernel and CRIU support it. */
export async function criuFeature(criu: string, feature: string): Promise<FeatureCheck> {
  try {
    const r = await run(criu, ['check', '--feature', feature], { timeoutMs: 30_000 });
    if (r.code === 0) return { ok: true, reason: null };
    const out = (r.stdout + r.stderr).trim().split('\n').slice(-2).join(' | ');
    return { ok: false, reason: `\`criu check --feature ${feature}\` failed: ${out || `exit ${r.code}`}` };
  } catch (e) {
    return { ok: false, reason: `cannot run ${criu}: ${(e as Error).message}` };
  }
}

/** Which memory-moving modes a host supports, and why not. */
export interface MigrationModes {
  post_copy: FeatureCheck;
  pre_copy: FeatureCheck;
}

/** The decision from the checks' outcomes (unit-tested apart from running CRIU). */
export function judgeModes(input: {
  criuOk: boolean;
  criuError: string | null;
  uffd: FeatureCheck;
  dirtyTrack: FeatureCheck;
  pipe: { ok: boolean; error: string | null };
}): MigrationModes {
  if (!input.criuOk) {
    const reason = input.criuError ?? 'CRIU is not usable';
    return { post_copy: { ok: false, reason }, pre_copy: { ok: false, reason } };
  }
  const post = !input.uffd.ok
    ? { ok: false, reason: `no non-cooperative userfaultfd (${input.uffd.reason}): the kernel cannot serve a restored process's page faults` }
    : !input.pipe.ok
      ? { ok: false, reason: input.pipe.error }
      : { ok: true, reason: null };
  const pre = input.dirtyTrack.ok
    ? { ok: true, reason: null }
    : { ok: false, reason: `no memory dirty tracking (${input.dirtyTrack.reason}; the kernel lacks CONFIG_MEM_SOFT_DIRTY): iterative pre-copy is impossible` };
  return { post_copy: post, pre_copy: pre };
}

/**
 * The process serving TCP `port` (listening, or already serving the carrier: CRIU's page server
 * stops listening once it accepted its one connection), from `ss -Htanp`, in the engine's network
 * namespace when it has its own.
 */
async function pageServerProcess(port: number, netns: string | null): Promise<{ pid: number | null } | null> {
  const ss = ['ss', '-Htanp', `sport = :${port}`];
  const r = netns ? await run('nsenter', [`--net=${netns}`, ...ss], { timeoutMs: 5000 }) : await run(ss[0], ss.slice(1), { timeoutMs: 5000 });
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  if (r.code !== 0 || lines.length === 0) return null;
  const owned = lines.map((l) => /pid=(\d+)/.exec(l)?.[1]).find((p) => p);
  return { pid: owned ? Number(owned) : null };
}

/** A free TCP port on `bindAddress` in this process's namespace (0 = let the kernel pick). */
export async function freePort(bindAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, bindAddress, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The page carrier's script: beside this module when built, in dist/ when this runs from the sources (tests). */
function carrierScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const built = path.join(here, 'pagecarrier.js');
  return fs.existsSync(built) ? built : path.resolve(here, '../../../dist/compute/docker/pagecarrier.js');
}

/**
 * Connect to CRIU's page server (on the engine namespace's loopback) through a page carrier
 * process (pagecarrier.ts: it SIGKILLs CRIU rather than pass on an end of stream if this agent
 * dies). Started before CRIU listens, it connects the moment CRIU does (CRIU serves the first
 * connection only); CRIU's PID goes to `pidFile` once known. The carrier's PID comes back with
 * the stream so that a restarted agent can find it.
 */
function connectPageServer(port: number, netns: string | null, pidFile: string): { stream: Duplex; carrierPid: number | null } {
  const args = [carrierScript(), String(port), pidFile];
  const child = netns
    ? spawn('nsenter', [`--net=${netns}`, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'ignore'] })
    : spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const d = Duplex.from({ readable: child.stdout, writable: child.stdin });
  child.stdin.on('error', () => undefined);
  child.on('close', () => d.destroy());
  const origDestroy = d.destroy.bind(d);
  d.destroy = (e?: Error) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return origDestroy(e);
  };
  return { stream: d, carrierPid: child.pid ?? null };
}

/** `peer-lost`: the target went away mid-stream; CRIU still holds the source frozen and whole. */
export type PageServerState = 'serving' | 'done' | 'failed' | 'peer-lost';

/** The source side of one post-copy, kept in memory by the driver while pages are served. */
export interface PageServerHandle {
  name: string;
  containerId: string;
  dir: string;
  bytes: number;
  /** From the checkpoint call until the images were written and the page server listened. */
  checkpoint_ms: number;
  address: string;
  port: number;
  /** CRIU's page-server process (in the engine's namespace), when `ss` named it. */
  pid: number | null;
  /** The page carrier's process (pagecarrier.ts). */
  carrierPid: number | null;
  /** The TLS listener the target's tunnel connects to. */
  tunnel: PageTunnelServer;
  state: PageServerState;
  error: string | null;
  /** Resolves when every page was fetched and the source's tasks ended; rejects with PostCopyFailed. */
  served: Promise<void>;
  /** End the page server now (by its PID) and the tunnel; the dump then fails. */
  abort(): Promise<void>;
}

export interface LazyCheckpointOptions {
  docker: Docker;
  containerdAddress: string;
  dockerRoot: string;
  workDir: string;
  containerId: string; // full ID
  name: string;
  /** The port the target connects to (0 = a free one here). */
  port: number;
  /** The tunnel's certificates and token: pages go only to the target that shows both. */
  tunnel: PageTunnelSecurity;
  /** Where the target connects: this host's migration address (default 0.0.0.0 = all). */
  bindAddress: string;
  /** The engine's network namespace (a /run/netns path) when it is not this process's; null = this one. */
  engineNetns: string | null;
  /** How long the dump may take until the page server listens. */
  readyTimeoutMs?: number;
}

function criuErrors(file: string, n = 5): string {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /Error|error/.test(l))
      .slice(-n)
      .map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, '').trim())
      .join(' | ');
  } catch {
    return '';
  }
}

/** Lazy dump through containerd; resolves once the images are written and the page server waits. */
export async function lazyCheckpoint(o: LazyCheckpointOptions): Promise<PageServerHandle> {
  const dir = checkpointDir(o.dockerRoot, o.containerId, o.name);
  const work = path.join(o.workDir, 'criu-work', `${o.containerId.slice(0, 12)}-${o.name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  // CRIU listens on loopback only (the engine's namespace's); the tunnel faces the network.
  const port = await freePort('127.0.0.1');
  const serverAddress = '127.0.0.1';
  const t0 = Date.now();
  let ctr: ChildProcess | null = null;
  let ctrOut = '';
  let ctrExit: Promise<number> = Promise.resolve(1);
  let pid: number | null = null;
  // The carrier first: it connects the moment CRIU listens, before any other local process can.
  const pidFile = path.join(work, 'page-server.pid');
  const carrier = connectPageServer(port, o.engineNetns, pidFile);
  const upstream: Duplex = carrier.stream;
  const carrierPid = carrier.carrierPid;
  await withLazyRuncConf(['lazy-pages', `address ${serverAddress}`, `port ${port}`], async (configRead) => {
    const child = spawn(
      'ctr',
      ['-a', o.containerdAddress, '-n', 'moby', 'tasks', 'checkpoint', '--exit', '--image-path', dir, '--work-path', work, o.containerId],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    ctr = child;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (ctrOut = (ctrOut + d).slice(-4000)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (ctrOut = (ctrOut + d).slice(-4000)));
    ctrExit = new Promise((resolve) => {
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      child.on('error', () => resolve(127));
    });
    let exited: number | null = null;
    void ctrExit.then((c) => (exited = c));
    const deadline = Date.now() + (o.readyTimeoutMs ?? 120_000);
    for (;;) {
      if (exited !== null) {
        throw new CheckpointFailed(
          `lazy checkpoint of ${o.containerId.slice(0, 12)} ended (exit ${exited}) before its page server listened: ${ctrOut.trim().slice(-500)} ${criuErrors(path.join(work, 'dump.log'))}`.trim(),
          { container: o.containerId },
        );
      }
      if (fs.existsSync(path.join(dir, 'inventory.img'))) {
        // Its PID is needed: the carrier and a restarted agent end it by PID rather than let an end of stream reach it.
        const l = await pageServerProcess(port, o.engineNetns);
        if (l?.pid) {
          pid = l.pid;
          fs.writeFileSync(pidFile, String(l.pid));
          break;
        }
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new CheckpointFailed(`lazy checkpoint of ${o.containerId.slice(0, 12)}: no page server on port ${port} after ${o.readyTimeoutMs ?? 120_000} ms`, {
          container: o.containerId,
        });
      }
      await sleep(15);
    }
    configRead();
  }).catch((e: unknown) => {
    upstream.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const checkpointMs = Date.now() - t0;
  const killPageServer = () => {
    if (pid) sigkill(pid);
  };
  const criuConnection = upstream;
  const tunnel = new PageTunnelServer({
    tls: o.tunnel.tls,
    token: o.tunnel.token,
    peerHost: o.tunnel.peerHost,
    bindAddress: o.bindAddress,
    port: o.port,
    upstream: criuConnection,
  });
  try {
    await tunnel.listen();
  } catch (e) {
    // SIGKILL leaves the source frozen and whole (an end of stream would make CRIU end its tasks).
    killPageServer();
    throw new CheckpointFailed(`cannot offer the page tunnel on ${o.bindAddress}:${o.port}: ${(e as Error).message}`, { container: o.containerId });
  }
  const peerLost: Promise<TunnelEnd> = tunnel.ended;
  const handle: PageServerHandle = {
    name: o.name,
    containerId: o.containerId,
    dir,
    bytes: treeBytes(dir),
    checkpoint_ms: checkpointMs,
    address: o.bindAddress,
    port: tunnel.port,
    pid,
    carrierPid,
    tunnel,
    state: 'serving',
    error: null,
    served: Promise.resolve(),
    async abort() {
      // CRIU first, by its PID, so that the tunnel's closing is no end of stream it would act on.
      if (handle.pid && (handle.state === 'serving' || handle.state === 'peer-lost')) sigkill(handle.pid);
      tunnel.stop();
      // CRIU is gone: the connection to it (the page carrier in the engine's namespace) goes too, even when
      // it is stuck writing pages nobody reads any more.
      criuConnection.destroy();
      await handle.served.catch(() => undefined);
      // After a peer-lost, ctr returns only now that CRIU is gone.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ctrExit, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
      clearTimeout(timer);
      fs.rmSync(work, { recursive: true, force: true });
    },
  };
  handle.served = (async () => {
    const first = await Promise.race([ctrExit.then((c) => ({ ctr: c })), peerLost.then((how) => ({ tunnel: how }))]);
    if ('tunnel' in first && first.tunnel !== 'closed') {
      if (first.tunnel === 'peer-lost') {
        handle.state = 'peer-lost';
        handle.error = `the target of ${o.containerId.slice(0, 12)}'s post-copy went away before it had every page; the source is still frozen and whole (peer-lost)`;
        throw new PostCopyFailed(handle.error, { container: o.containerId, reason: 'peer-lost' });
      }
    }
    const code = await ctrExit;
    tunnel.stop();
    // CRIU ended (every page served, or it failed): its connection ends by itself once the
    // carrier passed on the last bytes; if it is still there 10 s on, it is stuck: end it.
    const stuck = setTimeout(() => criuConnection.destroy(), 10_000);
    criuConnection.once('close', () => clearTimeout(stuck));
    if (code !== 0) {
      handle.state = 'failed';
      handle.error =
        `page server of ${o.containerId.slice(0, 12)} ended before every page was fetched (ctr exit ${code}): ${ctrOut.trim().slice(-500)} ${criuErrors(path.join(work, 'dump.log'))}`.trim();
      fs.rmSync(work, { recursive: true, force: true }); // its reasons are in the message
      throw new PostCopyFailed(handle.error, { container: o.containerId });
    }
    // Docker learns of the exit from containerd's event.
    await waitStopped(containerRunning(o.docker.getContainer(o.containerId)), { timeoutMs: 10_000, intervalMs: 20 });
    handle.state = 'done';
    fs.rmSync(work, { recursive: true, force: true });
  })();
  handle.served.catch(() => undefined); // observed through the handle
  void ctr;
  return handle;
}

export type PostCopyState = 'fetching' | 'complete' | 'failed';

/** The target side of one post-copy: the restored container and the daemon that fills its memory. */
export interface LazyRestoreHandle {
  name: string;
  containerId: string;
  pid: number;
  /** From `docker start --checkpoint` until it returned with the container running. */
  restore_ms: number;
  /** From spawning the lazy-pages daemon until its socket was there. */
  daemon_ms: number;
  /** The lazy-pages daemon's PID. */
  daemon_pid: number | null;
  tunnel: PageTunnelClient;
  state: PostCopyState;
  error: string | null;
  /** Epoch ms when the last page arrived (the daemon exited 0). */
  completed_at: number | null;
  /** Resolves when every page arrived; rejects with PostCopyFailed (the container is stopped then). */
  allPages: Promise<void>;
  /** Stop fetching: the daemon is ended and the container killed (its memory is incomplete). */
  abort(): Promise<void>;
}

/** The request's page server and bounds, and where the restore happens here. */
export interface LazyRestoreOptions extends LazyRestoreRequest {
  docker: Docker;
  dockerRoot: string;
  workDir: string;
  criuBinary: string;
  containerId: string; // full ID; the images already placed under its checkpoints/<name>
  name: string;
}

/** PIDs of processes (other than this one) with a file or working directory under one of `dirs`. */
export function processesUsing(dirs: string[]): number[] {
  const under = (p: string) => dirs.some((d) => p === d || p.startsWith(`${d}/`));
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (under(fs.readlinkSync(`/proc/${entry}/cwd`))) {
        found.push(Number(entry));
        continue;
      }
    } catch {
      continue;
    }
    try {
      for (const fd of fs.readdirSync(`/proc/${entry}/fd`)) {
        try {
          if (under(fs.readlinkSync(`/proc/${entry}/fd/${fd}`))) {
            found.push(Number(entry));
            break;
          }
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* gone or not ours to read */
    }
  }
  return found;
}

/**
 * Detach what a killed CRIU left mounted under `dir` (its cgroup yard, `.criu.cgyard.*`), so that
 * the directory can be removed. Returns the mount points detached.
 */
export async function unmountUnder(dir: string): Promise<string[]> {
  let info = '';
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp && mp.startsWith(`${dir}/`));
  // The outermost ones: a lazy unmount takes what is mounted below with it.
  const outer = points.filter((mp) => !points.some((o) => o !== mp && mp.startsWith(`${o}/`)));
  for (const mp of outer) await run('umount', ['-l', mp], { timeoutMs: 10_000 });
  return outer;
}

/** SIGKILL, by PID, every process that holds a post-copy's lazy-pages work dir or images (a hung restore). */
export function killProcessesUsing(dirs: string[]): number[] {
  const pids = processesUsing(dirs);
  for (const pid of pids) sigkill(pid);
  return pids;
}

/** Start the lazy-pages daemon, then the container from its checkpoint; resolves when the process runs. */
export async function lazyRestore(o: LazyRestoreOptions): Promise<LazyRestoreHandle> {
  const images = checkpointDir(o.dockerRoot, o.containerId, o.name);
  if (!fs.existsSync(path.join(images, 'inventory.img')))
    throw new RestoreFailed(`no checkpoint ${o.name} placed for ${o.containerId.slice(0, 12)}`, { container: o.containerId });
  const lpw = path.join(o.workDir, 'lazy-pages', `${o.containerId.slice(0, 12)}-${o.name}`);
  fs.rmSync(lpw, { recursive: true, force: true });
  fs.mkdirSync(lpw, { recursive: true });
  const t0 = Date.now();
  // The daemon fetches from a loopback listener of this process that carries its connection (and only its) over TLS.
  const tunnel = new PageTunnelClient({
    tls: o.tunnel.tls,
    token: o.tunnel.token,
    sourceHost: o.tunnel.peerHost ?? o.sourceAddress,
    sourceAddress: o.sourceAddress,
    sourcePort: o.port,
  });
  await tunnel.listen();
  const daemon = spawn(
    o.criuBinary,
    ['lazy-pages', '--page-server', '--address', '127.0.0.1', '--port', String(tunnel.port), '-D', images, '-W', lpw, '-o', 'lazy-pages.log', '-v2'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  tunnel.ownerPid = daemon.pid ?? null;
  let daemonErr = '';
  daemon.stderr.setEncoding('utf8').on('data', (d: string) => (daemonErr = (daemonErr + d).slice(-2000)));
  let exit: { code: number | null; signal: string | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    daemon.on('close', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
    daemon.on('error', (e) => {
      daemonErr += e.message;
      exit = { code: 127, signal: null };
      resolve(exit);
    });
  });
  const why = (): string => `${daemonErr.trim()} ${criuErrors(path.join(lpw, 'lazy-pages.log'))}`.trim();
  const socket = path.join(lpw, 'lazy-pages.socket');
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(socket)) {
    if (exit) {
      tunnel.stop();
      throw new RestoreFailed(`the lazy-pages daemon for ${o.containerId.slice(0, 12)} exited (${JSON.stringify(exit)}) before it listened: ${why()}`, {
        container: o.containerId,
      });
    }
    if (Date.now() > deadline) {
      daemon.kill('SIGKILL');
      tunnel.stop();
      throw new RestoreFailed(`the lazy-pages daemon for ${o.containerId.slice(0, 12)} did not open ${socket} within 30 s`, { container: o.containerId });
    }
    await sleep(10);
  }
  const daemonMs = Date.now() - t0;
  const t1 = Date.now();
  const restoreLimit = o.restoreTimeoutMs ?? 45_000;
  let timedOut = false;
  try {
    await withLazyRuncConf(['lazy-pages', `work-dir ${lpw}`], async () => {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // A restore waiting for pages that never come: end it here, so its locks and the shell are released.
          timedOut = true;
          daemon.kill('SIGKILL');
          const killed = killProcessesUsing([lpw, images]);
          reject(
            new RestoreFailed(
              `the lazy restore of ${o.containerId.slice(0, 12)} did not finish within ${restoreLimit} ms: the lazy-pages daemon and CRIU's restore (pids ${killed.join(',') || 'none left'}) were ended`,
              { container: o.containerId },
            ),
          );
        }, restoreLimit);
      });
      const start = startFromCheckpoint(o.docker, o.containerId, o.name);
      start.catch(() => undefined);
      try {
        await Promise.race([start, bound]);
      } finally {
        clearTimeout(timer);
      }
    });
  } catch (e) {
    daemon.kill('SIGKILL');
    tunnel.stop();
    if (timedOut) {
      killProcessesUsing([lpw, images]);
      await unmountUnder(lpw);
    }
    throw e instanceof RestoreFailed
      ? new RestoreFailed(
          `${e.message} (lazy-pages daemon: ${why() || 'no error logged'}; tunnel: ${tunnel.state}${tunnel.refused.length ? `, ${tunnel.refused.join('; ')}` : ''})`,
          { container: o.containerId },
        )
      : e;
  }
  const restoreMs = Date.now() - t1;
  const ins = await o.docker.getContainer(o.containerId).inspect();
  if (!ins.State.Running) {
    daemon.kill('SIGKILL');
    tunnel.stop();
    throw new RestoreFailed(`container ${o.containerId.slice(0, 12)} is ${ins.State.Status} right after the lazy restore`, { container: o.containerId });
  }
  const killContainer = async (): Promise<void> => {
    // Its memory is incomplete: pages not fetched would read as zeros once the uffd is gone.
    const container = o.docker.getContainer(o.containerId);
    await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
    // Stopped as the engine shows it before anyone hears "failed" (the conductor then reads the target).
    // A container the engine cannot show any more counts as stopped.
    const running = containerRunning(container);
    await waitStopped(() => running().catch(() => false), { timeoutMs: 30_000, intervalMs: 50 });
  };
  let aborted = false;
  const handle: LazyRestoreHandle = {
    name: o.name,
    containerId: ins.Id,
    pid: ins.State.Pid,
    restore_ms: restoreMs,
    daemon_ms: daemonMs,
    daemon_pid: daemon.pid ?? null,
    tunnel,
    state: 'fetching',
    error: null,
    completed_at: null,
    allPages: Promise.resolve(),
    async abort() {
      aborted = true;
      if (!exit) daemon.kill('SIGKILL');
      tunnel.stop();
      await handle.allPages.catch(() => undefined);
    },
  };
  const limit = o.completionTimeoutMs ?? 30 * 60_000;
  const stallLimit = o.stallTimeoutMs ?? 30_000;
  handle.allPages = (async () => {
    const timer = setTimeout(() => {
      daemonErr += `\n(no completion within ${limit} ms: ended)`;
      daemon.kill('SIGKILL');
    }, limit);
    // A daemon that stopped fetching (SIGSTOPped, or its peer holds the tunnel and sends nothing)
    // would keep the container's page faults waiting until the completion bound: end it sooner.
    let seen = tunnel.bytesIn;
    let lastProgress = Date.now();
    const watch = setInterval(
      () => {
        if (tunnel.bytesIn !== seen) {
          seen = tunnel.bytesIn;
          lastProgress = Date.now();
        } else if (Date.now() - lastProgress >= stallLimit) {
          daemonErr += `\n(no page arrived for ${stallLimit} ms: ended)`;
          clearInterval(watch);
          daemon.kill('SIGKILL');
        }
      },
      Math.min(1000, stallLimit),
    );
    const e = await exited;
    clearTimeout(timer);
    clearInterval(watch);
    tunnel.stop();
    if (e.code === 0 && !aborted) {
      handle.state = 'complete';
      handle.completed_at = Date.now();
      fs.rmSync(lpw, { recursive: true, force: true });
      return;
    }
    const error = aborted
      ? `post-copy of ${o.containerId.slice(0, 12)} aborted before every page arrived; the container was stopped`
      : `post-copy of ${o.containerId.slice(0, 12)} failed: the lazy-pages daemon ended (${e.signal ?? `exit ${e.code}`}) before every page arrived (${why() || 'no error logged'}); the container was stopped`;
    await killContainer();
    handle.error = error;
    handle.state = 'failed';
    fs.rmSync(lpw, { recursive: true, force: true }); // its reasons are in the message
    throw new PostCopyFailed(handle.error, { container: o.containerId });
  })();
  handle.allPages.catch(() => undefined); // observed through the handle
  return handle;
}

/**
 * Bring a source back after its page server ended before any target ran the container (a
 * rollback). CRIU left three things behind: the container's tasks stopped under the freezer
 * cgroup or already thawed, its network lock (an iptables chain `CRIU` dropping all traffic in the
 * container's namespace), and Docker's record saying `paused` while runc says it is not (so
 * `docker unpause` alone fails). Removing the chain, freezing the cgroup again and letting Docker
 * unpause it gives a running container with its memory intact (observed with Redis: every key
 * there). Only safe while no target has run the container: writes made there would be lost.
 */
export async function resumeFrozenSource(docker: Docker, containerId: string): Promise<void> {
  const c = docker.getContainer(containerId);
  const ins = await c.inspect();
  if (!ins.State.Running)
    throw new PostCopyFailed(`source ${containerId.slice(0, 12)} is ${ins.State.Status}: nothing to resume (its tasks ended)`, { container: containerId });
  const pid = ins.State.Pid;
  const ipt = async (args: string[]) => run('nsenter', ['-t', String(pid), '-n', 'iptables', '-w', ...args], { timeoutMs: 10_000 });
  if ((await ipt(['-S', 'CRIU'])).code === 0) {
    await ipt(['-D', 'INPUT', '-j', 'CRIU']);
    await ipt(['-D', 'OUTPUT', '-j', 'CRIU']);
    await ipt(['-F', 'CRIU']);
    const x = await ipt(['-X', 'CRIU']);
    if (x.code !== 0)
      throw new PostCopyFailed(`cannot remove CRIU's network lock from ${containerId.slice(0, 12)}: ${x.stderr.trim()}`, { container: containerId });
  }
  if (ins.State.Paused) {
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /^\d+:freezer:/.test(l));
    const freezer = line ? path.join('/sys/fs/cgroup/freezer', line.split(':')[2]) : null;
    if (freezer && fs.existsSync(path.join(freezer, 'freezer.state'))) fs.writeFileSync(path.join(freezer, 'freezer.state'), 'FROZEN');
    try {
      await c.unpause();
    } catch (e) {
      throw new PostCopyFailed(`cannot resume ${containerId.slice(0, 12)} after its page server ended: ${(e as Error).message}`, { container: containerId });
    }
  }
  const after = await c.inspect();
  if (!after.State.Running || after.State.Paused)
    throw new PostCopyFailed(`source ${containerId.slice(0, 12)} is ${after.State.Status} after the resume`, { container: containerId });
}
