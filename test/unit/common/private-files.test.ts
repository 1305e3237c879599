/**
 * Files that hold tenants' data are the service user's alone, whatever the umask: the agent's
 * migration records (the container's spec and environment), the conductor's SQLite file and
 * its WAL companions; and the runc.conf lock lives in a folder nobody else may write.
 * Run under umask 022, the usual default, which would leave them world-readable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { AgentRecordStore } from '../../../src/compute/records.js';
import { RUNC_CONF_LOCK, ensurePrivateLockDir, withRuncConfShared } from '../../../src/compute/docker/runcconf.js';
import { openSqlite } from '../../../src/db/sqlite.js';

let dir: string;
let umask: number;
const modeOf = (p: string) => fs.statSync(p).mode & 0o777;

beforeEach(() => {
  umask = process.umask(0o022);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-private-'));
});
afterEach(() => {
  process.umask(umask);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('agent records', () => {
  it('are written 0600 in 0700 folders, also over a stale temporary file', () => {
    const root = path.join(dir, 'migrations');
    const store = new AgentRecordStore(root);
    const r = store.create('m-1', 'source', 'host-b');
    store.save(r);
    // A write that died between the temporary file and the rename left one behind.
    fs.writeFileSync(path.join(store.dir('m-1'), 'record.json.tmp'), 'stale', { mode: 0o644 });
    store.save(r);
    expect(modeOf(root)).toBe(0o700);
    expect(modeOf(store.dir('m-1'))).toBe(0o700);
    expect(modeOf(path.join(store.dir('m-1'), 'record.json'))).toBe(0o600);
    expect(store.load('m-1')?.peer_host).toBe('host-b');
  });

  it('a records folder an older agent left open is closed at start', () => {
    const root = path.join(dir, 'migrations');
    fs.mkdirSync(root, { mode: 0o755 });
    new AgentRecordStore(root);
    expect(modeOf(root)).toBe(0o700);
  });
});

describe("the conductor's SQLite file", () => {
  it('is 0600, and so are its WAL files', () => {
    const file = path.join(dir, 'db', 'ferry.sqlite');
    const db = openSqlite(file);
    db.exec('CREATE TABLE t (x INTEGER)');
    db.prepare('INSERT INTO t VALUES (1)').run();
    expect(modeOf(file)).toBe(0o600);
    for (const f of [`${file}-wal`, `${file}-shm`]) if (fs.existsSync(f)) expect(modeOf(f)).toBe(0o600);
    db.close();
  });

  it('an existing world-readable file is closed when opened', () => {
    const file = path.join(dir, 'old.sqlite');
    fs.writeFileSync(file, '', { mode: 0o644 });
    openSqlite(file).close();
    expect(modeOf(file)).toBe(0o600);
  });
});

describe('the runc.conf lock', () => {
  it('is not in world-writable /run/lock', () => {
    expect(path.dirname(RUNC_CONF_LOCK)).not.toBe('/run/lock');
    expect(RUNC_CONF_LOCK.startsWith('/run/ferry/')).toBe(true);
  });

  it('makes its folder 0700 and refuses a folder others may write', async () => {
    const own = path.join(dir, 'run', 'ferry');
    await withRuncConfShared(() => Promise.resolve(), { file: path.join(dir, 'runc.conf'), lockFile: path.join(own, 'lock'), timeoutMs: 5000 });
    expect(modeOf(own)).toBe(0o700);

    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o1777);
    expect(() => ensurePrivateLockDir(open)).toThrow(/writable by others/);
    await expect(withRuncConfShared(() => Promise.resolve(), { file: path.join(dir, 'runc.conf'), lockFile: path.join(open, 'lock') })).rejects.toThrow(
      /refusing the lock folder/,
    );
  });
});
