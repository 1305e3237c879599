/**
 * What a disk pre-copy round sends, decided without touching the disk (issue 22, item 2): the
 * writable layer and local volumes travel while the container runs, in rounds, and inside the
 * freeze only what changed since the last round. A round compares what the source sent before
 * with what its tree holds now:
 *  - an entry whose type, size, times (mtime, ctime), inode, mode or owner differ changed; a
 *    directory's own metadata travels, never its children by implication;
 *  - a regular file of at least `largeFile` bytes that was sent before as a regular file travels
 *    as the blocks whose hash differs (a table file changes in a few blocks per second);
 *    everything else that changed travels whole, overlay whiteouts (char 0:0) included;
 *  - entries gone since they were sent, or whose type changed, are removed on the target (the
 *    topmost one only: a removed directory takes its children); so is a directory made anew
 *    (another inode), which then travels whole: overlay marks such a directory opaque.
 * Rounds go on while the bytes a round sends shrink, up to a number of rounds.
 * The target checks its copy against a manifest (each entry's type and size, each file's block
 * digest) before it restores. Reading the tree is tree.ts.
 */
import crypto from 'node:crypto';

/** Blocks compared in a large file. */
export const DISK_SYNC_BLOCK_BYTES = 64 * 1024;
/** Files from this size on travel as changed blocks; smaller ones whole. */
export const DISK_SYNC_LARGE_FILE_BYTES = 1024 * 1024;

export type EntryType = 'file' | 'dir' | 'symlink' | 'whiteout' | 'other';

/** What lstat says of one entry, as far as a round compares it. */
export interface EntryState {
  type: EntryType;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
}

/** A tree's entries by path relative to its root (the root itself not included). */
export type TreeState = Map<string, EntryState>;

export interface RoundPlan {
  /** Entries sent whole (new, changed type, small files, symlinks, whiteouts, directories' metadata), parents first. */
  whole: string[];
  /** Large regular files sent before as regular files: only their blocks whose hash differs travel. */
  blocks: string[];
  /** Entries sent before that are gone or changed type (topmost only), removed before anything is placed. */
  removed: string[];
}

/** Whether an entry differs from what was sent of it. */
export function entryChanged(sent: EntryState, now: EntryState): boolean {
  return (
    sent.type !== now.type ||
    sent.size !== now.size ||
    sent.mtimeMs !== now.mtimeMs ||
    sent.ctimeMs !== now.ctimeMs ||
    sent.ino !== now.ino ||
    sent.mode !== now.mode ||
    sent.uid !== now.uid ||
    sent.gid !== now.gid
  );
}

function isUnder(p: string, dir: string): boolean {
  return p.startsWith(`${dir}/`);
}

/** Keep only the paths none of whose ancestors is in the list. */
function topmost(paths: string[]): string[] {
  const sorted = [...paths].sort();
  const out: string[] = [];
  for (const p of sorted) if (!out.some((q) => isUnder(p, q))) out.push(p);
  return out;
}

/**
 * What a round sends: `sent` is what the target holds (what earlier rounds sent; empty for the
 * first round), `now` what the source's tree holds.
 */
export function planRound(sent: ReadonlyMap<string, EntryState>, now: ReadonlyMap<string, EntryState>, largeFile = DISK_SYNC_LARGE_FILE_BYTES): RoundPlan {
  const whole: string[] = [];
  const blocks: string[] = [];
  const removed: string[] = [];
  for (const [p, before] of sent) {
    const after = now.get(p);
    // A changed type is a new entry: the old one goes first (a directory becoming a file, a file becoming a whiteout).
    // So is a directory made anew (another inode): overlay marks it opaque, and what it held before must not show.
    if (!after || after.type !== before.type || (after.type === 'dir' && after.ino !== before.ino)) removed.push(p);
  }
  for (const [p, after] of now) {
    const before = sent.get(p);
    if (before && !entryChanged(before, after)) continue;
    if (before && before.type === 'file' && after.type === 'file' && after.size >= largeFile) blocks.push(p);
    else whole.push(p);
  }
  // Sorted, a parent comes before what is inside it ("a" < "a/b").
  return { whole: whole.sort(), blocks: blocks.sort(), removed: topmost(removed) };
}

/** The SHA-256 of each block of `data` (one empty-file hash for an empty buffer: every file has a digest). */
export function blockHashes(data: Buffer, blockBytes = DISK_SYNC_BLOCK_BYTES): string[] {
  if (data.length === 0) return [hashBlock(data)];
  const out: string[] = [];
  for (let off = 0; off < data.length; off += blockBytes) out.push(hashBlock(data.subarray(off, off + blockBytes)));
  return out;
}

export function hashBlock(block: Buffer): string {
  return crypto.createHash('sha256').update(block).digest('hex');
}

/** One file's digest from its block hashes: what the manifest names, computed alike on both sides. */
export function fileDigest(blocks: readonly string[]): string {
  const h = crypto.createHash('sha256');
  for (const b of blocks) h.update(b);
  return h.digest('hex');
}

/**
 * Whether another live round is worth it: not past `maxRounds`, something still changed (more
 * than `settledBytes`), and the last round sent less than the one before (the writes are not
 * outrunning the copy). `history`: the bytes each round so far sent, in order.
 */
export function anotherRound(history: readonly number[], maxRounds: number, settledBytes = 0): boolean {
  if (history.length === 0) return maxRounds > 0;
  if (history.length >= maxRounds) return false;
  const last = history[history.length - 1];
  if (last <= settledBytes) return false;
  return history.length < 2 || last < history[history.length - 2];
}

/** One entry as the target must hold it after the last round. */
export interface ManifestEntry {
  type: EntryType;
  /** Regular files: content bytes. */
  size: number;
  /** Regular files: fileDigest of their blocks. */
  digest?: string;
}

export type TreeManifest = Record<string, ManifestEntry>;

/** How the target's copy differs from the source's manifest; empty when it matches (at most `limit` problems listed). */
export function manifestProblems(expected: TreeManifest, actual: TreeManifest, limit = 10): string[] {
  const problems: string[] = [];
  const note = (s: string) => {
    if (problems.length < limit) problems.push(s);
  };
  let count = 0;
  for (const [p, want] of Object.entries(expected)) {
    const got = actual[p];
    if (!got) note(`${p} is missing`);
    else if (got.type !== want.type) note(`${p} is a ${got.type}, not a ${want.type}`);
    else if (want.type === 'file' && got.size !== want.size) note(`${p} holds ${got.size} bytes, not ${want.size}`);
    else if (want.type === 'file' && got.digest !== want.digest)
      note(`${p} differs in content (sha256 ${String(got.digest).slice(0, 12)}, not ${String(want.digest).slice(0, 12)})`);
    else continue;
    count++;
  }
  for (const p of Object.keys(actual)) {
    if (!(p in expected)) {
      note(`${p} should not be there`);
      count++;
    }
  }
  if (count > problems.length) problems.push(`and ${count - problems.length} more`);
  return problems;
}
