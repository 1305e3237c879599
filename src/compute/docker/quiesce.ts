/**
 * Connections not yet accepted at the checkpoint. CRIU dumps a listening socket but not the
 * connections waiting in its accept queue: a client whose handshake completed and whose request
 * the kernel already acknowledged then waits for an answer that never comes (seen with nginx
 * under steady requests: one request per migration hung until the client gave up). So, just
 * before the checkpoint, the container's namespace drops new SYNs (clients send them again after
 * their first retransmission time-out, by then to the restored copy) and the agent waits, briefly,
 * until the server has accepted what its queues hold. The rule lives in the source's namespace
 * only; it is removed after the checkpoint wherever that namespace still exists.
 */
import fs from 'node:fs';
import { getLogger } from '../../common/log.js';
import { sleep } from '../../common/sleep.js';
import { run } from './exec.js';

const log = getLogger('compute.docker.quiesce');

/** The rule's mark, so that it is removed by its own spec and never confused with anyone else's. */
const COMMENT = 'ferry-quiesce-listeners';
const RULE = ['INPUT', '-p', 'tcp', '--syn', '-m', 'comment', '--comment', COMMENT, '-j', 'DROP'];

/** How long the agent waits for the accept queues to empty before it checkpoints anyway. */
export const DRAIN_LIMIT_MS = 500;
const POLL_MS = 5;

/** What waits in a namespace's TCP tables: connections still in a listener's accept queue, and half-open ones. */
export interface PendingConnections {
  queued: number;
  halfOpen: number;
}

/**
 * Reads /proc/net/tcp{,6} lines: for a listening socket (state 0A) the rx_queue column is its
 * accept queue's length; state 03 (SYN_RECV) is a handshake not finished yet.
 */
export function pendingIn(tables: string[]): PendingConnections {
  let queued = 0;
  let halfOpen = 0;
  for (const table of tables) {
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const state = f[3];
      const rxQueue = parseInt(f[4].split(':')[1] ?? '0', 16);
      if (state === '0A') queued += rxQueue;
      else if (state === '03') halfOpen += 1;
    }
  }
  return { queued, halfOpen };
}

/** What waits in the TCP tables of the network namespace that process `pid` is in. */
export function pendingConnections(pid: number): PendingConnections {
  return pendingIn(readTables(pid));
}

function readTables(pid: number): string[] {
  return ['tcp', 'tcp6'].map((t) => {
    try {
      return fs.readFileSync(`/proc/${pid}/net/${t}`, 'utf8');
    } catch {
      return '';
    }
  });
}

function iptables(pid: number, args: string[]) {
  return run('nsenter', ['-t', String(pid), '-n', 'iptables', '-w', ...args], { timeoutMs: 10_000 });
}

/**
 * Run `checkpoint` with the container's listeners quiesced (new SYNs dropped, accept queues
 * drained up to DRAIN_LIMIT_MS). Best effort: a namespace where the rule cannot be set is
 * checkpointed as before, with a warning.
 */
export async function withListenersQuiesced<T>(pid: number, container: string, checkpoint: () => Promise<T>): Promise<T> {
  const set = await iptables(pid, ['-I', ...RULE]).catch((e: Error) => ({ code: -1, stderr: e.message, stdout: '' }));
  if (set.code !== 0) {
    log.warn({ container, err: set.stderr.trim() }, 'cannot hold new connections before the checkpoint; connections not yet accepted may be lost');
    return checkpoint();
  }
  try {
    const t0 = Date.now();
    let pending = pendingConnections(pid);
    while ((pending.queued > 0 || pending.halfOpen > 0) && Date.now() - t0 < DRAIN_LIMIT_MS) {
      await sleep(POLL_MS);
      pending = pendingConnections(pid);
    }
    log.debug({ container, drain_ms: Date.now() - t0, ...pending }, 'listeners quiesced before the checkpoint');
    return await checkpoint();
  } finally {
    // Gone with its namespace after a checkpoint that stopped the container; still there otherwise (a failed checkpoint, a post-copy source).
    if (fs.existsSync(`/proc/${pid}/ns/net`)) {
      const r = await iptables(pid, ['-D', ...RULE]).catch((e: Error) => ({ code: -1, stderr: e.message, stdout: '' }));
      if (r.code !== 0 && fs.existsSync(`/proc/${pid}/ns/net`)) log.warn({ container, err: r.stderr.trim() }, 'cannot remove the hold on new connections');
    }
  }
}
