/**
 * The disk pre-copy's two ends on the filesystem (the decisions are delta.ts):
 *
 * DeltaSource (source host, one tree: the writable layer or a volume) writes each round into a
 * folder that travels as one part:
 *   entries/    the entries sent whole, copied by GNU tar from the live tree (owners, modes,
 *               times, whiteouts and the overlay's opaque xattr kept)
 *   blocks/N    the changed blocks of the Nth patched file, in index order
 *   delta.json  what to remove, which blocks go where, and at the last round the manifest
 * What the source records as sent is hashed from the bytes that travel (the copy, the blocks
 * read), never from the live tree after the fact, so a file written while it was copied is seen
 * as changed in the next round and never assumed to be on the target.
 *
 * DeltaMirror (target host) applies the rounds to its copy of the tree and checks it against the
 * last round's manifest. It keeps the block hashes of what it wrote, so the check inside the
 * freeze reads only files whose size or ctime is not what it left them with.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInput, TransferCorrupted } from '../../common/errors.js';
import { safeRelative } from '../datachannel/tarsafe.js';
import {
  DISK_SYNC_BLOCK_BYTES,
  DISK_SYNC_LARGE_FILE_BYTES,
  fileDigest,
  hashBlock,
  manifestProblems,
  planRound,
  type EntryState,
  type EntryType,
  type TreeManifest,
  type TreeState,
} from './delta.js';

export interface DeltaOptions {
  blockBytes?: number;
  largeFile?: number;
}

/** How a large file changes in a round. */
export interface BlockPatch {
  path: string;
  /** The file's size afterwards. */
  size: number;
  /** The blocks that travel, in order (their bytes are blocks/N of the round, N = the patch's index). */
  indices: number[];
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
}

/** delta.json: what a round does besides placing entries/. */
export interface DeltaSpec {
  block_bytes: number;
  /** The first round of a source: whatever the copy holds from an earlier attempt goes first. */
  reset: boolean;
  /** The entries in entries/ that travelled whole, parents first (tar also made their parents, which carry nothing). */
  placed: string[];
  removed: string[];
  patches: BlockPatch[];
  /** The last round only: the whole tree as the target must hold it. */
  manifest?: TreeManifest;
}

export interface RoundResult {
  /** Content bytes the round sends (whole files and blocks). */
  bytes: number;
  entries: number;
  removed: number;
}

export function entryTypeOf(st: fs.Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  // An overlay whiteout: a character device 0:0 records a deleted lower file.
  if (st.isCharacterDevice() && st.rdev === 0) return 'whiteout';
  return 'other';
}

/** lstat of every entry under `root` (not following links); `withRoot`: the root itself too, as ".". */
export function scanTree(root: string, withRoot = false): TreeState {
  const out: TreeState = new Map();
  if (withRoot) {
    const st = fs.lstatSync(root);
    out.set('.', { type: 'dir', size: 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid });
  }
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r), { throwIfNoEntry: false });
      if (!st) continue; // gone while listed: the next round sees it as removed
      // A socket's file does not travel (tar skips it, as without the pre-copy): CRIU binds it again at the restore.
      if (st.isSocket()) continue;
      const type = entryTypeOf(st);
      out.set(r, { type, size: type === 'file' ? st.size : 0, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode, uid: st.uid, gid: st.gid });
      if (type === 'dir') {
        try {
          walk(r);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
    }
  };
  walk('');
  return out;
}

/** The block hashes of a file (and its size), read block by block. */
export function fileBlocks(file: string, blockBytes: number): { size: number; blocks: string[] } {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(blockBytes);
    const blocks: string[] = [];
    let size = 0;
    for (;;) {
      const n = readFull(fd, buf, size);
      if (n === 0) break;
      blocks.push(hashBlock(buf.subarray(0, n)));
      size += n;
      if (n < blockBytes) break;
    }
    if (blocks.length === 0) blocks.push(hashBlock(Buffer.alloc(0)));
    return { size, blocks };
  } finally {
    fs.closeSync(fd);
  }
}

