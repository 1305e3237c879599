/**
 * Safe unpacking of the tar archives that arrive over the data channel.
 * Rules (checkEntry and keptMode, pure and unit-tested):
 *  - names are relative, without `..` components or NUL bytes;
 *  - regular files, directories, symlinks, hard links and FIFOs only; no device files,
 *    except overlay whiteouts (character device 0:0) in the rootfs diff, where they are how a
 *    deleted file is recorded;
 *  - a checkpoint part (CRIU images) holds regular files and directories only: no symlinks,
 *    hard links, FIFOs or devices;
 *  - a relative symlink target may climb (`..`) only at its start, and not above the tree's
 *    root; `..` after a name is refused, because the name may itself be a symlink
 *    (`d -> .` then `x -> d/d/d/../../../SECRET` resolves outside although it looks inside).
 *    Absolute targets only in the rootfs diff, where they resolve inside the container;
 *  - a hard link must name a regular file already extracted inside the tree;
 *  - setuid and setgid bits are stripped from checkpoint and volume parts (see keptMode for
 *    why the rootfs diff keeps them);
 *  - no more entries, content bytes or archive bytes than the sender declared (partLimits).
 * The extractor never writes through a link (see extractSafely).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ExtractionOutdated, TransferQuotaExceeded, UnsafeArchive } from '../../common/errors.js';
import type { PartLimits } from './protocol.js';

export { UnsafeArchive };

export type PartKind = 'checkpoint' | 'rootfs' | 'volume';

export interface EntryHeader {
  name: string;
  type?: string | null;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
}

/** A relative, normalised path inside the tree ("" for the tree's root), or UnsafeArchive. */
export function safeRelative(name: string): string {
  if (name.includes('\0')) throw new UnsafeArchive(`entry name with a NUL byte`);
  if (name.startsWith('/')) throw new UnsafeArchive(`absolute path in archive: ${name}`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new UnsafeArchive(`path with "..": ${name}`);
  return parts.join('/');
}

export type EntryAction =
  | { kind: 'file'; rel: string }
  | { kind: 'directory'; rel: string }
  | { kind: 'symlink'; rel: string; target: string }
  | { kind: 'hardlink'; rel: string; target: string }
  | { kind: 'whiteout'; rel: string }
  | { kind: 'fifo'; rel: string };

/** Decide what an archive entry may become; throws UnsafeArchive when it is refused. */
export function checkEntry(h: EntryHeader, kind: PartKind): EntryAction {
  const rel = safeRelative(h.name);
  const type = h.type ?? 'file';
  switch (type) {
    case 'file':
    case 'contiguous-file':
      if (rel === '') throw new UnsafeArchive('a file cannot be the archive root');
      return { kind: 'file', rel };
    case 'directory':
      return { kind: 'directory', rel };
    case 'symlink': {
      if (kind === 'checkpoint') throw new UnsafeArchive(`symlink refused in a checkpoint: ${rel}`);
      if (rel === '') throw new UnsafeArchive('a symlink cannot be the archive root');
      const target = h.linkname ?? '';
      if (target === '' || target.includes('\0')) throw new UnsafeArchive(`symlink ${rel} without a valid target`);
      if (target.startsWith('/')) {
        if (kind !== 'rootfs') throw new UnsafeArchive(`symlink ${rel} -> ${target} points outside the tree`);
        return { kind: 'symlink', rel, target };
      }
      const comps = target.split('/').filter((c) => c !== '' && c !== '.');
      const climbs = comps.findIndex((c) => c !== '..');
      const up = climbs < 0 ? comps.length : climbs;
      if (comps.slice(up).includes('..')) {
        throw new UnsafeArchive(`symlink ${rel} -> ${target} has ".." after a name (it could climb through another link)`);
      }
      const depth = rel.split('/').length - 1;
      if (up > depth) throw new UnsafeArchive(`symlink ${rel} -> ${target} escapes the tree`);
      return { kind: 'symlink', rel, target };
    }
    case 'link': {
      if (kind === 'checkpoint') throw new UnsafeArchive(`hard link refused in a checkpoint: ${rel}`);
      if (rel === '') throw new UnsafeArchive('a hard link cannot be the archive root');
      const target = safeRelative(h.linkname ?? '');
      if (target === '') throw new UnsafeArchive(`hard link ${rel} without a target`);
      return { kind: 'hardlink', rel, target };
    }
    case 'character-device':
      if (kind === 'rootfs' && (h.devmajor ?? 0) === 0 && (h.devminor ?? 0) === 0 && rel !== '') return { kind: 'whiteout', rel };
      throw new UnsafeArchive(`device file refused: ${rel} (char ${h.devmajor ?? 0}:${h.devminor ?? 0})`);
    case 'fifo':
      if (kind === 'checkpoint') throw new UnsafeArchive(`fifo refused in a checkpoint: ${rel}`);
      if (rel === '') throw new UnsafeArchive('a fifo cannot be the archive root');
      return { kind: 'fifo', rel };
    default:
      throw new UnsafeArchive(`entry type ${type} refused: ${rel}`);
  }
}

/**
 * The permission bits an extracted entry keeps. Setuid and setgid are dropped from checkpoint
 * parts (CRIU images are data, never executed) and from volumes (data that other containers,
 * with other images and users, may mount). The rootfs diff keeps them: it is the container's
 * own writable layer, Docker keeps these bits in every image layer and `docker load` too, and
 * a program the container installed (su, ping, sudo) must still work after the move; on the
 * host the diff is reachable only by root (the staging dir is 0700, overlay2's layer dirs
 * root-only), so the bits give nothing to anyone outside the container that the container did
 * not already have. The sticky bit is kept everywhere (shared /tmp-like directories).
 */
export function keptMode(mode: number, kind: PartKind): number {
  const m = mode & 0o7777;
  return kind === 'rootfs' ? m : m & ~0o6000;
}

/** Extended attributes that may be restored, per part kind. */
export function allowedXattr(name: string, kind: PartKind): boolean {
  if (name === 'trusted.overlay.opaque') return kind === 'rootfs';
  return name.startsWith('user.');
}

/**
 * Create the special nodes (FIFOs, whiteouts) of one part and set its extended attributes, in
 * one Python process (Node has neither mknod nor setxattr): at most one process per part,
 * whatever the archive holds. The process gets the part's root directory as fd 3 and walks
 * to each parent with O_NOFOLLOW, so no component can be a link; the nodes get their mode at
 * creation (umask 0) and their owner with fchownat(AT_SYMLINK_NOFOLLOW): no chmod follows a link.
 */
const NODE_HELPER = `
import json, os, stat, sys
os.umask(0)
job = json.load(sys.stdin)
dirs = {"": 3}
def at(rel):
    parts = rel.split("/")
    name = parts.pop()
    cur = ""
    fd = 3
    for p in parts:
        nxt = cur + "/" + p if cur else p
        if nxt not in dirs:
            dirs[nxt] = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        cur = nxt
        fd = dirs[cur]
    return fd, name
for n in job["nodes"]:
    fd, name = at(n["rel"])
    kind = stat.S_IFIFO if n["type"] == "fifo" else stat.S_IFCHR
    os.mknod(name, kind | n["mode"], os.makedev(0, 0), dir_fd=fd)
    os.chown(name, n["uid"], n["gid"], dir_fd=fd, follow_symlinks=False)
for x in job["xattrs"]:
    if x["rel"] == "":
        os.setxattr(3, x["name"], x["value"].encode())
        continue
    fd, name = at(x["rel"])
    os.setxattr("/proc/self/fd/%d/%s" % (fd, name), x["name"], x["value"].encode(), follow_symlinks=False)
`;

interface PendingNode {
  rel: string;
  type: 'fifo' | 'whiteout';
  mode: number;
  uid: number;
  gid: number;
}

function runNodeHelper(rootFd: number, nodes: PendingNode[], xattrs: { rel: string; name: string; value: string }[]): Promise<void> {
  if (nodes.length === 0 && xattrs.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const c = spawn('python3', ['-c', NODE_HELPER], { stdio: ['pipe', 'ignore', 'pipe', rootFd] });
    let err = '';
    c.stderr!.on('data', (d) => (err += String(d)));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`creating special files and xattrs: ${err.trim().split('\n').pop()}`))));
    c.stdin!.on('error', () => undefined); // an early exit is reported by 'close'
    c.stdin!.end(JSON.stringify({ nodes, xattrs }));
  });
}

