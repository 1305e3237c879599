import { expect, test } from '@jest/globals';
import { UnsafeArchive, allowedXattr, checkEntry, safeRelative } from '../../../src/compute/datachannel/tarsafe.js';
import { TokenStore, bearer } from '../../../src/compute/datachannel/tokens.js';
import { manifestProblems } from '../../../src/compute/datachannel/protocol.js';

test('names: relative only, no "..", no NUL', () => {
  expect(safeRelative('./a/b')).toBe('a/b');
  expect(safeRelative('./')).toBe('');
  expect(safeRelative('a//./b/')).toBe('a/b');
  expect(() => safeRelative('/etc/passwd')).toThrow(UnsafeArchive);
  expect(() => safeRelative('a/../../x')).toThrow(/\.\./);
  expect(() => safeRelative('..')).toThrow(UnsafeArchive);
  expect(() => safeRelative('a\0b')).toThrow(/NUL/);
});

test('entry types: devices refused except whiteouts in the rootfs diff', () => {
  expect(checkEntry({ name: 'etc/x', type: 'file' }, 'volume')).toEqual({ kind: 'file', rel: 'etc/x' });
  expect(checkEntry({ name: 'bin/vi', type: 'character-device', devmajor: 0, devminor: 0 }, 'rootfs')).toEqual({ kind: 'whiteout', rel: 'bin/vi' });
  expect(() => checkEntry({ name: 'bin/vi', type: 'character-device', devmajor: 0, devminor: 0 }, 'volume')).toThrow(/device/);
  expect(() => checkEntry({ name: 'dev/sda', type: 'character-device', devmajor: 8, devminor: 0 }, 'rootfs')).toThrow(/device/);
  expect(() => checkEntry({ name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 }, 'rootfs')).toThrow(UnsafeArchive);
  expect(() => checkEntry({ name: 'p', type: 'fifo' }, 'checkpoint')).toThrow(/fifo/);
  expect(checkEntry({ name: 'p', type: 'fifo' }, 'rootfs').kind).toBe('fifo');
});

test('symlinks may not escape; absolute targets only inside a container rootfs', () => {
  expect(checkEntry({ name: 'a/l', type: 'symlink', linkname: '../b' }, 'volume')).toEqual({ kind: 'symlink', rel: 'a/l', target: '../b' });
  expect(() => checkEntry({ name: 'a/l', type: 'symlink', linkname: '../../b' }, 'volume')).toThrow(/escapes/);
  expect(() => checkEntry({ name: 'l', type: 'symlink', linkname: '/etc' }, 'volume')).toThrow(/outside/);
  expect(() => checkEntry({ name: 'l', type: 'symlink', linkname: '/etc' }, 'checkpoint')).toThrow(/outside/);
  expect(checkEntry({ name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' }, 'rootfs').kind).toBe('symlink');
  expect(() => checkEntry({ name: 'bin/sh', type: 'symlink', linkname: '../../../x' }, 'rootfs')).toThrow(/escapes/);
});

test('hard links must name an entry inside the tree', () => {
  expect(checkEntry({ name: 'h', type: 'link', linkname: './a/b' }, 'volume')).toEqual({ kind: 'hardlink', rel: 'h', target: 'a/b' });
  expect(() => checkEntry({ name: 'h', type: 'link', linkname: '/etc/shadow' }, 'volume')).toThrow(UnsafeArchive);
  expect(() => checkEntry({ name: 'h', type: 'link', linkname: '../x' }, 'volume')).toThrow(UnsafeArchive);
});

test('xattrs: the overlay opaque marker only in the rootfs diff', () => {
  expect(allowedXattr('trusted.overlay.opaque', 'rootfs')).toBe(true);
  expect(allowedXattr('trusted.overlay.opaque', 'volume')).toBe(false);
  expect(allowedXattr('security.capability', 'rootfs')).toBe(false);
  expect(allowedXattr('user.mime', 'volume')).toBe(true);
});

test('tokens: one per migration and purpose, wrong/unknown/used refused', () => {
  const t = new TokenStore();
  const a = t.issue('m', 'upload');
  expect(t.check('m', 'upload', a)).toBe('ok');
  expect(t.check('m', 'upload', null)).toBe('missing');
  expect(t.check('m', 'upload', `${a}x`)).toBe('wrong');
  expect(t.check('m', 'export', a)).toBe('unknown');
  expect(t.check('other', 'upload', a)).toBe('unknown');
  t.consume('m', 'upload');
  expect(t.check('m', 'upload', a)).toBe('used');
  const b = t.issue('m', 'upload');
  expect(t.check('m', 'upload', a)).toBe('wrong'); // reissued: the old one is dead
  t.revoke('m');
  expect(t.check('m', 'upload', b)).toBe('unknown');
  expect(bearer('Bearer abc')).toBe('abc');
  expect(bearer('Basic abc')).toBeNull();
});

test('manifest vs received parts', () => {
  const got = new Map([['checkpoint', { part: 'checkpoint', bytes: 10, sha256: 'aa', entries: 1 }]]);
  expect(manifestProblems({ checkpoint_name: 'c', parts: [{ part: 'checkpoint', bytes: 10, sha256: 'aa' }] }, got)).toEqual([]);
  expect(manifestProblems({ checkpoint_name: 'c', parts: [{ part: 'checkpoint', bytes: 10, sha256: 'ab' }] }, got)[0]).toMatch(/differs/);
  expect(manifestProblems({ checkpoint_name: 'c', parts: [{ part: 'rootfs', bytes: 1, sha256: 'x' }] }, got)).toEqual([
    'the manifest has no checkpoint',
    'part rootfs was not received',
  ]);
});
