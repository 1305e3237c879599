/**
 * The data channel end to end on 127.0.0.1 (real HTTP server, real GNU tar, real files):
 * a tree arrives intact; a wrong/missing/used token is refused; corruption and truncation
 * are detected; the size limit holds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { commit, sendTree } from '../../../src/compute/datachannel/client.js';
import type { Manifest, PartReceipt } from '../../../src/compute/datachannel/protocol.js';
import { DataChannelServer } from '../../../src/compute/datachannel/server.js';
import { TokenStore } from '../../../src/compute/datachannel/tokens.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-dc-'));
const tokens = new TokenStore();
const committed: { id: string; manifest: Manifest; received: PartReceipt[] }[] = [];
let server: DataChannelServer;
let address: string;

function tree(name: string, big = 0): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(d, 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(d, 'sub', 'b.bin'), Buffer.alloc(big || 100_000, 7));
  fs.chmodSync(path.join(d, 'sub', 'b.bin'), 0o640);
  fs.symlinkSync('sub/b.bin', path.join(d, 'link'));
  return d;
}

beforeAll(async () => {
  server = new DataChannelServer({
    bindHost: '127.0.0.1',
    port: 0,
    maxBytes: 5_000_000,
    tokens,
    handler: {
      partDir: (id, part) => {
        const d = path.join(tmp, 'in', id, part);
        fs.rmSync(d, { recursive: true, force: true });
        fs.mkdirSync(d, { recursive: true });
        return d;
      },
      committed: async (id, manifest, received) => {
        committed.push({ id, manifest, received });
      },
      exportImage: async () => {
        throw new Error('no image here');
      },
    },
  });
  address = await server.listen();
});

afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a tree arrives intact, small and empty parts included; commit consumes the token', async () => {
  const token = tokens.issue('m1', 'upload');
  const src = tree('src1');
  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  const [r1, r2] = await Promise.all([
    sendTree(address, 'm1', token, 'checkpoint', src, 'checkpoint'),
    sendTree(address, 'm1', token, 'rootfs', empty, 'rootfs'),
  ]);
  expect(r1.bytes).toBeGreaterThan(100_000);
  expect(r2.bytes).toBeGreaterThanOrEqual(1024); // an empty tar is still a tar
  const dst = path.join(tmp, 'in', 'm1', 'checkpoint');
  expect(fs.readFileSync(path.join(dst, 'a.txt'), 'utf8')).toBe('alpha\n');
  expect(fs.statSync(path.join(dst, 'sub', 'b.bin')).mode & 0o777).toBe(0o640);
  expect(fs.readlinkSync(path.join(dst, 'link'))).toBe('sub/b.bin');
  const manifest = { checkpoint_name: 'c1', parts: [r1, r2].map((r) => ({ part: r.part, bytes: r.bytes, sha256: r.sha256 })) };
  await commit(address, 'm1', token, manifest);
  expect(committed.find((c) => c.id === 'm1')?.manifest.checkpoint_name).toBe('c1');
  // The token is spent.
  await expect(sendTree(address, 'm1', token, 'checkpoint', src, 'checkpoint')).rejects.toThrow(/403.*used/);
});

test('wrong and unknown tokens: 403, before any byte of the body', async () => {
  const token = tokens.issue('m2', 'upload');
  const src = tree('src2');
  await expect(sendTree(address, 'm2', `${token}x`, 'checkpoint', src, 'checkpoint')).rejects.toThrow(/403.*wrong/);
  await expect(sendTree(address, 'm3', token, 'checkpoint', src, 'checkpoint')).rejects.toThrow(/403.*unknown/);
  await expect(sendTree(address, 'm2', '', 'checkpoint', src, 'checkpoint')).rejects.toThrow(/40[13]/);
});

test('corruption and truncation are detected by the digest; commit then refuses', async () => {
  const token = tokens.issue('m4', 'upload');
  const src = tree('src4');
  await expect(sendTree(address, 'm4', token, 'checkpoint', src, 'checkpoint', { corruptTransfer: true })).rejects.toThrow(/422/);
  await expect(sendTree(address, 'm4', token, 'checkpoint', src, 'checkpoint', { truncateTransfer: true })).rejects.toThrow(/422/);
  expect(fs.existsSync(path.join(tmp, 'in', 'm4', 'checkpoint'))).toBe(false); // discarded
  await expect(commit(address, 'm4', token, { checkpoint_name: 'x', parts: [{ part: 'checkpoint', bytes: 1, sha256: 'x' }] })).rejects.toThrow(
    /422.*not received/,
  );
});

test('the size limit holds', async () => {
  const token = tokens.issue('m5', 'upload');
  const src = tree('src5', 6_000_000);
  await expect(sendTree(address, 'm5', token, 'checkpoint', src, 'checkpoint')).rejects.toThrow(/413|limit|failed/);
});

test('an archive with an escaping entry is refused (422)', async () => {
  const token = tokens.issue('m6', 'upload');
  const d = path.join(tmp, 'evil');
  fs.mkdirSync(d);
  fs.symlinkSync('../../../etc', path.join(d, 'out'));
  await expect(sendTree(address, 'm6', token, 'volume/v1', d, 'volume')).rejects.toThrow(/422.*escapes/);
});

export type { Readable };
