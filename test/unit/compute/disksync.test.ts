import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { TransferCorrupted, InvalidInput } from '../../../src/common/errors.js';
import { anotherRound, blockHashes, fileDigest, manifestProblems, planRound, type EntryState } from '../../../src/compute/disksync/delta.js';
import { DeltaMirror, DeltaSource, parseDeltaSpec, scanTree } from '../../../src/compute/disksync/tree.js';

const st = (over: Partial<EntryState> = {}): EntryState => ({
  type: 'file',
  size: 10,
  mtimeMs: 1,
  ctimeMs: 1,
  ino: 1,
  mode: 0o100644,
  uid: 0,
  gid: 0,
  ...over,
});

describe('planRound', () => {
  test('first round: everything whole, parents first', () => {
    const now = new Map([
      ['a/b', st()],
      ['a', st({ type: 'dir' })],
      ['big', st({ size: 5 << 20 })],
    ]);
    expect(planRound(new Map(), now)).toEqual({ whole: ['a', 'a/b', 'big'], blocks: [], removed: [] });
  });

  test('unchanged entries stay; a changed small file travels whole, a changed large one as blocks', () => {
    const sent = new Map([
      ['same', st()],
      ['small', st()],
      ['big', st({ size: 5 << 20 })],
    ]);
    const now = new Map([
      ['same', st()],
      ['small', st({ mtimeMs: 2 })],
      ['big', st({ size: 5 << 20, ctimeMs: 2 })],
    ]);
    expect(planRound(sent, now)).toEqual({ whole: ['small'], blocks: ['big'], removed: [] });
  });

  test('a file that grew past the large size was sent whole before: its blocks travel; a new large one goes whole', () => {
    const sent = new Map([['grew', st({ size: 10 })]]);
    const now = new Map([
      ['grew', st({ size: 2 << 20, mtimeMs: 3 })],
      ['fresh', st({ size: 2 << 20 })],
    ]);
    expect(planRound(sent, now)).toEqual({ whole: ['fresh'], blocks: ['grew'], removed: [] });
  });

  test('removals: the topmost gone entry only; a type change and a directory made anew are removed, then sent whole', () => {
    const sent = new Map([
      ['d', st({ type: 'dir' })],
      ['d/x', st()],
      ['d/y', st()],
      ['f', st()],
      ['w', st()],
      ['r', st({ type: 'dir', ino: 7 })],
      ['r/old', st()],
    ]);
    const now = new Map([
      ['w', st({ type: 'whiteout', size: 0 })],
      ['f', st()],
      ['r', st({ type: 'dir', ino: 8 })],
    ]);
    expect(planRound(sent, now)).toEqual({ whole: ['r', 'w'], blocks: [], removed: ['d', 'r', 'w'] });
  });
});

test('anotherRound: while the bytes shrink, up to the most rounds, until nothing changed', () => {
  expect(anotherRound([], 3)).toBe(true);
  expect(anotherRound([], 0)).toBe(false);
  expect(anotherRound([100], 3)).toBe(true);
  expect(anotherRound([100, 10], 3)).toBe(true);
  expect(anotherRound([100, 10, 5], 3)).toBe(false); // the most rounds
  expect(anotherRound([100, 100], 5)).toBe(false); // the writes keep up with the copy
  expect(anotherRound([100, 0], 5)).toBe(false); // nothing changed
  expect(anotherRound([100, 4096], 5, 8192)).toBe(false); // small enough for the freeze
});

test('block hashes and file digests', () => {
  const data = crypto.randomBytes(150);
  const h = blockHashes(data, 64);
  expect(h).toHaveLength(3);
  expect(h[2]).toBe(crypto.createHash('sha256').update(data.subarray(128)).digest('hex'));
  expect(blockHashes(Buffer.alloc(0), 64)).toHaveLength(1);
  expect(fileDigest(h)).not.toBe(fileDigest(blockHashes(Buffer.concat([data, Buffer.from('x')]), 64)));
});