export interface ExtractResult {
  bytes: number; // archive bytes read
  entries: number;
  payload_bytes: number; // file content bytes written
}

/** Files up to this size are written in one call once their content is in memory. */
const SMALL_FILE = 256 * 1024;
const BATCH_BYTES = 1024 * 1024;
/** Extended attributes one entry may carry (names and values; Linux allows 64 KiB per value). */
export const MAX_XATTR_BYTES_PER_ENTRY = 64 * 1024;
/** Extended attributes one transfer (all parts of a migration) may carry: they are held in memory until the part ends. */
export const MAX_XATTR_BYTES_PER_TRANSFER = 16 * 1024 * 1024;
/** Parent directories kept open at once (entries come grouped by directory). */
const OPEN_DIRS = 64;

/** Write all of `chunks` at the file's current offset, synchronously (short writes continue). */
function writeAll(fd: number, chunks: Buffer[]): void {
  const rest = chunks.slice();
  while (rest.length > 0) {
    let n = fs.writevSync(fd, rest);
    while (rest.length > 0 && n >= rest[0].length) n -= rest.shift()!.length;
    if (n > 0) rest[0] = rest[0].subarray(n);
  }
}

/** Counts bytes and stops the stream past `max`. */
export function byteLimiter(max: number, what = 'archive', onCount?: (n: number) => void): Transform & { bytes: number } {
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      t.bytes += chunk.length;
      onCount?.(t.bytes);
      if (t.bytes > max) cb(new TransferQuotaExceeded(`${what} larger than declared: over ${max} bytes`, { limit: max }));
      else cb(null, chunk);
    },
  }) as Transform & { bytes: number };
  t.bytes = 0;
  return t;
}

