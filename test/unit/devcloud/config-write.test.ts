import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeIfChanged } from '../../../src/devcloud/files.js';

describe('dev cloud configuration files', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-conf-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('are left alone (same inode, same mtime) when the text is unchanged', () => {
    const file = path.join(dir, 'ferry.conf');
    expect(writeIfChanged(file, '[DEFAULT]\nhost = a\n')).toBe(true);
    const before = fs.statSync(file);
    expect(writeIfChanged(file, '[DEFAULT]\nhost = a\n')).toBe(false);
    const after = fs.statSync(file);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('are replaced by rename: a reader holding the old file still reads it whole', () => {
    const file = path.join(dir, 'ferry.conf');
    writeIfChanged(file, 'old text\n');
    const fd = fs.openSync(file, 'r');
    try {
      expect(writeIfChanged(file, 'new text, longer than the old one\n')).toBe(true);
      // An in-place rewrite truncates what an open reader sees; a rename does not.
      const buf = Buffer.alloc(64);
      const n = fs.readSync(fd, buf, 0, 64, 0);
      expect(buf.subarray(0, n).toString()).toBe('old text\n');
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('new text, longer than the old one\n');
    expect(fs.readdirSync(dir)).toEqual(['ferry.conf']);
  });
});
