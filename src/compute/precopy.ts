/**
 * Pre-copy, where the kernel tracks dirty memory (`criu check --feature mem_dirty_track`): copy
 * memory while the container runs, round after round of pre-dumps each holding only what was
 * written since the previous one, then freeze and copy the rest. Worth it only while the rounds
 * shrink: a workload that dirties memory as fast as it is copied never converges, and each
 * round costs a short freeze of its own. Plain decisions here; the agent runs the rounds.
 */
import type { HostModes } from './driver.js';

export type MemoryMode = 'stop-and-copy' | 'pre-copy' | 'post-copy';

/** One pre-dump round: the memory it copied (dirty since the round before; all of it for the first). */
export interface PreDumpRound {
  bytes: number;
  ms: number;
}

export interface PreCopyPolicy {
  /** Never more rounds than this. */
  maxRounds: number;
  /** A round must copy at most this fraction of the previous one to count as shrinking (e.g. 0.8). */
  shrinkRatio: number;
  /** Small enough to freeze now: the last round copied at most this many bytes. */
  settleBytes: number;
}

export const DEFAULT_PRE_COPY: PreCopyPolicy = { maxRounds: 5, shrinkRatio: 0.8, settleBytes: 8 * 1024 * 1024 };

export type PreCopyStep =
  | { action: 'pre-dump' }
  | { action: 'freeze'; reason: 'settled' | 'not-shrinking' | 'max-rounds' | 'forced' };

/** After the rounds so far: another pre-dump, or the freeze (and why). */
export function nextPreCopyStep(rounds: readonly PreDumpRound[], policy: PreCopyPolicy = DEFAULT_PRE_COPY, forced = false): PreCopyStep {
  if (forced) return { action: 'freeze', reason: 'forced' };
  if (rounds.length === 0) return { action: 'pre-dump' };
  const last = rounds[rounds.length - 1];
  if (last.bytes <= policy.settleBytes) return { action: 'freeze', reason: 'settled' };
  if (rounds.length >= policy.maxRounds) return { action: 'freeze', reason: 'max-rounds' };
  if (rounds.length >= 2 && last.bytes > rounds[rounds.length - 2].bytes * policy.shrinkRatio) return { action: 'freeze', reason: 'not-shrinking' };
  return { action: 'pre-dump' };
}

/**
 * The mode of a new migration: post-copy when asked for (the caller checked both hosts permit
 * it); otherwise pre-copy when both hosts can, else stop-and-copy.
 */
export function chooseMode(postCopyRequested: boolean, source: HostModes | null, dest: HostModes | null): MemoryMode {
  if (postCopyRequested) return 'post-copy';
  if (source?.pre_copy.ok && dest?.pre_copy.ok) return 'pre-copy';
  return 'stop-and-copy';
}