/** A GNU sparse file in the POSIX format (version 1.0, what `tar --sparse --format=posix` writes): its real name and size. */
export function sparseOf(h: { pax?: unknown }): { name: string; realSize: number } | null {
  const pax = (h.pax ?? {}) as Record<string, string>;
  if (!Object.keys(pax).some((k) => k.startsWith('GNU.sparse.'))) return null;
  if (pax['GNU.sparse.major'] !== '1' || pax['GNU.sparse.minor'] !== '0') {
    throw new UnsafeArchive(`sparse format ${pax['GNU.sparse.major'] ?? '0'}.${pax['GNU.sparse.minor'] ?? '?'} is not supported (only 1.0)`);
  }
  const name = pax['GNU.sparse.name'];
  const realSize = Number(pax['GNU.sparse.realsize']);
  if (!name || !/^\d{1,16}$/.test(pax['GNU.sparse.realsize'] ?? '') || !Number.isSafeInteger(realSize))
    throw new UnsafeArchive('sparse file without a valid name or size');
  return { name, realSize };
}

/**
 * Writes a sparse 1.0 entry's content: a map (decimal lines: the count of data segments, then
 * offset and size of each, padded to 512 bytes), then the segments' data one after another.
 * Each segment is written at its offset and the file is cut to its real size, so the holes
 * stay holes. The map is checked: segments in order, not overlapping, inside the real size,
 * and exactly as much data as the entry holds.
 */
export class SparseWriter {
  private mapText = '';
  private numbers: number[] = [];
  private segments: { offset: number; size: number }[] | null = null;
  private pad = 0;
  private current = 0;
  private doneInSegment = 0;
  private dataBytes = 0;
  private dataWritten = 0;

  constructor(
    private readonly fd: number,
    private readonly realSize: number,
    private readonly storedSize: number,
    private readonly rel: string,
  ) {}

