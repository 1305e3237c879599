/**
 * Post-copy through Docker (docs/platform-facts.md "Post-copy through Docker"): the engine's
 * lazy-pages capability. The source freezes the container into images without memory pages and
 * serves the pages from CRIU's page server; the target restores from those images and fetches
 * the pages as the process touches them. The process work lives in lazy.ts; this object keeps
 * which page servers and lazy restores run on this host, by checkpoint name.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { EngineError, PostCopyFailed, PostCopyUnsupported } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { containerRunning, waitStopped } from './stopped.js';
import type {
  LazyCheckpointRequest,
  LazyCheckpointResult,
  LazyPagesCapability,
  LazyRestoreRequest,
  LazyRestoreResult,
  PageServerStatus,
  PostCopyStatus,
  PostCopySupport,
} from '../driver.js';
import type { DockerInspect } from './config.js';
import { criuStatus } from './criu.js';
import { engineMessage, engineStatus } from './engineerror.js';
import { withListenersQuiesced } from './quiesce.js';
import {
  criuFeature,
  ensurePipeMaxSize,
  judgeModes,
  killProcessesUsing,
  lazyCheckpoint,
  lazyRestore,
  resumeFrozenSource,
  unmountUnder,
  type LazyRestoreHandle,
  type MigrationModes,
  type PageServerHandle,
} from './lazy.js';

const log = getLogger('compute.docker');

/** What the capability uses of its Docker driver. */
export interface LazyPagesEngine {
  readonly host: string;
  readonly docker: Docker;
  readonly opts: {
    workDir: string;
    criuBinary: string;
    criuMinVersion: string;
    containerdAddress: string;
    engineNetns?: string;
  };
  dockerRoot(): Promise<string>;
  inspect(idOrName: string): Promise<DockerInspect>;
}

export class DockerLazyPages implements LazyPagesCapability {
  /** Post-copies this host serves pages for (source side), by checkpoint name. */
  private readonly pageServers = new Map<string, PageServerHandle>();
  /** Post-copies this host fetches pages for (target side), by checkpoint name. */
  private readonly lazyRestores = new Map<string, LazyRestoreHandle>();
  /** The last post-copy support check (a minute): the target's check runs while the source is frozen. */
  private supportCache: { at: number; value: PostCopySupport } | null = null;

  constructor(private readonly engine: LazyPagesEngine) {}

  /** Whether this host can do post-copy (uffd-noncoop, fs.pipe-max-size) and pre-copy (memory dirty tracking). */
  async postCopySupport(): Promise<PostCopySupport> {
    const criu = await criuStatus(this.engine.opts.criuBinary, this.engine.opts.criuMinVersion);
    const [uffd, dirtyTrack] = criu.ok
      ? await Promise.all([criuFeature(this.engine.opts.criuBinary, 'uffd-noncoop'), criuFeature(this.engine.opts.criuBinary, 'mem_dirty_track')])
      : [
          { ok: false, reason: criu.error },
          { ok: false, reason: criu.error },
        ];
    const modes: MigrationModes = judgeModes({ criuOk: criu.ok, criuError: criu.error, uffd, dirtyTrack, pipe: ensurePipeMaxSize() });
    return { ok: modes.post_copy.ok, reason: modes.post_copy.reason, pre_copy: modes.pre_copy };
  }

  private async requirePostCopy(): Promise<void> {
    let s = this.supportCache && this.supportCache.value.ok && Date.now() - this.supportCache.at < 60_000 ? this.supportCache.value : null;
    if (!s) {
      s = await this.postCopySupport();
      this.supportCache = { at: Date.now(), value: s };
    }
    if (s.ok && !ensurePipeMaxSize().ok)
      throw new PostCopyUnsupported(`post-copy is not possible on ${this.engine.host}: fs.pipe-max-size was lowered and cannot be raised again`, {
        host: this.engine.host,
      });
    if (!s.ok) throw new PostCopyUnsupported(`post-copy is not possible on ${this.engine.host}: ${s.reason}`, { host: this.engine.host });
  }