test('manifestProblems names what is missing, extra, of another type, size or content', () => {
  const want = {
    a: { type: 'file' as const, size: 1, digest: 'aa' },
    b: { type: 'dir' as const, size: 0 },
    c: { type: 'file' as const, size: 2, digest: 'cc' },
  };
  expect(manifestProblems(want, { ...want })).toEqual([]);
  const problems = manifestProblems(want, { a: { type: 'file', size: 1, digest: 'ab' }, b: { type: 'file', size: 0 }, z: { type: 'symlink', size: 0 } });
  expect(problems).toEqual(['a differs in content (sha256 ab, not aa)', 'b is a file, not a dir', 'c is missing', 'z should not be there']);
  expect(
    manifestProblems({ x: { type: 'dir', size: 0 } }, { x: { type: 'dir', size: 0 }, y: { type: 'dir', size: 0 }, z: { type: 'dir', size: 0 } }, 1),
  ).toEqual(['y should not be there', 'and 1 more']);
});

test('parseDeltaSpec refuses paths that climb and blocks past the end', () => {
  const ok = {
    block_bytes: 65536,
    reset: false,
    placed: ['a'],
    removed: [],
    patches: [{ path: 'f', size: 70000, indices: [1], mode: 0o644, uid: 0, gid: 0, mtimeMs: 1 }],
  };
  expect(parseDeltaSpec(ok).patches[0].indices).toEqual([1]);
  expect(() => parseDeltaSpec({ ...ok, removed: ['../etc'] })).toThrow(/\.\./);
  expect(() => parseDeltaSpec({ ...ok, patches: [{ ...ok.patches[0], indices: [2] }] })).toThrow(InvalidInput);
  expect(() => parseDeltaSpec({ ...ok, block_bytes: 1 })).toThrow(/block_bytes/);
});