  write(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.segments === null) {
        rest = this.readMap(rest);
        continue;
      }
      if (this.pad > 0) {
        const n = Math.min(this.pad, rest.length);
        this.pad -= n;
        rest = rest.subarray(n);
        continue;
      }
      const seg = this.segments[this.current];
      if (!seg) throw new UnsafeArchive(`${this.rel}: sparse data past its map`);
      if (seg.size === 0) {
        this.current++;
        continue;
      }
      const n = Math.min(seg.size - this.doneInSegment, rest.length);
      let written = 0;
      while (written < n) written += fs.writeSync(this.fd, rest, written, n - written, seg.offset + this.doneInSegment + written);
      this.doneInSegment += n;
      this.dataWritten += n;
      rest = rest.subarray(n);
      if (this.doneInSegment === seg.size) {
        this.current++;
        this.doneInSegment = 0;
      }
    }
  }

  end(): void {
    if (this.segments === null || this.pad > 0 || this.dataWritten !== this.dataBytes) throw new UnsafeArchive(`${this.rel}: sparse file cut short`);
    fs.ftruncateSync(this.fd, this.realSize);
  }

  private readMap(chunk: Buffer): Buffer {
    let i = 0;
    while (i < chunk.length && this.segments === null) {
      const c = chunk[i++];
      if (c !== 0x0a) {
        if (c < 0x30 || c > 0x39 || this.mapText.length >= 16) throw new UnsafeArchive(`${this.rel}: malformed sparse map`);
        this.mapText += String.fromCharCode(c);
        continue;
      }
      if (this.mapText === '') throw new UnsafeArchive(`${this.rel}: malformed sparse map`);
      this.numbers.push(Number(this.mapText));
      this.mapText = '';
      const count = this.numbers[0];
      if (count > this.storedSize / 2 + 1) throw new UnsafeArchive(`${this.rel}: sparse map of ${count} segments`);
      if (this.numbers.length === 1 + 2 * count) this.segments = this.checkedSegments();
    }
    return chunk.subarray(i);
  }

  private checkedSegments(): { offset: number; size: number }[] {
    const segments: { offset: number; size: number }[] = [];
    let end = 0;
    let data = 0;
    for (let k = 1; k < this.numbers.length; k += 2) {
      const offset = this.numbers[k];
      const size = this.numbers[k + 1];
      if (offset < end || offset + size > this.realSize) throw new UnsafeArchive(`${this.rel}: sparse map out of order or past the file's size`);
      end = offset + size;
      data += size;
      segments.push({ offset, size });
    }
    const mapBytes = this.numbers.reduce((a, n) => a + String(n).length + 1, 0);
    const mapBlocks = Math.ceil(mapBytes / 512) * 512;
    if (mapBlocks + data !== this.storedSize)
      throw new UnsafeArchive(`${this.rel}: sparse map says ${data} bytes of data, the entry holds ${this.storedSize - mapBlocks}`);
    this.pad = mapBlocks - mapBytes;
    this.dataBytes = data;
    return segments;
  }
}

