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
 * The extractor never writes through a link: every parent directory is checked with lstat.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { TransferQuotaExceeded, UnsafeArchive } from '../../common/errors.js';
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

function mknod(p: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('mknod', [p, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += String(d)));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`mknod ${p}: ${err.trim()}`))));
  });
}

/** Set xattrs with Python (Node has no setxattr); rare: only opaque directories and user.* attributes. */
function setXattrs(items: { path: string; name: string; value: string }[]): Promise<void> {
  if (items.length === 0) return Promise.resolve();
  const py = 'import json,os,sys\nfor i in json.load(sys.stdin): os.setxattr(i["path"], i["name"], i["value"].encode(), follow_symlinks=False)';
  return new Promise((resolve, reject) => {
    const c = spawn('python3', ['-c', py], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += String(d)));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`setxattr: ${err.trim()}`))));
    c.stdin.end(JSON.stringify(items));
  });
}

export interface ExtractResult {
  bytes: number; // archive bytes read
  entries: number;
  payload_bytes: number; // file content bytes written
}

/** Files up to this size are written in one call once their content is in memory. */
const SMALL_FILE = 256 * 1024;

/**
 * Write a large entry in batches of about 1 MiB, synchronously: the TLS socket delivers 16-64 KiB
 * chunks, and one asynchronous write per chunk cost more CPU than the decryption and the digest
 * (memory images of ~100 MB arrive while the container is frozen).
 */
async function writeBatched(entry: AsyncIterable<unknown>, abs: string): Promise<void> {
  const fd = fs.openSync(abs, 'wx', 0o600);
  try {
    let batch: Buffer[] = [];
    let size = 0;
    const flush = () => {
      const rest = batch;
      while (rest.length > 0) {
        let n = fs.writevSync(fd, rest);
        // A short write leaves the rest for the next call.
        while (rest.length > 0 && n >= rest[0].length) n -= rest.shift()!.length;
        if (n > 0) rest[0] = rest[0].subarray(n);
      }
      batch = [];
      size = 0;
    };
    for await (const c of entry) {
      batch.push(c as Buffer);
      size += (c as Buffer).length;
      if (size >= BATCH_BYTES || batch.length >= 512) flush();
    }
    flush();
  } finally {
    fs.closeSync(fd);
  }
}

const BATCH_BYTES = 1024 * 1024;

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

/**
 * Unpack `input` (a tar stream) into `root`, which must be an empty or absent directory.
 * Owners, modes, times and allowed xattrs are kept.
 */
