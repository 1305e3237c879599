/**
 * Post-copy (lazy pages): the source freezes the container into images without its memory pages
 * and keeps them with its page server; the target starts the container from those images and
 * fetches each page as the process touches it, the rest in the background. Until every page
 * arrived the only whole copy is split between the hosts: the source must stay up, and once the
 * target has run the container neither side can be rolled back to.
 */
import { InvalidMigrationState, PostCopyFailed, PostCopyUnsupported, RollbackFailed } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { endOrphanedPageServer } from '../criuproc.js';
import type { EngineDriver, LazyPagesCapability, PostCopySupport } from '../driver.js';
import { newPageToken } from '../pagetunnel.js';
import type { AgentRecord } from '../records.js';
import type { MemoryMode, ModeHost } from './interface.js';

const log = getLogger('compute.agent');

export interface PostCopyOptions {
  /** [compute] permit_post_copy: this host may take part in post-copy migrations (its risk: docs/operations.md). */
  permitPostCopy?: boolean;
  /** How long a target's lazy restore waits for all pages before it gives up (ms; default 10 min). */
  postCopyTimeoutMs?: number;
  /** [compute] lazy_restore_timeout: bound of a target's `docker start --checkpoint` in a post-copy (ms; default 45 s). */
  lazyRestoreTimeoutMs?: number;
  /** [compute] post_copy_stall_timeout: how long a post-copy may go without a page arriving (ms; default 30 s). */
  postCopyStallMs?: number;
}

/** The engine's lazy-pages support (and, for the report, its dirty tracking); an engine without lazy pages has neither. */
export async function lazyPagesSupport(host: string, driver: EngineDriver): Promise<PostCopySupport> {
  if (!driver.lazyPages) {
    const reason = `the ${host} engine driver has no lazy-pages support`;
    return { ok: false, reason, pre_copy: { ok: false, reason } };
  }
  const lazy = driver.lazyPages;
  // A check that throws at once is a reason too: the heartbeat carrying it must not fail.
  return Promise.resolve()
    .then(() => lazy.postCopySupport())
    .catch((e: unknown) => {
      const reason = e instanceof Error ? e.message : String(e);
      return { ok: false, reason, pre_copy: { ok: false, reason } };
    });
}

/** Whether this host offers post-copy: the engine can, and the deployment permits it. */
export function postCopyOffer(host: string, permitted: boolean, support: PostCopySupport): { ok: boolean; reason: string | null } {
  if (!permitted) return { ok: false, reason: `post-copy is not permitted on ${host} ([compute] permit_post_copy = false)` };
  return { ok: support.ok, reason: support.ok ? null : support.reason };
}

