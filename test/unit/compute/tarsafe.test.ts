import { expect, test } from '@jest/globals';
import { UnsafeArchive, allowedXattr, checkEntry, keptMode, safeRelative } from '../../../src/compute/datachannel/tarsafe.js';
import { commitProblems, partLimits } from '../../../src/compute/datachannel/protocol.js';

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
  expect(checkEntry({ name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' }, 'rootfs').kind).toBe('symlink');
  expect(() => checkEntry({ name: 'bin/sh', type: 'symlink', linkname: '../../../x' }, 'rootfs')).toThrow(/escapes/);
  expect(checkEntry({ name: 'usr/lib/l', type: 'symlink', linkname: '../../lib/x/./y' }, 'rootfs').kind).toBe('symlink');
});

test('the symlink chain: ".." after a name is refused in every part kind', () => {
  for (const kind of ['rootfs', 'volume'] as const) {
    expect(checkEntry({ name: 'd', type: 'symlink', linkname: '.' }, kind).kind).toBe('symlink');
    expect(() => checkEntry({ name: 'x', type: 'symlink', linkname: 'd/d/d/../../../SECRET' }, kind)).toThrow(/after a name/);
    expect(() => checkEntry({ name: 'a/x', type: 'symlink', linkname: '../d/../../e' }, kind)).toThrow(/after a name/);
  }
  expect(() => checkEntry({ name: 'x', type: 'symlink', linkname: 'd/d/d/../../../SECRET' }, 'checkpoint')).toThrow(UnsafeArchive);
});

test('a checkpoint holds files and directories only: no symlinks, hard links, fifos or devices', () => {
  expect(checkEntry({ name: 'pages-1.img', type: 'file' }, 'checkpoint').kind).toBe('file');
  expect(checkEntry({ name: 'sub', type: 'directory' }, 'checkpoint').kind).toBe('directory');
  expect(() => checkEntry({ name: 'l', type: 'symlink', linkname: 'pages-1.img' }, 'checkpoint')).toThrow(/symlink refused in a checkpoint/);
  expect(() => checkEntry({ name: 'l', type: 'symlink', linkname: '/etc' }, 'checkpoint')).toThrow(/symlink refused in a checkpoint/);
  expect(() => checkEntry({ name: 'h', type: 'link', linkname: 'pages-1.img' }, 'checkpoint')).toThrow(/hard link refused in a checkpoint/);
  expect(checkEntry({ name: 'h', type: 'link', linkname: 'a' }, 'volume').kind).toBe('hardlink');
  expect(() => checkEntry({ name: 'w', type: 'character-device', devmajor: 0, devminor: 0 }, 'checkpoint')).toThrow(/device/);
});

test('setuid and setgid: stripped in checkpoints and volumes, kept in the rootfs diff; sticky kept', () => {
  expect(keptMode(0o104755, 'volume')).toBe(0o755);
  expect(keptMode(0o2755, 'checkpoint')).toBe(0o755);
  expect(keptMode(0o6755, 'rootfs')).toBe(0o6755);
  expect(keptMode(0o1777, 'volume')).toBe(0o1777);
});

test('quota from the declaration: exact entries and content, tar overhead per entry', () => {
  const l = partLimits({ bytes: 1000, entries: 3 });
  expect(l.maxEntries).toBe(3);
  expect(l.maxPayloadBytes).toBe(1000);
  expect(l.maxTarBytes).toBe(1000 + 3 * 4096 + (1 << 20));
});

test('xattrs: the overlay opaque marker only in the rootfs diff', () => {
  expect(allowedXattr('trusted.overlay.opaque', 'rootfs')).toBe(true);
  expect(allowedXattr('trusted.overlay.opaque', 'volume')).toBe(false);
  expect(allowedXattr('security.capability', 'rootfs')).toBe(false);
  expect(allowedXattr('user.mime', 'volume')).toBe(true);
});

test('commit manifest vs plan and received parts', () => {
  const got = new Map([['checkpoint', { part: 'checkpoint', bytes: 10, sha256: 'aa', entries: 1 }]]);
  expect(commitProblems({ parts: [{ part: 'checkpoint', bytes: 10, sha256: 'aa' }] }, ['checkpoint'], got)).toEqual([]);
  expect(commitProblems({ parts: [{ part: 'checkpoint', bytes: 10, sha256: 'ab' }] }, ['checkpoint'], got)[0]).toMatch(/differs/);
  expect(commitProblems({ parts: [{ part: 'rootfs', bytes: 1, sha256: 'x' }] }, ['checkpoint', 'rootfs'], got)).toEqual([
    'the manifest has no checkpoint',
    'planned part checkpoint is not in the manifest',
    'part rootfs was not received',
  ]);
  const extra = commitProblems(
    {
      parts: [
        { part: 'checkpoint', bytes: 10, sha256: 'aa' },
        { part: 'volume/x', bytes: 1, sha256: 'x' },
      ],
    },
    ['checkpoint'],
    got,
  );
  expect(extra).toEqual(['part volume/x was not planned']);
});