export interface ExtractOptions {
  /** True once the plan this extraction belongs to was replaced or forgotten: it then stops with ExtractionOutdated. */
  outdated?: () => boolean;
  /** Extended-attribute bytes the whole transfer may still carry; shared by its parts and decreased here. */
  xattrBudget?: { left: number };
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;

/**
 * Unpack `input` (a tar stream) into `root`, which must be an empty or absent directory.
 * Owners, modes, times and allowed xattrs are kept.
 *
 * No operation follows a link, and nothing is written outside `root` even if the tree changes
 * under the extractor: every entry is reached from a descriptor of its parent directory
 * (/proc/self/fd/N/name, Node has no openat), each parent opened from the root with
 * O_NOFOLLOW, files created with O_EXCL|O_NOFOLLOW, and owners, modes and times set on
 * descriptors (or with lchown for links). After every await the extraction asks whether it
 * is outdated (its plan was replaced or forgotten) and stops with ExtractionOutdated.
 */
export async function extractSafely(input: Readable, root: string, kind: PartKind, limits: PartLimits, opts: ExtractOptions = {}): Promise<ExtractResult> {
  fs.mkdirSync(root, { recursive: true });
  const rootFd = fs.openSync(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  const limiter = byteLimiter(limits.maxTarBytes, 'archive');
  const extract = tar.extract();
  const openDirs = new Map<string, number>([['', rootFd]]);
  const dirMeta: { rel: string; mode: number; uid: number; gid: number; mtime: Date | undefined }[] = [];
  const nodes = new Map<string, PendingNode>();
  const xattrs: { rel: string; name: string; value: string }[] = [];
  const budget = opts.xattrBudget ?? { left: MAX_XATTR_BYTES_PER_TRANSFER };
  let entries = 0;
  let payload = 0;

  const checkCurrent = () => {
    if (opts.outdated?.()) throw new ExtractionOutdated(`extraction into ${path.basename(root)} stopped: its plan was replaced or forgotten`);
  };
  const viaFd = (fd: number, name: string) => `/proc/self/fd/${fd}/${name}`;
  /** The open directory `rel` ("" = root), created (0700 until its own entry says otherwise) when missing; never through a link. */
  const dirFd = (rel: string): number => {
    const known = openDirs.get(rel);
    if (known !== undefined) {
      openDirs.delete(rel); // most recently used last
      openDirs.set(rel, known);
      return known;
    }
    const cut = rel.lastIndexOf('/');
    const parent = dirFd(cut < 0 ? '' : rel.slice(0, cut));
    const name = rel.slice(cut + 1);
    const p = viaFd(parent, name);
    let fd: number;
    try {
      fd = fs.openSync(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !nodes.has(rel)) {
        fs.mkdirSync(p, { mode: 0o755 });
        fd = fs.openSync(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } else if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') {
        throw new UnsafeArchive(`${rel} is not a directory (a link or file is in the way)`);
      } else {
        throw e;
      }
    }
    openDirs.set(rel, fd);
    return fd;
  };
  /**
   * Close the least recently used directories past OPEN_DIRS. Only between entries: a path
   * made by `at` names its descriptor's number, which must not be reused while it is in use.
   */
  const trimOpenDirs = () => {
    for (const [r, f] of openDirs) {
      if (openDirs.size <= OPEN_DIRS) break;
      if (r === '') continue;
      fs.closeSync(f);
      openDirs.delete(r);
    }
  };
  /** The path of entry `rel` through its parent's descriptor. */
  const at = (rel: string): string => {
    const cut = rel.lastIndexOf('/');
    return viaFd(dirFd(cut < 0 ? '' : rel.slice(0, cut)), rel.slice(cut + 1));
  };
  /** Make room for a non-directory entry (a later entry wins, as with tar). */
  const clearFor = (p: string, rel: string) => {
    nodes.delete(rel);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) throw new UnsafeArchive(`${rel}: a directory is already there`);
    fs.unlinkSync(p);
  };
  const forgetDir = (rel: string) => {
    for (const [r, f] of openDirs) {
      if (r !== '' && (r === rel || r.startsWith(`${rel}/`))) {
        fs.closeSync(f);
        openDirs.delete(r);
      }
    }
  };

  const consume = (async () => {
    for await (const entry of extract) {
      checkCurrent();
      trimOpenDirs();
      const h = entry.header;
      const sparse = sparseOf(h);
      const action = checkEntry(sparse ? { ...h, name: sparse.name } : h, kind);
      if (sparse && action.kind !== 'file') throw new UnsafeArchive(`${action.rel}: sparse entry that is not a file`);
      // A sparse file counts with its full size, as the sender declared it.
      const contentBytes = sparse ? sparse.realSize : (h.size ?? 0);
      entries++;
      if (entries > limits.maxEntries)
        throw new TransferQuotaExceeded(`archive has more entries than the ${limits.maxEntries} declared`, { limit: limits.maxEntries });
      if (action.kind === 'file' && payload + contentBytes > limits.maxPayloadBytes) {
        throw new TransferQuotaExceeded(`archive has more content than the ${limits.maxPayloadBytes} bytes declared`, { limit: limits.maxPayloadBytes });
      }
      let entryXattrBytes = 0;
      const entryXattrs: { name: string; value: string }[] = [];
      for (const [k, v] of Object.entries(h.pax ?? {})) {
        if (!k.startsWith('SCHILY.xattr.')) continue;
        const name = k.slice('SCHILY.xattr.'.length);
        entryXattrBytes += Buffer.byteLength(name) + Buffer.byteLength(v);
        if (allowedXattr(name, kind)) entryXattrs.push({ name, value: v });
      }
      if (entryXattrBytes > MAX_XATTR_BYTES_PER_ENTRY) {
        throw new TransferQuotaExceeded(
          `${action.rel || '.'} carries ${entryXattrBytes} bytes of extended attributes, over the limit of ${MAX_XATTR_BYTES_PER_ENTRY} per entry`,
          {
            limit: MAX_XATTR_BYTES_PER_ENTRY,
          },
        );
      }
      budget.left -= entryXattrBytes;
      if (budget.left < 0) {
        throw new TransferQuotaExceeded(
          `the transfer carries more than ${MAX_XATTR_BYTES_PER_TRANSFER} bytes of extended attributes, the limit per migration`,
          {
            limit: MAX_XATTR_BYTES_PER_TRANSFER,
          },
        );
      }
      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      const mode = keptMode(h.mode ?? 0o644, kind);
      switch (action.kind) {
        case 'file': {
          const p = at(action.rel);
          clearFor(p, action.rel);
          const fd = fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
          try {
            // Most CRIU images are a few KiB: one synchronous write beats a write stream's round
            // trips. Large ones go in ~1 MiB batches: the TLS socket delivers 16-64 KiB chunks, and
            // one asynchronous write per chunk cost more CPU than the decryption and the digest.
            const small = (h.size ?? 0) <= SMALL_FILE;
            let batch: Buffer[] = [];
            let size = 0;
            const holes = sparse ? new SparseWriter(fd, sparse.realSize, h.size ?? 0, action.rel) : null;
            for await (const c of entry) {
              checkCurrent();
              if (holes) {
                holes.write(c as Buffer);
                continue;
              }
              batch.push(c as Buffer);
              size += (c as Buffer).length;
              if (!small && (size >= BATCH_BYTES || batch.length >= 512)) {
                writeAll(fd, batch);
                batch = [];
                size = 0;
              }
            }
            checkCurrent();
            writeAll(fd, batch);
            holes?.end();
            fs.fchownSync(fd, uid, gid);
            fs.fchmodSync(fd, mode);
            if (h.mtime) fs.futimesSync(fd, h.mtime, h.mtime);
          } finally {
            fs.closeSync(fd);
          }
          payload += contentBytes;
          break;
        }
        case 'directory': {
          entry.resume();
          if (action.rel !== '') {
            const p = at(action.rel);
            const st = fs.lstatSync(p, { throwIfNoEntry: false });
            if (st && !st.isDirectory()) throw new UnsafeArchive(`${action.rel}: not a directory on disk`);
            if (nodes.has(action.rel)) throw new UnsafeArchive(`${action.rel}: a special file is already there`);
            if (!st) fs.mkdirSync(p, { mode: 0o700 });
          }
          dirMeta.push({ rel: action.rel, mode, uid, gid, mtime: h.mtime });
          break;
        }
        case 'symlink': {
          entry.resume();
          const p = at(action.rel);
          clearFor(p, action.rel);
          forgetDir(action.rel);
          fs.symlinkSync(action.target, p);
          fs.lchownSync(p, uid, gid);
          break;
        }
        case 'hardlink': {
          entry.resume();
          const target = at(action.target);
          const st = fs.lstatSync(target, { throwIfNoEntry: false });
          if (!st || !st.isFile()) throw new UnsafeArchive(`hard link ${action.rel} -> ${action.target}: target is not a file in the tree`);
          const p = at(action.rel);
          clearFor(p, action.rel);
          fs.linkSync(target, p); // link(2) does not follow a link named by its first path
          break;
        }
        case 'whiteout':
        case 'fifo': {
          entry.resume();
          const p = at(action.rel);
          clearFor(p, action.rel);
          forgetDir(action.rel);
          nodes.set(action.rel, { rel: action.rel, type: action.kind, mode: action.kind === 'fifo' ? mode & 0o1777 : 0, uid, gid });
          break;
        }
      }
      for (const x of entryXattrs) xattrs.push({ rel: action.rel, ...x });
    }
  })();

  try {
    try {
      await Promise.all([pipeline(input, limiter, extract), consume]);
    } catch (e) {
      // Make sure both sides stop.
      extract.destroy();
      input.destroy();
      await consume.catch(() => undefined);
      throw e;
    }
    checkCurrent();
    await runNodeHelper(rootFd, [...nodes.values()], xattrs);
    checkCurrent();
    // Directory metadata last (deepest first), so read-only dirs do not block their children.
    for (const d of dirMeta.reverse()) {
      trimOpenDirs();
      const fd = dirFd(d.rel);
      fs.fchownSync(fd, d.uid, d.gid);
      fs.fchmodSync(fd, d.mode);
      if (d.mtime) fs.futimesSync(fd, d.mtime, d.mtime);
    }
  } finally {
    for (const fd of openDirs.values()) fs.closeSync(fd);
  }
  return { bytes: limiter.bytes, entries, payload_bytes: payload };
}