export function postCopy(host: ModeHost, opts: PostCopyOptions): MemoryMode {
  const completionTimeoutMs = opts.postCopyTimeoutMs ?? 600_000;
  const restoreTimeoutMs = opts.lazyRestoreTimeoutMs ?? 45_000;
  const stallTimeoutMs = opts.postCopyStallMs ?? 30_000;

  /** The engine's lazy pages, or PostCopyUnsupported when it has none. */
  const lazy = (): LazyPagesCapability => {
    const l = host.driver.lazyPages;
    if (!l) throw new PostCopyUnsupported(`the ${host.host} engine driver cannot do post-copy (no lazy pages)`, { host: host.host });
    return l;
  };

  /** Source: the page server ends (every page served, the source's tasks gone), or the wait times out. */
  const pageServerEnded = async (name: string, timeoutMs = 30_000): Promise<void> => {
    const l = host.driver.lazyPages;
    if (!l || l.pageServerStatus(name).state !== 'serving') return;
    const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([
      l.waitPageServer(name).then(
        () => undefined,
        () => undefined,
      ),
      timer,
    ]);
  };

  return {
    name: 'post-copy',

    async require() {
      const m = await host.offered();
      if (!m.post_copy.ok) throw new PostCopyUnsupported(`post-copy is not possible on ${host.host}: ${m.post_copy.reason}`, { host: host.host });
    },

    async freeze(r, containerId, name) {
      // A one-time token binds the pages to this migration's target (besides its certificate).
      const token = newPageToken();
      const ckpt = await lazy().checkpointLazy(containerId, name, {
        pageServerPort: 0,
        bindAddress: host.advertisedHost(),
        tunnel: { tls: host.tunnelTls, token, peerHost: r.peer_host ?? null },
      });
      const pageServer = { address: host.advertisedHost(), port: ckpt.page_server.port, host: host.host, token };
      r.page_server = pageServer;
      r.page_server_pid = ckpt.page_server.pid;
      r.page_carrier_pid = ckpt.page_server.carrier_pid ?? null;
      host.records.save(r);
      return { checkpoint: ckpt, pageServer };
    },

    continueFrozen(r, name) {
      // A lazily frozen source still shows as running: only a page server still serving in this process can go on.
      const ps = host.driver.lazyPages?.pageServerStatus(name);
      if (!ps || ps.state !== 'serving' || !r.page_server) {
        throw new PostCopyFailed(
          `the page server of ${r.spec?.name ?? r.container_name} on ${host.host} is ${ps?.state ?? 'gone'}${ps?.error ? ` (${ps.error})` : ''}; the post-copy cannot go on`,
        );
      }
      return {
        checkpoint: { name, dir: '', bytes: 0, checkpoint_ms: 0, fast: true },
        frozenAt: r.live?.frozen_at ?? Date.parse(r.updated_at),
        pageServer: r.page_server,
      };
    },

    // The pages did not travel with the checkpoint: the engine's count of the container's memory stands for them.
    memoryTotal: (r) => r.spec?.memory_bytes_estimate ?? null,

    async settleSource(r) {
      if (r.checkpoint_name) await pageServerEnded(r.checkpoint_name);
    },

    async rollbackSource(r, containerId, name) {
      const l = host.driver.lazyPages;
      if ((r.stage !== 'frozen' && r.stage !== 'sent') || !l) return false;
      // Lazily frozen (Docker shows it running): the page server ends and the container goes on, memory intact.
      // The conductor asks only once the target confirmed it never ran the container.
      await l.rollbackLazyCheckpoint(containerId, name).catch((e: unknown) => {
        throw new RollbackFailed(`resuming ${containerId.slice(0, 12)} after its post-copy checkpoint on ${host.host} failed: ${(e as Error).message}`);
      });
      return true;
    },

    abandonAfterRestart(r: AgentRecord) {
      if (!r.page_server_pid) return false;
      // Its page tunnel died with the earlier run: no target can fetch a page any more. CRIU is
      // ended by PID (no end of stream reaches it), so the source stays frozen and whole for
      // the conductor to roll back, or the operator to decide.
      const ended = endOrphanedPageServer(r.page_server_pid, r.page_carrier_pid ?? null);
      r.page_server_pid = null;
      r.page_carrier_pid = null;
      log.warn({ migration: r.migration_id, ended }, 'resumed: the post-copy page server an earlier run left was ended; the source stays frozen and whole');
      return true;
    },

    matchesRestore: (req) => Boolean(req.page_server),

    checkRestore(r, req) {
      if (!req.page_server?.token) {
        throw new PostCopyFailed(
          `the source of migration ${r.migration_id} offers its memory pages without a page tunnel token (an agent before compute RPC 1.2): ${host.host} fetches pages only through the authenticated tunnel`,
        );
      }
    },

    async restore(r, containerId, name, req) {
      const ps = req.page_server;
      if (!ps) throw new InvalidMigrationState(`migration ${r.migration_id} names no page server for its post-copy on ${host.host}`);
      return lazy().restoreLazy(containerId, name, {
        sourceAddress: ps.address,
        port: ps.port,
        tunnel: { tls: host.tunnelTls, token: ps.token ?? '', peerHost: r.peer_host ?? ps.host ?? null }, // the source this host prepared for
        completionTimeoutMs,
        restoreTimeoutMs,
        stallTimeoutMs,
      });
    },

    restoredTraits: () => ({ post_copy: true }),

    async arrival(r, name) {
      const st = host.driver.lazyPages?.postCopyStatus(name);
      if (!st || st.state === 'unknown') {
        return {
          state: 'unknown',
          error: `${host.host} has no lazy-pages daemon for this migration (its agent restarted during the post-copy?)`,
          completed_at: null,
        };
      }
      const resident = st.state === 'fetching' && r.container_id ? await host.driver.containerMemory?.(r.container_id).catch(() => null) : null;
      return { state: st.state, error: st.error, completed_at: st.completed_at, resident_bytes: resident ?? null };
    },

    async rollbackTarget(_r, name) {
      // A lazy restore still waiting for pages is ended first (it stops its container).
      await host.driver.lazyPages?.abortPostCopy(name);
    },
  };
}
