/**
 * What a migration left, and the invariant it must keep, as plain data and pure functions: the
 * fault tests (test/integration/faults/harness.ts) and the soak read the engines and the agents'
 * folders into a Verdict, then judge it here.
 */
import type { Migration, MigrationStatus } from '../objects/migration.js';

export const HOSTS = ['compute1', 'compute2'] as const;
export type HostName = (typeof HOSTS)[number];
export type CopyState = 'running' | 'stopped' | 'absent';

export interface Verdict {
  status: MigrationStatus;
  phase: string | null;
  /** The one host it runs on; null when it runs on none or on both. */
  where: HostName | null;
  /** Each host's copy: running, stopped or absent. */
  copies: Record<HostName, CopyState>;
  /** The workload's state read back from the running copy (Redis: sentinel and key count). */
  state_kept: boolean;
  /** Staging folders and unfinished agent records of the migration still there. */
  leftovers: string[];
}

export interface Expected {
  status: MigrationStatus | MigrationStatus[];
  host?: HostName;
}

export function otherHost(h: HostName): HostName {
  return h === 'compute1' ? 'compute2' : 'compute1';
}

/** The one host running a copy, or null (none, or both). */
export function onlyRunning(copies: Record<HostName, CopyState>): HostName | null {
  const running = HOSTS.filter((h) => copies[h] === 'running');
  return running.length === 1 ? running[0] : null;
}

/**
 * The soak's classes: duplicated when both hosts run a copy, lost when none does or the one
 * that runs lost its state, ok otherwise (the final status is judged apart, by `unmet`).
 */
export type Outcome = 'ok' | 'lost' | 'duplicated';

export function classify(v: Pick<Verdict, 'copies' | 'state_kept'>): Outcome {
  const running = HOSTS.filter((h) => v.copies[h] === 'running').length;
  if (running > 1) return 'duplicated';
  if (running === 0 || !v.state_kept) return 'lost';
  return 'ok';
}

/**
 * The invariant after a migration ended, as the list of what broke it (empty: kept): one running
 * copy, on the host the record says (and the one expected), its state intact, no copy (running
 * or not) left on the other host, no staging or unfinished record left on either agent, and a
 * final status among the expected ones.
 */
export function unmet(m: Pick<Migration, 'source_host' | 'dest_host'>, v: Verdict, expected: Expected): string[] {
  const out: string[] = [];
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status];
  if (!statuses.includes(v.status)) out.push(`status ${v.status}, expected ${statuses.join(' or ')}`);
  const recorded = v.status === 'completed' ? m.dest_host : m.source_host;
  if (v.where === null) out.push(`runs on no single host (compute1 ${v.copies.compute1}, compute2 ${v.copies.compute2})`);
  else {
    if (v.where !== recorded) out.push(`runs on ${v.where}, the record says ${recorded}`);
    if (expected.host && v.where !== expected.host) out.push(`runs on ${v.where}, expected ${expected.host}`);
    const other = otherHost(v.where);
    if (v.copies[other] !== 'absent') out.push(`a ${v.copies[other]} copy left on ${other}`);
    if (!v.state_kept) out.push('state not kept');
  }
  for (const l of v.leftovers) out.push(`left behind: ${l}`);
  return out;
}