describe('rounds between two trees on this host', () => {
  let tmp: string;
  let src: string;
  let n = 0;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'disksync-'));
    src = path.join(tmp, 'src');
    fs.mkdirSync(src);
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const BLOCK = 4096;
  const LARGE = 16 * 1024;
  async function round(source: DeltaSource, mirror: DeltaMirror, final = false) {
    const out = path.join(tmp, `round-${n++}`);
    const r = await source.round(out, final);
    await mirror.apply(out);
    const spec = JSON.parse(fs.readFileSync(path.join(out, 'delta.json'), 'utf8'));
    return { ...r, manifest: spec.manifest };
  }

  /** Every entry's type, owner, mode and content (files) or target (links), for comparing two trees. */
  function describeTree(root: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [r, s] of scanTree(root)) {
      const p = path.join(root, r);
      const what = s.type === 'file' ? crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') : s.type === 'symlink' ? fs.readlinkSync(p) : '';
      out[r] = `${s.type} ${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)} ${what}`;
    }
    return out;
  }

  test('a live tree converges: blocks of large files, deletions, whiteouts, owners and modes; the manifest matches', async () => {
    fs.mkdirSync(path.join(src, 'data/base'), { recursive: true });
    fs.chownSync(path.join(src, 'data'), 999, 999);
    fs.chmodSync(path.join(src, 'data'), 0o700);
    fs.chmodSync(src, 0o751);
    const table = path.join(src, 'data/base/16384');
    fs.writeFileSync(table, crypto.randomBytes(20 * BLOCK));
    fs.writeFileSync(path.join(src, 'data/small'), 'hello');
    fs.mkdirSync(path.join(src, 'gone/deep'), { recursive: true });
    fs.writeFileSync(path.join(src, 'gone/deep/x'), 'x');
    fs.writeFileSync(path.join(src, 'etc-file'), 'lower copy');
    fs.symlinkSync('data/small', path.join(src, 'link'));
    const source = new DeltaSource(src, { blockBytes: BLOCK, largeFile: LARGE });
    const mirror = new DeltaMirror(path.join(tmp, 'mirror'));

    const first = await round(source, mirror);
    expect(first.bytes).toBe(20 * BLOCK + 5 + 1 + 10);

    // The container writes on: one block in the middle, an append, a deletion, a whiteout, a new file.
    const fd = fs.openSync(table, 'r+');
    fs.writeSync(fd, Buffer.alloc(100, 7), 0, 100, 5 * BLOCK + 10);
    fs.closeSync(fd);
    fs.appendFileSync(table, Buffer.alloc(BLOCK + 1, 9));
    fs.rmSync(path.join(src, 'gone'), { recursive: true });
    fs.rmSync(path.join(src, 'etc-file'));
    execFileSync('mknod', [path.join(src, 'etc-file'), 'c', '0', '0']);
    fs.writeFileSync(path.join(src, 'data/new'), 'new');
    fs.chownSync(path.join(src, 'data/new'), 999, 999);

    const second = await round(source, mirror);
    // Block 5, the old last block (now full... it was full: unchanged), two appended blocks; and the small new file.
    expect(second.bytes).toBe(BLOCK + BLOCK + 1 + 3);
    expect(second.removed).toBe(2);

    fs.appendFileSync(path.join(src, 'data/small'), '!');
    const last = await round(source, mirror, true);
    expect(last.bytes).toBe(6);
    expect(() => mirror.verify(last.manifest, BLOCK)).not.toThrow();
    expect(describeTree(mirror.root)).toEqual(describeTree(src));
    expect(fs.lstatSync(path.join(mirror.root, 'etc-file')).isCharacterDevice()).toBe(true);
    expect(fs.lstatSync(path.join(mirror.root, 'data')).mode & 0o7777).toBe(0o700);
    expect(fs.lstatSync(mirror.root).mode & 0o7777).toBe(0o751);
  });

  test("a socket's file does not travel and is not asked for (PostgreSQL's /tmp/.s.PGSQL.5432)", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(src, 'sock'), resolve));
    try {
      fs.writeFileSync(path.join(src, 'f'), 'x');
      const source = new DeltaSource(src, { blockBytes: BLOCK, largeFile: LARGE });
      const mirror = new DeltaMirror(path.join(tmp, 'mirror'));
      const last = await round(source, mirror, true);
      expect(Object.keys(last.manifest)).toEqual(['f']);
      expect(() => mirror.verify(last.manifest, BLOCK)).not.toThrow();
    } finally {
      server.close();
    }
  });

  test('a copy changed on the target after it was written fails the check, naming the file', async () => {
    fs.writeFileSync(path.join(src, 'big'), crypto.randomBytes(8 * BLOCK));
    const source = new DeltaSource(src, { blockBytes: BLOCK, largeFile: LARGE });
    const mirror = new DeltaMirror(path.join(tmp, 'mirror'));
    await round(source, mirror);
    const last = await round(source, mirror, true);
    expect(() => mirror.verify(last.manifest, BLOCK)).not.toThrow();
    // Same size, same mtime: only the content (and the ctime) moved.
    const staged = path.join(mirror.root, 'big');
    const { atime, mtime } = fs.statSync(staged);
    const fd = fs.openSync(staged, 'r+');
    fs.writeSync(fd, Buffer.from('corrupt'), 0, 7, 3 * BLOCK);
    fs.closeSync(fd);
    fs.utimesSync(staged, atime, mtime);
    expect(() => mirror.verify(last.manifest, BLOCK)).toThrow(TransferCorrupted);
    expect(() => mirror.verify(last.manifest, BLOCK)).toThrow(/big differs in content/);
  });

  test('blocks cut short in transit are refused', async () => {
    fs.writeFileSync(path.join(src, 'big'), crypto.randomBytes(8 * BLOCK));
    const source = new DeltaSource(src, { blockBytes: BLOCK, largeFile: LARGE });
    const mirror = new DeltaMirror(path.join(tmp, 'mirror'));
    await round(source, mirror);
    fs.appendFileSync(path.join(src, 'big'), Buffer.alloc(BLOCK, 1));
    const out = path.join(tmp, 'cut');
    await source.round(out, false);
    fs.truncateSync(path.join(out, 'blocks/0'), 100);
    await expect(mirror.apply(out)).rejects.toThrow(/short/);
  });

  test('a delta never follows a symlink of the copy out of it', async () => {
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'victim'), 'keep');
    const mirror = new DeltaMirror(path.join(tmp, 'mirror'));
    fs.symlinkSync(outside, path.join(mirror.root, 'l'));
    const out = path.join(tmp, 'evil');
    fs.mkdirSync(path.join(out, 'entries'), { recursive: true });
    fs.writeFileSync(path.join(out, 'delta.json'), JSON.stringify({ block_bytes: BLOCK, reset: false, placed: [], removed: ['l/victim'], patches: [] }));
    await expect(mirror.apply(out)).rejects.toThrow(TransferCorrupted);
    expect(fs.readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('keep');
  });
});