  /**
   * Source: freeze the container and write everything but its memory pages; resolves once the
   * images are in the checkpoint directory and CRIU's page server waits on `port` (0 = a free one)
   * at `bindAddress` (default all addresses). The container stays frozen (Docker shows it running)
   * until the target has fetched every page, then it exits; `waitPageServer` follows that.
   */
  async checkpointLazy(containerId: string, name: string, opts: LazyCheckpointRequest): Promise<LazyCheckpointResult> {
    await this.requirePostCopy();
    const root = await this.engine.dockerRoot();
    const ins = await this.engine.inspect(containerId);
    if (!ins.State.Running)
      throw new PostCopyFailed(`container ${ins.Id.slice(0, 12)} on ${this.engine.host} is ${ins.State.Status}, not running`, { container: ins.Id });
    if ((ins.HostConfig.RestartPolicy?.Name || 'no') !== 'no') {
      // As for the fast checkpoint: Docker's stop bookkeeping is skipped, so it must not restart the source.
      throw new PostCopyFailed(`container ${ins.Id.slice(0, 12)} has restart policy ${ins.HostConfig.RestartPolicy?.Name}: hold restarts before a post-copy`, {
        container: ins.Id,
      });
    }
    this.pageServers
      .get(name)
      ?.abort()
      .catch(() => undefined);
    const h = await withListenersQuiesced(ins.State.Pid, ins.Id.slice(0, 12), () =>
      lazyCheckpoint({
        docker: this.engine.docker,
        containerdAddress: this.engine.opts.containerdAddress,
        dockerRoot: root,
        workDir: this.engine.opts.workDir,
        containerId: ins.Id,
        name,
        port: opts.pageServerPort,
        tunnel: opts.tunnel,
        bindAddress: opts.bindAddress ?? '0.0.0.0',
        engineNetns: this.engine.opts.engineNetns || null,
      }),
    );
    this.pageServers.set(name, h);
    return {
      name,
      dir: h.dir,
      bytes: h.bytes,
      checkpoint_ms: h.checkpoint_ms,
      fast: true,
      page_server: { port: h.port, pid: h.pid, carrier_pid: h.carrierPid },
    };
  }

  pageServerStatus(name: string): PageServerStatus {
    const h = this.pageServers.get(name);
    if (!h) return { name, state: 'unknown', port: null, pid: null, error: null };
    return { name, state: h.state, port: h.port, pid: h.pid, error: h.error };
  }

  /** Resolves when the target fetched every page and the source container exited; PostCopyFailed otherwise. */
  async waitPageServer(name: string): Promise<PageServerStatus> {
    const h = this.pageServers.get(name);
    if (!h) throw new PostCopyFailed(`no page server for ${name} on ${this.engine.host}`);
    await h.served;
    return this.pageServerStatus(name);
  }

  /** End the page server (by its PID): a target still fetching then fails. */
  async abortPageServer(name: string): Promise<void> {
    await this.pageServers.get(name)?.abort();
  }

  /**
   * Target: with the lazy checkpoint's images placed (placeCheckpoint), start the lazy-pages daemon
   * against the source's page server and the container from the checkpoint; resolves when the
   * process runs. Its memory then arrives on demand and in the background: `waitPostCopy`.
   */
  async restoreLazy(containerId: string, name: string, opts: LazyRestoreRequest): Promise<LazyRestoreResult> {
    await this.requirePostCopy();
    const root = await this.engine.dockerRoot();
    const ins = await this.engine.inspect(containerId);
    await this.lazyRestores.get(name)?.abort();
    const h = await lazyRestore({
      docker: this.engine.docker,
      dockerRoot: root,
      workDir: this.engine.opts.workDir,
      criuBinary: this.engine.opts.criuBinary,
      containerId: ins.Id,
      name,
      sourceAddress: opts.sourceAddress,
      port: opts.port,
      tunnel: opts.tunnel,
      completionTimeoutMs: opts.completionTimeoutMs,
      restoreTimeoutMs: opts.restoreTimeoutMs,
      stallTimeoutMs: opts.stallTimeoutMs,
    });
    this.lazyRestores.set(name, h);
    return { container_id: h.containerId, pid: h.pid, restore_ms: h.restore_ms, daemon_ms: h.daemon_ms, daemon_pid: h.daemon_pid };
  }

  postCopyStatus(name: string): PostCopyStatus {
    const h = this.lazyRestores.get(name);
    if (!h) return { name, state: 'unknown', error: null, completed_at: null };
    return { name, state: h.state, error: h.error, completed_at: h.completed_at };
  }

