/**
 * extractSafely on real files (real tar streams, real FIFOs and whiteouts; the unit tests run
 * as root): nothing is written, created, chmod-ed or chown-ed through a link, even when the
 * tree changes under a running extraction (what a second plan racing the first did); an
 * outdated extraction stops with ExtractionOutdated; extended attributes are bounded.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, expect, test } from '@jest/globals';
import tar from 'tar-stream';
import { ExtractionOutdated, TransferQuotaExceeded, UnsafeArchive } from '../../../src/common/errors.js';
import { partLimits } from '../../../src/compute/datachannel/protocol.js';
import { MAX_XATTR_BYTES_PER_ENTRY, extractSafely } from '../../../src/compute/datachannel/tarsafe.js';
import { sleep } from '../../../src/common/sleep.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-tarx-'));
let n = 0;

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fresh staging folder and a fresh "outside" folder (0700, holding one 0600 file). */
function dirs(): { root: string; outside: string; victim: string } {
  n++;
  const root = path.join(tmp, `root${n}`);
  const outside = fs.mkdtempSync(path.join(tmp, `outside${n}-`));
  const victim = path.join(outside, 'victim');
  fs.writeFileSync(victim, 'keep\n', { mode: 0o600 });
  return { root, outside, victim };
}

/** What `outside` holds and the modes, to compare before and after. */
function snapshot(outside: string): string[] {
  const out = [`. ${(fs.lstatSync(outside).mode & 0o7777).toString(8)}`];
  for (const e of (fs.readdirSync(outside, { recursive: true }) as string[]).sort()) {
    const st = fs.lstatSync(path.join(outside, e));
    out.push(`${e} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
  }
  return out;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  expect(cond()).toBe(true);
}

const limits = partLimits({ bytes: 1_000_000, entries: 1000 });

test('the tree changes under a running extraction (a folder becomes a link out): nothing is written, created or chmod-ed through it', async () => {
  const { root, outside, victim } = dirs();
  const before = snapshot(outside);
  const pack = tar.pack();
  pack.entry({ name: 'a', type: 'directory', mode: 0o777, uid: 1234, gid: 1234 });
  pack.entry({ name: 'a/1', mode: 0o644 }, 'one');
  const run = extractSafely(pack as unknown as Readable, root, 'rootfs', limits);
  run.catch(() => undefined);
  await until(() => fs.existsSync(path.join(root, 'a', '1')));
  // What a second extraction into the same folder did when a new plan did not wait for this one.
  fs.rmSync(path.join(root, 'a'), { recursive: true });
  fs.symlinkSync(outside, path.join(root, 'a'));
  pack.entry({ name: 'a/2', mode: 0o666 }, 'two');
  pack.entry({ name: 'a/victim', type: 'link', linkname: 'a/1' });
  pack.entry({ name: 'a/p', type: 'fifo', mode: 0o666 });
  pack.entry({ name: 'a/w', type: 'character-device', devmajor: 0, devminor: 0 });
  pack.finalize();
  await expect(run).rejects.toThrow();
  expect(snapshot(outside)).toEqual(before);
  expect(fs.readFileSync(victim, 'utf8')).toBe('keep\n');
});

test('entry order: a link, then entries through it or in its place; nothing outside changes', async () => {
  const { root, outside, victim } = dirs();
  const before = snapshot(outside);
  const through = [
    { name: 'a/x', mode: 0o666 },
    { name: 'a/p', type: 'fifo' as const, mode: 0o666 },
    { name: 'a/w', type: 'character-device' as const, devmajor: 0, devminor: 0 },
    { name: 'a/d', type: 'directory' as const, mode: 0o777 },
    { name: 'a', type: 'directory' as const, mode: 0o777 },
    { name: 'a/victim', type: 'symlink' as const, linkname: '/etc/passwd' },
  ];
  for (const e of through) {
    const pack = tar.pack();
    pack.entry({ name: 'a', type: 'symlink', linkname: outside });
    if (e.type === undefined) pack.entry(e, 'x');
    else pack.entry(e);
    pack.finalize();
    await expect(extractSafely(pack as unknown as Readable, path.join(root, e.name.replace(/\W/g, '_')), 'rootfs', limits)).rejects.toThrow(UnsafeArchive);
  }
  // In the link's place: the link goes, the node is made there, its mode is its own.
  const pack = tar.pack();
  pack.entry({ name: 'p', type: 'symlink', linkname: victim });
  pack.entry({ name: 'w', type: 'symlink', linkname: victim });
  pack.entry({ name: 'f', type: 'symlink', linkname: victim });
  pack.entry({ name: 'p', type: 'fifo', mode: 0o666, uid: 1234, gid: 1234 });
  pack.entry({ name: 'w', type: 'character-device', devmajor: 0, devminor: 0, uid: 1234 });
  pack.entry({ name: 'f', mode: 0o666, uid: 1234 }, 'new');
  pack.finalize();
  const ok = path.join(root, 'ok');
  await extractSafely(pack as unknown as Readable, ok, 'rootfs', limits);
  expect(fs.lstatSync(path.join(ok, 'p')).isFIFO()).toBe(true);
  expect(fs.lstatSync(path.join(ok, 'p')).mode & 0o777).toBe(0o666);
  expect(fs.lstatSync(path.join(ok, 'p')).uid).toBe(1234);
  expect(fs.lstatSync(path.join(ok, 'w')).isCharacterDevice()).toBe(true);
  expect(fs.lstatSync(path.join(ok, 'w')).rdev).toBe(0);
  expect(fs.readFileSync(path.join(ok, 'f'), 'utf8')).toBe('new');
  expect(snapshot(outside)).toEqual(before);
  expect(fs.readFileSync(victim, 'utf8')).toBe('keep\n');
});

test('an outdated extraction stops at its next await with ExtractionOutdated and writes nothing more', async () => {
  const { root } = dirs();
  let outdated = false;
  const pack = tar.pack();
  pack.entry({ name: 'a/1' }, 'one');
  const run = extractSafely(pack as unknown as Readable, root, 'volume', limits, { outdated: () => outdated });
  run.catch(() => undefined);
  await until(() => fs.existsSync(path.join(root, 'a', '1')));
  outdated = true;
  pack.entry({ name: 'a/2' }, 'two');
  pack.entry({ name: 'b', type: 'directory' });
  pack.finalize();
  await expect(run).rejects.toThrow(ExtractionOutdated);
  expect(fs.readdirSync(root, { recursive: true }).sort()).toEqual(['a', 'a/1']);
});

test('many FIFOs (made by one helper process per part), nested folders and files: all made, with their modes and owners', async () => {
  const { root } = dirs();
  const pack = tar.pack();
  for (let d = 0; d < 100; d++) {
    pack.entry({ name: `d${d}`, type: 'directory', mode: 0o750, uid: 7, gid: 8 });
    pack.entry({ name: `d${d}/s/f`, mode: 0o640, uid: 7 }, `file ${d}`);
    pack.entry({ name: `d${d}/s/p`, type: 'fifo', mode: 0o620, uid: 9, gid: 9 });
  }
  pack.finalize();
  const r = await extractSafely(pack as unknown as Readable, root, 'volume', limits);
  expect(r.entries).toBe(300);
  for (const d of [0, 57, 99]) {
    expect(fs.lstatSync(path.join(root, `d${d}`)).mode & 0o777).toBe(0o750);
    expect(fs.lstatSync(path.join(root, `d${d}`)).uid).toBe(7);
    expect(fs.readFileSync(path.join(root, `d${d}/s/f`), 'utf8')).toBe(`file ${d}`);
    const p = fs.lstatSync(path.join(root, `d${d}/s/p`));
    expect(p.isFIFO() && (p.mode & 0o777) === 0o620 && p.uid === 9).toBe(true);
  }
});

test("extended attributes: at most 64 KiB per entry and the transfer's budget in all", async () => {
  const big = { name: 'f', pax: { 'SCHILY.xattr.user.big': 'x'.repeat(MAX_XATTR_BYTES_PER_ENTRY) } };
  let pack = tar.pack();
  pack.entry(big, 'x');
  pack.finalize();
  await expect(extractSafely(pack as unknown as Readable, dirs().root, 'volume', limits)).rejects.toThrow(
    /f carries 65544 bytes of extended attributes, over the limit of 65536 per entry/,
  );
  // Not restored (not user.*) still counts: it is held in memory all the same.
  pack = tar.pack();
  for (let i = 0; i < 3; i++) pack.entry({ name: `f${i}`, pax: { 'SCHILY.xattr.security.x': 'y'.repeat(1000) } }, 'x');
  pack.finalize();
  const budget = { left: 2500 };
  await expect(extractSafely(pack as unknown as Readable, dirs().root, 'volume', limits, { xattrBudget: budget })).rejects.toThrow(TransferQuotaExceeded);
  expect(budget.left).toBeLessThan(0);
});

test('sparse entries: a map that does not fit the data, or another sparse format, is refused', async () => {
  const sparse = (map: string, data: string, extra: Record<string, string> = {}) => {
    const body = map.padEnd(512, '\0') + data;
    const pack = tar.pack();
    pack.entry(
      {
        name: 'GNUSparseFile.1/f',
        size: body.length,
        pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '100000', ...extra },
      },
      body,
    );
    pack.finalize();
    return extractSafely(pack as unknown as Readable, dirs().root, 'volume', limits);
  };
  const root = dirs().root;
  const ok = tar.pack();
  const body = '2\n10\n3\n99990\n2\n'.padEnd(512, '\0') + 'abcyz';
  ok.entry(
    {
      name: 'GNUSparseFile.1/f',
      size: body.length,
      pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '100000' },
    },
    body,
  );
  ok.finalize();
  await extractSafely(ok as unknown as Readable, root, 'volume', limits);
  const got = fs.readFileSync(path.join(root, 'f'));
  expect(got.length).toBe(100000);
  expect(got.subarray(10, 13).toString()).toBe('abc');
  expect(got.subarray(99990, 99992).toString()).toBe('yz');
  expect(got.subarray(0, 10).every((b) => b === 0)).toBe(true);
  await expect(sparse('1\n10\n3\n', 'abcd')).rejects.toThrow(/sparse map says 3 bytes of data, the entry holds 4/);
  await expect(sparse('2\n50\n3\n10\n3\n', 'abcdef')).rejects.toThrow(/out of order/);
  await expect(sparse('1\n99999\n3\n', 'abc')).rejects.toThrow(/past the file's size/);
  await expect(sparse('1\n0\n3\n', 'abc', { 'GNU.sparse.name': '../x' })).rejects.toThrow(/\.\./);
  await expect(sparse('1\n0\n3\n', 'abc', { 'GNU.sparse.minor': '1' })).rejects.toThrow(/sparse format 1.1 is not supported/);
});

test('allowed extended attributes are set on the entries themselves: the opaque marker of a rootfs folder, user.* on a file and on the root', async () => {
  const { root } = dirs();
  const pack = tar.pack();
  pack.entry({ name: '.', type: 'directory', pax: { 'SCHILY.xattr.user.top': 'r' } });
  pack.entry({ name: 'd', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } });
  pack.entry({ name: 'd/f', pax: { 'SCHILY.xattr.user.mime': 'text/plain', 'SCHILY.xattr.security.capability': 'x' } }, 'x');
  pack.finalize();
  await extractSafely(pack as unknown as Readable, root, 'rootfs', limits);
  const get = (p: string, name: string) =>
    execFileSync('python3', ['-c', 'import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2]).decode())\nexcept OSError: print("-")', p, name], {
      encoding: 'utf8',
    }).trim();
  expect(get(path.join(root, 'd'), 'trusted.overlay.opaque')).toBe('y');
  expect(get(path.join(root, 'd/f'), 'user.mime')).toBe('text/plain');
  expect(get(path.join(root, 'd/f'), 'security.capability')).toBe('-');
  expect(get(root, 'user.top')).toBe('r');
});