export async function extractSafely(input: Readable, root: string, kind: PartKind, limits: PartLimits): Promise<ExtractResult> {
  fs.mkdirSync(root, { recursive: true });
  const realRoot = fs.realpathSync(root);
  const limiter = byteLimiter(limits.maxTarBytes, 'archive');
  const extract = tar.extract();
  const dirsOk = new Set<string>(['']);
  const dirMeta: { p: string; mode: number; uid: number; gid: number; mtime: Date | undefined }[] = [];
  const xattrs: { path: string; name: string; value: string }[] = [];
  let entries = 0;
  let payload = 0;

  const ensureParents = (rel: string) => {
    const parts = rel.split('/');
    parts.pop();
    let cur = '';
    for (const part of parts) {
      cur = cur ? `${cur}/${part}` : part;
      if (dirsOk.has(cur)) continue;
      const abs = path.join(realRoot, cur);
      let st: fs.Stats | null = null;
      try {
        st = fs.lstatSync(abs);
      } catch {
        st = null;
      }
      if (!st) fs.mkdirSync(abs, { mode: 0o755 });
      else if (!st.isDirectory()) throw new UnsafeArchive(`${rel}: parent ${cur} is not a directory (a link or file is in the way)`);
      dirsOk.add(cur);
    }
  };
  /** Make room for a non-directory entry at `abs` (a later entry wins, as with tar). */
  const clearFor = (abs: string, rel: string) => {
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    if (st.isDirectory()) throw new UnsafeArchive(`${rel}: a directory is already there`);
    fs.unlinkSync(abs);
    dirsOk.delete(rel);
  };

  const consume = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const action = checkEntry(h, kind);
      entries++;
      if (entries > limits.maxEntries) throw new TransferQuotaExceeded(`archive has more entries than the ${limits.maxEntries} declared`, { limit: limits.maxEntries });
      if (action.kind === 'file' && payload + (h.size ?? 0) > limits.maxPayloadBytes) {
        throw new TransferQuotaExceeded(`archive has more content than the ${limits.maxPayloadBytes} bytes declared`, { limit: limits.maxPayloadBytes });
      }
      const abs = action.rel === '' ? realRoot : path.join(realRoot, action.rel);
      if (action.rel !== '') ensureParents(action.rel);
      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      const mode = keptMode(h.mode ?? 0o644, kind);
      switch (action.kind) {
        case 'file': {
          clearFor(abs, action.rel);
          if ((h.size ?? 0) <= SMALL_FILE) {
            // Most CRIU images are a few KiB: one synchronous write beats a write stream's round trips.
            const chunks: Buffer[] = [];
            for await (const c of entry) chunks.push(c as Buffer);
            fs.writeFileSync(abs, Buffer.concat(chunks), { flag: 'wx', mode: 0o600 });
          } else {
            await writeBatched(entry, abs);
          }
          payload += h.size ?? 0;
          fs.chownSync(abs, uid, gid);
          fs.chmodSync(abs, mode);
          if (h.mtime) fs.utimesSync(abs, h.mtime, h.mtime);
          break;
        }
        case 'directory': {
          entry.resume();
          let st: fs.Stats | null = null;
          try {
            st = fs.lstatSync(abs);
          } catch {
            st = null;
          }
          if (st && !st.isDirectory()) throw new UnsafeArchive(`${action.rel}: not a directory on disk`);
          if (!st) fs.mkdirSync(abs, { mode: 0o700 });
          dirsOk.add(action.rel);
          dirMeta.push({ p: abs, mode, uid, gid, mtime: h.mtime });
          break;
        }
        case 'symlink':
          entry.resume();
          clearFor(abs, action.rel);
          fs.symlinkSync(action.target, abs);
          fs.lchownSync(abs, uid, gid);
          break;
        case 'hardlink': {
          entry.resume();
          const target = path.join(realRoot, action.target);
          ensureParents(action.target);
          const st = fs.lstatSync(target, { throwIfNoEntry: false });
          if (!st || !st.isFile()) throw new UnsafeArchive(`hard link ${action.rel} -> ${action.target}: target is not a file in the tree`);
          clearFor(abs, action.rel);
          fs.linkSync(target, abs);
          break;
        }
        case 'whiteout':
        case 'fifo':
          entry.resume();
          clearFor(abs, action.rel);
          await mknod(abs, action.kind === 'whiteout' ? ['c', '0', '0'] : ['p']);
          fs.lchownSync(abs, uid, gid);
          if (action.kind === 'fifo') fs.chmodSync(abs, mode);
          break;
      }
      for (const [k, v] of Object.entries(h.pax ?? {})) {
        if (!k.startsWith('SCHILY.xattr.')) continue;
        const name = k.slice('SCHILY.xattr.'.length);
        if (allowedXattr(name, kind)) xattrs.push({ path: abs, name, value: v });
      }
    }
  })();

  try {
    await Promise.all([pipeline(input, limiter, extract), consume]);
  } catch (e) {
    // Make sure both sides stop.
    extract.destroy();
    input.destroy();
    await consume.catch(() => undefined);
    throw e;
  }
  // Directory metadata last (deepest first), so read-only dirs do not block their children.
  for (const d of dirMeta.reverse()) {
    fs.chownSync(d.p, d.uid, d.gid);
    fs.chmodSync(d.p, d.mode);
    if (d.mtime) fs.utimesSync(d.p, d.mtime, d.mtime);
  }
  await setXattrs(xattrs);
  return { bytes: limiter.bytes, entries, payload_bytes: payload };
}