  /** Resolves when every page arrived; PostCopyFailed (the container stopped) when the daemon failed or was aborted. */
  async waitPostCopy(name: string): Promise<PostCopyStatus> {
    const h = this.lazyRestores.get(name);
    if (!h) throw new PostCopyFailed(`no post-copy for ${name} on ${this.engine.host}`);
    await h.allPages;
    return this.postCopyStatus(name);
  }

  /**
   * Source rollback of a post-copy no target has run yet (its restore failed or never started):
   * end the page server and give the container back its network and CPU, memory intact.
   * Once a target ran the container, do not: what it wrote there would be lost.
   */
  async rollbackLazyCheckpoint(containerId: string, name: string): Promise<void> {
    const ins = await this.engine.inspect(containerId);
    await this.abortPageServer(name);
    await resumeFrozenSource(this.engine.docker, ins.Id);
  }

  /**
   * End a lazy restore: its daemon, and any CRIU process still holding its lazy-pages work dir
   * (a restore left by an earlier run of this agent: ended by PID so the engine can remove the shell).
   */
  async abortPostCopy(name: string): Promise<void> {
    await this.lazyRestores.get(name)?.abort();
    await this.endLazyWorkDirs(
      this.lazyWorkDirs().filter((d) => d.endsWith(`-${name}`)),
      name,
    );
  }

  /**
   * At the agent's start no lazy restore of this process exists yet: every lazy-pages work dir
   * is an earlier run's, and a daemon or CRIU restore still holding one waits for pages that will
   * never come (and keeps the engine from removing its shell). End them all.
   */
  async endLeftovers(): Promise<string[]> {
    const dirs = this.lazyWorkDirs();
    // Each work dir is named <container id, 12 characters>-<checkpoint> (lazy.ts).
    const copies = dirs.map((d) => d.slice(0, 12)).filter((id) => /^[0-9a-f]{12}$/.test(id));
    // The daemon and CRIU's restore first: the engine answers for the container only once they are gone.
    const ended = await this.endLazyWorkDirs(dirs, null);
    for (const id of copies) if (await this.stopUnfinishedCopy(id)) ended.push(`copy ${id} stopped (its pages never all arrived)`);
    return ended;
  }

  /**
   * A copy restored lazily whose restore this agent did not see finish: pages it never fetched
   * read as zeros once its daemon is gone, so it must not go on running (the source stays frozen
   * and whole). Killed as a failed post-copy kills it, then awaited until the engine shows it stopped.
   */
  private async stopUnfinishedCopy(id: string): Promise<boolean> {
    const container = this.engine.docker.getContainer(id);
    try {
      if (!(await container.inspect()).State.Running) return false;
      await container.kill({ signal: 'SIGKILL' });
    } catch (e) {
      if (engineStatus(e) === 404 || engineStatus(e) === 409) return false; // gone, or not running any more
      throw new EngineError(`stopping the unfinished lazy copy ${id} on ${this.engine.host}: ${engineMessage(e)}`);
    }
    await waitStopped(containerRunning(container), { timeoutMs: 30_000, intervalMs: 100 });
    log.warn({ host: this.engine.host, container: id }, 'stopped a copy whose lazy restore an earlier run of this agent left unfinished');
    return true;
  }

  /** The names of the lazy-pages work dirs there are (none without the folder). */
  private lazyWorkDirs(): string[] {
    const root = this.lazyPagesRoot();
    return fs.existsSync(root) ? fs.readdirSync(root) : [];
  }

  private lazyPagesRoot(): string {
    return path.join(this.engine.opts.workDir, 'lazy-pages');
  }

  /** End the processes holding these lazy-pages work dirs (by name), unmount what they left, remove the dirs. */
  private async endLazyWorkDirs(names: string[], checkpoint: string | null): Promise<string[]> {
    const root = this.lazyPagesRoot();
    const left = names.map((d) => path.join(root, d));
    const ended: string[] = [];
    for (const d of left) {
      const killed = killProcessesUsing([d]);
      if (killed.length) log.warn({ host: this.engine.host, checkpoint, dir: d, pids: killed }, 'ended processes left holding a lazy restore');
      await unmountUnder(d); // what the killed CRIU left mounted there
      fs.rmSync(d, { recursive: true, force: true });
      ended.push(`lazy restore ${path.basename(d)}${killed.length ? ` (pids ${killed.join(',')} ended)` : ''}`);
    }
    return ended;
  }
}