function readFull(fd: number, buf: Buffer, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function run(cmd: string, args: string[], opts: { input?: NodeJS.ReadableStream; okCodes?: number[] } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: [opts.input ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    if (opts.input && c.stdin) opts.input.pipe(c.stdin);
    c.on('error', reject);
    c.on('close', (code) => ((opts.okCodes ?? [0]).includes(code ?? -1) ? resolve() : reject(new Error(`${cmd} failed (${code}): ${err.trim().slice(-500)}`))));
  });
}

/** Copy the listed entries (no recursion) of `root` into `dest` with GNU tar; `live`: files may change while read. */
async function copyEntries(root: string, rels: string[], dest: string, live: boolean): Promise<void> {
  fs.mkdirSync(dest, { recursive: true });
  if (rels.length === 0) return;
  const list = path.join(path.dirname(dest), 'entries.list');
  fs.writeFileSync(list, rels.map((r) => `${r}\0`).join(''));
  const xattrs = ['--xattrs', '--xattrs-include=trusted.overlay.opaque', '--xattrs-include=user.*'];
  const create = spawn(
    'tar',
    ['-c', '-f', '-', '--format=posix', '--sparse', '--numeric-owner', '--no-recursion', ...xattrs, '-C', root, '--null', '-T', list],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  create.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const created = new Promise<void>((resolve, reject) => {
    create.on('error', reject);
    // 1 = a file changed or vanished while read: expected while the container runs (the next round sends it again).
    create.on('close', (code) =>
      code === 0 || (live && code === 1) ? resolve() : reject(new Error(`tar of ${root} failed (${code}): ${err.trim().slice(-500)}`)),
    );
  });
  const extracted = run('tar', ['-x', '-f', '-', '--numeric-owner', '--same-owner', '--same-permissions', ...xattrs, '-C', dest], { input: create.stdout });
  await Promise.all([created, extracted]);
  fs.rmSync(list, { force: true });
}

/** The source's end of one tree's pre-copy: what the target holds, and each round's delta. */
export class DeltaSource {
  private sent: TreeState = new Map();
  /** Per regular file sent: the size and block hashes of the bytes that travelled. */
  private readonly files = new Map<string, { size: number; blocks: string[] }>();
  private readonly blockBytes: number;
  private readonly largeFile: number;
  private rounds = 0;

  constructor(
    readonly root: string,
    opts: DeltaOptions = {},
  ) {
    this.blockBytes = opts.blockBytes ?? DISK_SYNC_BLOCK_BYTES;
    this.largeFile = opts.largeFile ?? DISK_SYNC_LARGE_FILE_BYTES;
  }

  /**
   * Write the next round into `out` (created; must not exist). `final`: the container is frozen,
   * nothing changes while it is read, and the manifest goes with it.
   */
  async round(out: string, final: boolean): Promise<RoundResult> {
    // The root's owner and mode travel too (an upper directory's are the container's "/").
    const now = scanTree(this.root, true);
    const plan = planRound(this.sent, now, this.largeFile);
    fs.mkdirSync(path.join(out, 'blocks'), { recursive: true });
    const entriesDir = path.join(out, 'entries');
    await copyEntries(this.root, plan.whole, entriesDir, !final);
    let bytes = 0;

    for (const r of plan.removed) this.forget(r);
    for (const r of plan.whole) {
      const st = now.get(r) as EntryState;
      this.sent.set(r, st);
      if (st.type !== 'file') continue;
      const copy = path.join(entriesDir, r);
      if (!fs.existsSync(copy)) {
        // Vanished before tar read it: not on the target; the next round removes it there too.
        this.forget(r);
        continue;
      }
      const f = fileBlocks(copy, this.blockBytes);
      this.files.set(r, f);
      bytes += f.size;
    }

    const patches: BlockPatch[] = [];
    for (const r of plan.blocks) {
      const st = now.get(r) as EntryState;
      const p = this.patch(r, st, path.join(out, 'blocks', String(patches.length)));
      if (!p) continue;
      patches.push(p.patch);
      bytes += p.bytes;
    }

    const spec: DeltaSpec = {
      block_bytes: this.blockBytes,
      reset: this.rounds++ === 0,
      placed: plan.whole.filter((r) => this.sent.has(r)),
      removed: plan.removed,
      patches,
    };
    if (final) spec.manifest = this.manifest();
    fs.writeFileSync(path.join(out, 'delta.json'), JSON.stringify(spec));
    return { bytes, entries: plan.whole.length + patches.length, removed: plan.removed.length };
  }

  /** Read a large file once, block by block; the blocks whose hash differs from what was sent travel. */
  private patch(r: string, st: EntryState, blockFile: string): { patch: BlockPatch; bytes: number } | null {
    const before = this.files.get(r)?.blocks;
    let fd: number;
    try {
      fd = fs.openSync(path.join(this.root, r), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // removed meanwhile: the next round sees it
      throw e;
    }
    const outFd = fs.openSync(blockFile, 'w', 0o600);
    try {
      const buf = Buffer.alloc(this.blockBytes);
      const blocks: string[] = [];
      const indices: number[] = [];
      let size = 0;
      for (let i = 0; ; i++) {
        const n = readFull(fd, buf, size);
        if (n === 0) break;
        const h = hashBlock(buf.subarray(0, n));
        blocks.push(h);
        if (before?.[i] !== h) {
          fs.writeSync(outFd, buf, 0, n);
          indices.push(i);
        }
        size += n;
        if (n < this.blockBytes) break;
      }
      if (blocks.length === 0) blocks.push(hashBlock(Buffer.alloc(0)));
      this.sent.set(r, st);
      this.files.set(r, { size, blocks });
      const bytes = indices.reduce((a, i) => a + Math.min(this.blockBytes, size - i * this.blockBytes), 0);
      return { patch: { path: r, size, indices, mode: st.mode, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs }, bytes };
    } finally {
      fs.closeSync(fd);
      fs.closeSync(outFd);
    }
  }

  /** Drop what was sent of an entry and everything under it. */
  private forget(r: string): void {
    for (const k of [...this.sent.keys()]) {
      if (k === r || k.startsWith(`${r}/`)) {
        this.sent.delete(k);
        this.files.delete(k);
      }
    }
  }

  /** The tree as the target holds it after the rounds so far. */
  manifest(): TreeManifest {
    const m: TreeManifest = {};
    for (const [r, st] of this.sent) {
      if (r === '.') continue;
      const f = this.files.get(r);
      m[r] = st.type === 'file' && f ? { type: 'file', size: f.size, digest: fileDigest(f.blocks) } : { type: st.type, size: 0 };
    }
    return m;
  }
}

/** delta.json, checked field by field: it comes from the peer. */
export function parseDeltaSpec(body: unknown): DeltaSpec {
  const o = body as Record<string, unknown> | null;
  const bad = (why: string) => new InvalidInput(`malformed disk delta: ${why}`);
  if (!o || typeof o !== 'object') throw bad('not an object');
  const bb = o.block_bytes;
  if (typeof bb !== 'number' || !Number.isSafeInteger(bb) || bb < 4096 || bb > 16 << 20) throw bad('"block_bytes" must be 4 KiB to 16 MiB');
  const paths = (k: string) => {
    const v = o[k];
    if (!Array.isArray(v) || !v.every((r) => typeof r === 'string')) throw bad(`"${k}" must be a list of paths`);
    return v.map((r: string) => safeRelative(r));
  };
  if (!Array.isArray(o.patches)) throw bad('"patches" must be a list');
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const patches = o.patches.map((p: unknown): BlockPatch => {
    const q = p as Record<string, unknown> | null;
    if (!q || typeof q.path !== 'string' || !count(q.size) || !count(q.mode) || !count(q.uid) || !count(q.gid) || typeof q.mtimeMs !== 'number')
      throw bad('each patch needs "path", "size", "mode", "uid", "gid" and "mtimeMs"');
    if (!Array.isArray(q.indices) || !q.indices.every(count)) throw bad(`patch of ${q.path}: "indices" must be block numbers`);
    const indices = q.indices as number[];
    if (indices.some((i) => i * bb >= (q.size as number))) throw bad(`patch of ${q.path}: a block past the end of the file`);
    return {
      path: safeRelative(q.path),
      size: q.size as number,
      indices,
      mode: q.mode as number,
      uid: q.uid as number,
      gid: q.gid as number,
      mtimeMs: q.mtimeMs,
    };
  });
  let manifest: TreeManifest | undefined;
  if (o.manifest !== undefined) {
    if (!o.manifest || typeof o.manifest !== 'object') throw bad('"manifest" must be an object');
    manifest = {};
    for (const [k, v] of Object.entries(o.manifest as Record<string, unknown>)) {
      const e = v as Record<string, unknown> | null;
      if (!e || typeof e.type !== 'string' || !count(e.size)) throw bad(`manifest entry ${k}`);
      manifest[safeRelative(k)] = { type: e.type as EntryType, size: e.size as number, digest: typeof e.digest === 'string' ? e.digest : undefined };
    }
  }
  if (typeof o.reset !== 'boolean') throw bad('"reset" must be true or false');
  return { block_bytes: bb, reset: o.reset, placed: paths('placed'), removed: paths('removed'), patches, manifest };
}

/** A received round's delta.json. */
export function readDeltaSpec(roundDir: string): DeltaSpec {
  let body: unknown;
  try {
    body = JSON.parse(fs.readFileSync(path.join(roundDir, 'delta.json'), 'utf8'));
  } catch (e) {
    throw new TransferCorrupted(`a disk pre-copy round without a readable delta.json: ${(e as Error).message}`);
  }
  return parseDeltaSpec(body);
}

/** The target's copy of one tree: rounds applied in order, then checked. */
export class DeltaMirror {
  /** What this side wrote of each regular file: its size and ctime then (any later write or chmod moves the ctime), and its block hashes. */
  private readonly written = new Map<string, { size: number; ctimeMs: number; blocks: string[]; blockBytes: number }>();

  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  /** A path inside the copy whose parents are all real directories (a symlink in the copy is never followed). */
  private inside(rel: string): string {
    const parts = safeRelative(rel).split('/');
    if (parts[0] === '') throw new InvalidInput('malformed disk delta: an empty path');
    let cur = this.root;
    for (const p of parts.slice(0, -1)) {
      cur = path.join(cur, p);
      const st = fs.lstatSync(cur, { throwIfNoEntry: false });
      if (!st?.isDirectory())
        throw new TransferCorrupted(`disk delta names ${rel}, whose parent ${path.relative(this.root, cur)} is not a directory in the copy`);
    }
    return path.join(cur, parts[parts.length - 1]);
  }

  /** Apply one received round (its folder as extracted from the part: entries/, blocks/, delta.json). */
  async apply(roundDir: string): Promise<void> {
    const spec = readDeltaSpec(roundDir);
    if (spec.reset) {
      fs.rmSync(this.root, { recursive: true, force: true });
      fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
      this.written.clear();
    }
    for (const r of spec.removed) {
      fs.rmSync(this.inside(r), { recursive: true, force: true });
      for (const k of [...this.written.keys()]) if (k === r || k.startsWith(`${r}/`)) this.written.delete(k);
    }
    const entries = path.join(roundDir, 'entries');
    for (const r of spec.placed) this.place(path.join(entries, r), r, spec.block_bytes);
    spec.patches.forEach((p, n) => this.patch(p, path.join(roundDir, 'blocks', String(n)), spec.block_bytes));
  }

  /**
   * Put one entry that travelled whole in place: a new one (a directory with what came inside
   * it) by a rename, a directory the copy has already by its owner, mode and times only.
   */
  private place(src: string, rel: string, blockBytes: number): void {
    const ss = fs.lstatSync(src, { throwIfNoEntry: false });
    if (!ss) return; // came inside a directory placed before it
    const dst = rel === '' ? this.root : this.inside(rel);
    const ds = fs.lstatSync(dst, { throwIfNoEntry: false });
    if (ss.isDirectory() && ds?.isDirectory()) {
      fs.chownSync(dst, ss.uid, ss.gid);
      fs.chmodSync(dst, ss.mode & 0o7777);
      fs.utimesSync(dst, ss.atime, ss.mtime);
      return;
    }
    if (ds) fs.rmSync(dst, { recursive: true, force: true });
    const files = ss.isDirectory() ? [...scanTree(src)].filter(([, st]) => st.type === 'file').map(([r]) => `${rel}/${r}`) : ss.isFile() ? [rel] : [];
    fs.renameSync(src, dst);
    for (const f of files) this.remember(f, blockBytes);
  }

  private remember(rel: string, blockBytes: number): void {
    const file = path.join(this.root, rel);
    const st = fs.lstatSync(file);
    this.written.set(rel, { ...fileBlocks(file, blockBytes), ctimeMs: st.ctimeMs, blockBytes });
  }

  private patch(p: BlockPatch, blockFile: string, blockBytes: number): void {
    const file = this.inside(p.path);
    const known = this.written.get(p.path);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new TransferCorrupted(`disk delta patches ${p.path}, which is not a regular file in the copy`);
    // Known hashes only when this side wrote the file as it is now; otherwise read it again.
    const blocks =
      known && known.blockBytes === blockBytes && known.size === st.size && known.ctimeMs === st.ctimeMs
        ? [...known.blocks]
        : fileBlocks(file, blockBytes).blocks;
    const data = fs.readFileSync(blockFile);
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
    try {
      let off = 0;
      for (const i of p.indices) {
        const n = Math.min(blockBytes, p.size - i * blockBytes);
        if (off + n > data.length) throw new TransferCorrupted(`disk delta for ${p.path} is short: ${data.length} bytes of blocks`);
        const block = data.subarray(off, off + n);
        fs.writeSync(fd, block, 0, n, i * blockBytes);
        blocks[i] = hashBlock(block);
        off += n;
      }
      if (off !== data.length) throw new TransferCorrupted(`disk delta for ${p.path} has ${data.length - off} bytes more than its blocks`);
      fs.ftruncateSync(fd, p.size);
      fs.fchownSync(fd, p.uid, p.gid);
      fs.fchmodSync(fd, p.mode & 0o7777);
      fs.futimesSync(fd, new Date(p.mtimeMs), new Date(p.mtimeMs));
    } finally {
      fs.closeSync(fd);
    }
    blocks.length = Math.max(1, Math.ceil(p.size / blockBytes));
    if (p.size === 0) blocks[0] = hashBlock(Buffer.alloc(0));
    this.written.set(p.path, { size: p.size, ctimeMs: fs.lstatSync(file).ctimeMs, blocks, blockBytes });
  }

  /** The copy as it is: sizes from lstat, digests from what this side wrote, or read again when the file changed since (its ctime moved). */
  manifest(blockBytes = DISK_SYNC_BLOCK_BYTES): TreeManifest {
    const m: TreeManifest = {};
    for (const [r, st] of scanTree(this.root)) {
      if (st.type !== 'file') {
        m[r] = { type: st.type, size: 0 };
        continue;
      }
      const w = this.written.get(r);
      const blocks =
        w && w.blockBytes === blockBytes && w.size === st.size && w.ctimeMs === st.ctimeMs ? w.blocks : fileBlocks(path.join(this.root, r), blockBytes).blocks;
      m[r] = { type: 'file', size: st.size, digest: fileDigest(blocks) };
    }
    return m;
  }

  /** Throw TransferCorrupted, saying what differs, unless the copy is the tree the manifest describes. */
  verify(expected: TreeManifest, blockBytes = DISK_SYNC_BLOCK_BYTES): void {
    const problems = manifestProblems(expected, this.manifest(blockBytes));
    if (problems.length > 0) throw new TransferCorrupted(`the pre-copied disk at ${this.root} does not match the source's: ${problems.join('; ')}`);
  }
}
