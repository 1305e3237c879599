/**
 * The data channel end to end on 127.0.0.1 (real HTTPS server with mutual TLS, real GNU tar,
 * real files, certificates made with openssl): a migration's trees arrive intact; the target
 * names the checkpoint; tokens are single-use, per part, bound to the migration and to the
 * sender's certificate, and expire; parts outside the plan, a second or concurrent PUT, sizes
 * past the declaration, unsafe archives and a full disk are refused with their statuses, and
 * nothing is written outside the migration's staging directory.
 */
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import tar, { type Header as TarHeaders } from 'tar-stream';
import { TransferGrants } from '../../../src/compute/datachannel/grants.js';
import type { PartReceipt } from '../../../src/compute/datachannel/protocol.js';
import { DataChannelServer, type DataChannelServerOptions } from '../../../src/compute/datachannel/receiver.js';
import {
  Throttle,
  commit,
  fetchImage,
  planTransfer,
  sendStream,
  sendTree,
  transferParts,
  type ChannelClientOptions,
  type ChannelTarget,
} from '../../../src/compute/datachannel/sender.js';
import { loadTlsMaterial, type TlsMaterial } from '../../../src/compute/datachannel/tls.js';
import { ensureHostCert } from '../../../src/devcloud/certs.js';
import { sleep } from '../../../src/common/sleep.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-dc-'));
const pki = path.join(tmp, 'pki');
const otherPki = path.join(tmp, 'other-pki');
const stagingRoot = path.join(tmp, 'staging');
let clock = Date.now();
const grants = new TransferGrants(5 * 60_000, () => clock);
const committed: { id: string; received: PartReceipt[] }[] = [];
let server: DataChannelServer;
let target: { address: string; host: string };
let source: ChannelClientOptions; // compute1, the sender
let stranger: ChannelClientOptions; // compute3: same CA, not the migration's source
let foreign: ChannelClientOptions; // compute1 by name, but from another CA
let tlsOf: Record<string, TlsMaterial>;

function material(dir: string, host: string): TlsMaterial {
  return loadTlsMaterial(ensureHostCert(dir, host));
}

function handler(root: string): DataChannelServerOptions['handler'] {
  return {
    stagingDir: (id) => path.join(root, id),
    checkpointName: (id) => `ferry-${id}`,
    committed: async (id, received) => {
      committed.push({ id, received });
    },
    exportImage: async (id) => Readable.from([Buffer.from(`image of ${id}`)]),
  };
}

function tree(name: string, big = 0): string {
  const d = path.join(tmp, 'src', name);
  fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(d, 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(d, 'sub', 'b.bin'), Buffer.alloc(big || 100_000, 7));
  fs.chmodSync(path.join(d, 'sub', 'b.bin'), 0o640);
  return d;
}

/** Every file under `dir` (relative paths), to prove nothing else was written. */
function listAll(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

function grant(id: string, parts = ['checkpoint', 'rootfs'], sender = 'compute1'): ChannelTarget {
  return { ...target, token: grants.grantUpload(id, sender, parts) };
}

async function archive(entries: (Partial<TarHeaders> & { name: string } & { body?: string })[]): Promise<Readable> {
  const pack = tar.pack();
  for (const e of entries) {
    const { body, ...h } = e;
    pack.entry(h, body ?? '');
  }
  pack.finalize();
  return pack as unknown as Readable;
}

beforeAll(async () => {
  tlsOf = { compute1: material(pki, 'compute1'), compute2: material(pki, 'compute2'), compute3: material(pki, 'compute3') };
  source = { tls: tlsOf.compute1 };
  stranger = { tls: tlsOf.compute3 };
  foreign = { tls: material(otherPki, 'compute1') };
  server = new DataChannelServer({
    host: 'compute2',
    bindHost: '127.0.0.1',
    port: 0,
    maxBytes: 50_000_000,
    grants,
    handler: handler(stagingRoot),
    tls: tlsOf.compute2,
  });
  target = { address: await server.listen(), host: 'compute2' };
});

afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a migration arrives intact over mutual TLS; the target names the checkpoint; every token is spent by the commit', async () => {
  const g = grant('m1');
  const src = tree('src1');
  const empty = path.join(tmp, 'src', 'empty');
  fs.mkdirSync(empty, { recursive: true });
  const out = await transferParts(source, g, 'm1', [
    { part: 'checkpoint', dir: src, kind: 'checkpoint' },
    { part: 'rootfs', dir: empty, kind: 'rootfs' },
  ]);
  expect(out.checkpoint_name).toBe('ferry-m1');
  const dst = path.join(stagingRoot, 'm1', 'checkpoint');
  expect(fs.readFileSync(path.join(dst, 'a.txt'), 'utf8')).toBe('alpha\n');
  expect(fs.statSync(path.join(dst, 'sub', 'b.bin')).mode & 0o777).toBe(0o640);
  expect(
    committed
      .find((c) => c.id === 'm1')
      ?.received.map((r) => r.part)
      .sort(),
  ).toEqual(['checkpoint', 'rootfs']);
  // The grant, the part tokens and the commit token open nothing any more.
  await expect(planTransfer(source, g, 'm1', [{ part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' }])).rejects.toThrow(/403.*already committed/);
});

test('large files (written in batches) and small ones (written whole) arrive byte for byte, with their modes', async () => {
  const src = path.join(tmp, 'src', 'mixed');
  fs.mkdirSync(src, { recursive: true });
  const pages = crypto.randomBytes(5 * 1024 * 1024 + 12345); // several batches and a ragged end
  fs.writeFileSync(path.join(src, 'pages-1.img'), pages);
  fs.writeFileSync(path.join(src, 'core-1.img'), crypto.randomBytes(3000));
  fs.writeFileSync(path.join(src, 'edge.img'), crypto.randomBytes(256 * 1024)); // the largest file written whole
  fs.writeFileSync(path.join(src, 'empty.img'), '');
  fs.chmodSync(path.join(src, 'pages-1.img'), 0o600);
  const empty = path.join(tmp, 'src', 'empty-mixed');
  fs.mkdirSync(empty, { recursive: true });
  await transferParts(source, grant('m-mixed'), 'm-mixed', [
    { part: 'checkpoint', dir: src, kind: 'checkpoint' },
    { part: 'rootfs', dir: empty, kind: 'rootfs' },
  ]);
  const dst = path.join(stagingRoot, 'm-mixed', 'checkpoint');
  for (const f of ['pages-1.img', 'core-1.img', 'edge.img', 'empty.img'])
    expect(fs.readFileSync(path.join(dst, f)).equals(fs.readFileSync(path.join(src, f)))).toBe(true);
  expect(fs.statSync(path.join(dst, 'pages-1.img')).mode & 0o777).toBe(0o600);
});

test('a sparse file travels as its data and lands sparse, byte for byte', async () => {
  const src = path.join(tmp, 'src', 'sparse');
  fs.mkdirSync(src, { recursive: true });
  const file = path.join(src, 'disk.img');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.from('start'), 0, 5, 0);
  fs.writeSync(fd, crypto.randomBytes(5000), 0, 5000, 20 * 1024 * 1024);
  fs.ftruncateSync(fd, 32 * 1024 * 1024); // ends in a hole
  fs.closeSync(fd);
  const empty = path.join(tmp, 'src', 'empty-sparse');
  fs.mkdirSync(empty, { recursive: true });
  const out = await transferParts(source, grant('m-sparse'), 'm-sparse', [
    { part: 'checkpoint', dir: empty, kind: 'checkpoint' },
    { part: 'rootfs', dir: src, kind: 'rootfs' },
  ]);
  expect(out.receipts.find((r) => r.part === 'rootfs')!.bytes).toBeLessThan(1024 * 1024);
  const dst = path.join(stagingRoot, 'm-sparse', 'rootfs', 'disk.img');
  expect(fs.statSync(dst).size).toBe(32 * 1024 * 1024);
  expect(fs.statSync(dst).blocks * 512).toBeLessThan(1024 * 1024);
  expect(crypto.createHash('sha256').update(fs.readFileSync(dst)).digest('hex')).toBe(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
});

test('a commit naming its own checkpoint ("../../../../../../etc") is refused; nothing outside the staging is touched', async () => {
  const g = grant('m-trav', ['checkpoint']);
  const src = tree('trav');
  const plan = await planTransfer(source, g, 'm-trav', [{ part: 'checkpoint', bytes: 100_006, entries: 4, encoding: 'identity' }]);
  const r = await sendTree(source, { ...target, token: plan.parts[0].token }, 'm-trav', 'checkpoint', src, 'checkpoint');
  const before = listAll(tmp).filter((p) => !p.startsWith('staging'));
  await expect(
    commit(source, { ...target, token: plan.commit_token }, 'm-trav', {
      checkpoint_name: '../../../../../../etc',
      parts: [{ part: 'checkpoint', bytes: r.bytes, sha256: r.sha256 }],
    }),
  ).rejects.toThrow(/400.*names the checkpoint of migration m-trav itself \(ferry-m-trav\)/);
  expect(committed.some((c) => c.id === 'm-trav')).toBe(false);
  expect(listAll(tmp).filter((p) => !p.startsWith('staging'))).toEqual(before);
  // With the target's own name (or none) the same commit goes through.
  const ok = await commit(source, { ...target, token: plan.commit_token }, 'm-trav', { parts: [{ part: 'checkpoint', bytes: r.bytes, sha256: r.sha256 }] });
  expect(ok.checkpoint_name).toBe('ferry-m-trav');
});

test("parts outside the grant or the plan are refused (403): planning them, or PUT with another part's token", async () => {
  const g = grant('m-extra', ['checkpoint', 'rootfs', 'volume/mine']);
  await expect(
    planTransfer(source, g, 'm-extra', [
      { part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' },
      { part: 'volume/someone-elses', bytes: 1, entries: 1, encoding: 'identity' },
    ]),
  ).rejects.toThrow(/403.*volume\/someone-elses is not expected/);
  const plan = await planTransfer(source, g, 'm-extra', [{ part: 'checkpoint', bytes: 100_006, entries: 4, encoding: 'identity' }]);
  const src = tree('extra');
  // volume/mine was granted but not planned; its PUT has no token of its own.
  await expect(sendTree(source, { ...target, token: plan.parts[0].token }, 'm-extra', 'volume/mine', src, 'volume')).rejects.toThrow(/403.*not in the plan/);
  await expect(sendTree(source, { ...target, token: plan.commit_token }, 'm-extra', 'checkpoint', src, 'checkpoint')).rejects.toThrow(/403.*wrong token/);
  expect(listAll(path.join(stagingRoot, 'm-extra'))).toEqual([]);
  await expect(planTransfer(source, g, 'm-extra', [{ part: 'rootfs', bytes: 1, entries: 1, encoding: 'identity' }])).rejects.toThrow(/400.*no checkpoint/);
});

test('missing (401), wrong, unknown and expired (403) tokens', async () => {
  const g = grant('m-tok', ['checkpoint']);
  const decl = [{ part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' }];
  await expect(planTransfer(source, { ...g, token: '' }, 'm-tok', decl)).rejects.toThrow(/401.*token is required/);
  await expect(planTransfer(source, { ...g, token: `${g.token}x` }, 'm-tok', decl)).rejects.toThrow(/403.*wrong token/);
  await expect(planTransfer(source, g, 'm-unknown', decl)).rejects.toThrow(/403.*no upload was granted/);
  const plan = await planTransfer(source, g, 'm-tok', [{ part: 'checkpoint', bytes: 100_006, entries: 4, encoding: 'identity' }]);
  clock += 5 * 60_000 + 1;
  try {
    await expect(sendTree(source, { ...target, token: plan.parts[0].token }, 'm-tok', 'checkpoint', tree('tok'), 'checkpoint')).rejects.toThrow(/403.*expired/);
    await expect(planTransfer(source, g, 'm-tok', decl)).rejects.toThrow(/403.*grant expired/);
  } finally {
    clock = Date.now();
  }
});

test('a second PUT of a part is 409, and so is a concurrent one; a part that failed must be planned again', async () => {
  const g = grant('m-twice', ['checkpoint']);
  const src = tree('twice');
  const plan = await planTransfer(source, g, 'm-twice', [{ part: 'checkpoint', bytes: 100_006, entries: 4, encoding: 'identity' }]);
  const t = { ...target, token: plan.parts[0].token };
  // A first PUT that is still sending: its body trickles in.
  const slow = new PassThrough();
  const first = sendStream(source, t, 'm-twice', 'checkpoint', slow);
  await sleep(200);
  await expect(sendTree(source, t, 'm-twice', 'checkpoint', src, 'checkpoint')).rejects.toThrow(/409.*already being received/);
  slow.end(Buffer.alloc(1024)); // an empty tar: two zero blocks
  await first;
  await expect(sendTree(source, t, 'm-twice', 'checkpoint', src, 'checkpoint')).rejects.toThrow(/409.*already received/);
  // Re-planning (a retried live_migration step) gives fresh tokens and empties the staging.
  const again = await planTransfer(source, g, 'm-twice', [{ part: 'checkpoint', bytes: 100_006, entries: 4, encoding: 'identity' }]);
  await expect(sendTree(source, t, 'm-twice', 'checkpoint', src, 'checkpoint')).rejects.toThrow(/403.*wrong token/);
  await sendTree(source, { ...target, token: again.parts[0].token }, 'm-twice', 'checkpoint', src, 'checkpoint');
});

test('quota: more content, more entries or more declared bytes than allowed are 413; the part is removed', async () => {
  const g = grant('m-quota', ['checkpoint', 'rootfs']);
  const src = tree('quota', 300_000);
  let plan = await planTransfer(source, g, 'm-quota', [{ part: 'checkpoint', bytes: 1000, entries: 4, encoding: 'identity' }]);
  await expect(sendTree(source, { ...target, token: plan.parts[0].token }, 'm-quota', 'checkpoint', src, 'checkpoint')).rejects.toThrow(
    /413.*(more content than the 1000 bytes declared|larger than declared)/,
  );
  expect(fs.existsSync(path.join(stagingRoot, 'm-quota', 'checkpoint'))).toBe(false);
  plan = await planTransfer(source, g, 'm-quota', [{ part: 'checkpoint', bytes: 300_006, entries: 2, encoding: 'identity' }]);
  await expect(sendTree(source, { ...target, token: plan.parts[0].token }, 'm-quota', 'checkpoint', src, 'checkpoint')).rejects.toThrow(
    /413.*more entries than the 2 declared/,
  );
  // Many empty files in a small archive: the entry count is what stops them.
  plan = await planTransfer(source, g, 'm-quota', [{ part: 'checkpoint', bytes: 0, entries: 100, encoding: 'identity' }]);
  const many = Array.from({ length: 500 }, (_, i) => ({ name: `f${i}` }));
  await expect(sendStream(source, { ...target, token: plan.parts[0].token }, 'm-quota', 'checkpoint', await archive(many))).rejects.toThrow(/413.*entries/);
  await expect(planTransfer(source, g, 'm-quota', [{ part: 'checkpoint', bytes: 60_000_000, entries: 1, encoding: 'identity' }])).rejects.toThrow(
    /413.*over the limit of 50000000/,
  );
});

test('max_transfer_entries: a plan declaring more entries in all than the limit is 413, naming the option', async () => {
  const g = grant('m-entries', ['checkpoint', 'rootfs']);
  await expect(
    planTransfer(source, g, 'm-entries', [
      { part: 'checkpoint', bytes: 0, entries: 100_000, encoding: 'identity' },
      { part: 'rootfs', bytes: 0, entries: 100_001, encoding: 'identity' },
    ]),
  ).rejects.toThrow(/413.*declares 200001 entries, over the limit of 200000 on compute2 \(\[compute\] max_transfer_entries\)/);
  expect(listAll(path.join(stagingRoot, 'm-entries'))).toEqual([]);
});

/**
 * A tar stream of one `size`-byte file, written as fast as the reader takes it (a sender far
 * past its declaration). Stops when the reader is gone.
 */
function endlessPart(size: number): Readable {
  const pack = tar.pack();
  const entry = pack.entry({ name: 'pages-1.img', size });
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  const pump = () => {
    while (written < size && !pack.destroyed) {
      written += chunk.length;
      if (!entry.write(chunk)) {
        entry.once('drain', pump);
        return;
      }
    }
    if (!pack.destroyed) {
      entry.end(() => undefined);
      pack.finalize();
    }
  };
  pump();
  return pack as unknown as Readable;
}

test('a refusal while the sender is still writing (413 past its declaration) reaches it with its message, never as a reset or EPIPE', async () => {
  // Both connection kinds: one per request ("connection: close", after which the server closes
  // the connection once it has answered) and the upload pool's keep-alive one.
  // Several at once, each past its declaration by far: the refusals and resets interleave.
  const refused = async (id: string, pooled: boolean) => {
    const g = grant(id, ['checkpoint']);
    const plan = await planTransfer(source, g, id, [{ part: 'checkpoint', bytes: 1000, entries: 4, encoding: 'identity' }]);
    const agent = pooled ? new https.Agent({ keepAlive: true }) : undefined;
    try {
      const sent = sendStream(source, { ...target, token: plan.parts[0].token }, id, 'checkpoint', endlessPart(64 * 1024 * 1024), { agent });
      await expect(sent).rejects.toThrow(/^target refused checkpoint: 413: archive has more content than the 1000 bytes declared$/);
      await expect(sent).rejects.toMatchObject({ details: { status: 413 } });
    } finally {
      agent?.destroy();
    }
    expect(listAll(path.join(stagingRoot, id))).toEqual([]);
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => refused(`m-413-${i}`, i % 2 === 1)));
});

/**
 * A sender in its own process, as on a real host, that writes its body as fast as the socket
 * takes it and stops (ending the body) only once it has read the answer's status line: it
 * prints what it read and any error. When the target closed the connection with the body
 * unread, the sender's next write failed with EPIPE or a reset before it had read the 413.
 */
const BUSY_SENDER = `
const fs = require('node:fs');
const tls = require('node:tls');
const [port, id, token, cert, key, ca] = process.argv.slice(1);
const header = Buffer.alloc(512);
header.write('pages-1.img', 0);
header.write('0000644\\0', 100);
header.write('0000000\\0', 108);
header.write('0000000\\0', 116);
header.write((1024 ** 3).toString(8).padStart(11, '0') + '\\0', 124);
header.write('00000000000\\0', 136);
header.write('        ', 148);
header.write('0', 156);
header.write('ustar\\0', 257);
header.write('00', 263);
header.write((header.reduce((a, b) => a + b, 0)).toString(8).padStart(6, '0') + '\\0 ', 148);
const data = Buffer.alloc(256 * 1024, 1);
const chunk = Buffer.concat([Buffer.from(data.length.toString(16) + '\\r\\n'), data, Buffer.from('\\r\\n')]);
let got = '';
let continued = false;
let answered = false;
let written = 0;
const s = tls.connect({ host: '127.0.0.1', port: Number(port), servername: 'compute2', cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca) }, () => {
  s.write('PUT /v1/migrations/' + id + '/parts/checkpoint HTTP/1.1\\r\\nhost: compute2\\r\\nauthorization: Bearer ' + token +
    '\\r\\ncontent-type: application/x-tar\\r\\ntransfer-encoding: chunked\\r\\nexpect: 100-continue\\r\\n\\r\\n');
});
const pump = () => {
  while (!answered && !s.destroyed && written < 512 * 1024 * 1024) {
    written += data.length;
    if (!s.write(chunk)) return void s.once('drain', pump);
  }
};
s.on('data', (d) => {
  got += d;
  if (!continued && got.includes('\\r\\n\\r\\n')) {
    continued = true;
    got = got.slice(got.indexOf('\\r\\n\\r\\n') + 4);
    s.write(Buffer.concat([Buffer.from('200\\r\\n'), header, Buffer.from('\\r\\n')]));
    pump();
  } else if (continued && !answered && got.includes('\\r\\n\\r\\n')) {
    answered = true;
    s.write('0\\r\\n\\r\\n');
  }
  if (answered && /content-length: (\\d+)/i.test(got) && got.length >= got.indexOf('\\r\\n\\r\\n') + 4 + Number(/content-length: (\\d+)/i.exec(got)[1])) s.end();
});
s.on('error', (e) => { console.log(JSON.stringify({ got, error: e.message, written })); process.exit(0); });
s.on('close', () => { console.log(JSON.stringify({ got, error: null, written })); process.exit(0); });
`;

test('a refusal reaches a sender in another process that writes as fast as it can until it has read the answer (the EPIPE race)', async () => {
  const files = ensureHostCert(pki, 'compute1');
  const port = target.address.split(':')[1];
  const runOne = async (i: number) => {
    const id = `m-busy-${i}`;
    const g = grant(id, ['checkpoint']);
    const plan = await planTransfer(source, g, id, [{ part: 'checkpoint', bytes: 1000, entries: 4, encoding: 'identity' }]);
    const child = spawn(process.execPath, ['-e', BUSY_SENDER, port, id, plan.parts[0].token, files.cert_file, files.key_file, files.ca_file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await new Promise((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    const r = JSON.parse(out) as { got: string; error: string | null; written: number };
    expect({ error: r.error, status: r.got.split('\r\n')[0] }).toEqual({ error: null, status: 'HTTP/1.1 413 Payload Too Large' });
    expect(r.got).toContain('archive has more content than the 1000 bytes declared');
  };
  await Promise.all([0, 1, 2, 3].map(runOne));
});

test('two plans racing: the second waits for the first extraction, which stops with ExtractionOutdated (409); nothing lands outside the staging', async () => {
  const id = 'm-race';
  const outside = fs.mkdtempSync(path.join(tmp, 'outside-'));
  fs.writeFileSync(path.join(outside, 'victim'), 'keep\n', { mode: 0o600 });
  const outsideBefore = listAll(outside).map((p) => `${p} ${(fs.lstatSync(path.join(outside, p)).mode & 0o7777).toString(8)}`);
  const g = grant(id, ['checkpoint', 'rootfs']);
  const decl = [
    { part: 'checkpoint', bytes: 0, entries: 10, encoding: 'identity' },
    { part: 'rootfs', bytes: 1000, entries: 10, encoding: 'identity' },
  ];
  const tokenOf = (plan: { parts: { part: string; token: string }[] }, part: string) => plan.parts.find((p) => p.part === part)!.token;
  const first = await planTransfer(source, g, id, decl);
  // The first upload is mid-stream: a folder and a file in it have arrived, the rest waits.
  const pack = tar.pack();
  pack.entry({ name: 'a', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'a/1' }, 'one');
  const firstPut = sendStream(source, { ...target, token: tokenOf(first, 'rootfs') }, id, 'rootfs', pack as unknown as Readable);
  firstPut.catch(() => undefined);
  const staged = path.join(stagingRoot, id, 'rootfs');
  for (let i = 0; i < 500 && !fs.existsSync(path.join(staged, 'a', '1')); i++) await sleep(10);
  expect(fs.existsSync(path.join(staged, 'a', '1'))).toBe(true);
  // The same sender plans again and, in the new plan, makes `a` a link out of the staging.
  const second = await planTransfer(source, g, id, decl);
  const link = [{ name: 'a', type: 'symlink' as const, linkname: outside }];
  await sendStream(source, { ...target, token: tokenOf(second, 'rootfs') }, id, 'rootfs', await archive(link));
  expect(fs.readlinkSync(path.join(staged, 'a'))).toBe(outside);
  // The first upload goes on as if nothing happened: a file, a FIFO and modes through `a`.
  pack.entry({ name: 'a/evil', mode: 0o666 }, 'evil');
  pack.entry({ name: 'a/victim', type: 'fifo', mode: 0o666 });
  pack.entry({ name: 'a', type: 'directory', mode: 0o777 });
  pack.finalize();
  await expect(firstPut).rejects.toThrow(/409: .*(replaced or forgotten)/);
  await expect(firstPut).rejects.toMatchObject({ details: { status: 409 } });
  expect(listAll(outside).map((p) => `${p} ${(fs.lstatSync(path.join(outside, p)).mode & 0o7777).toString(8)}`)).toEqual(outsideBefore);
  expect(fs.readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('keep\n');
  expect(fs.readlinkSync(path.join(staged, 'a'))).toBe(outside);
});

test('a new plan does not wait on a sender that sent its whole archive but never ends its body', async () => {
  const id = 'm-stall';
  const g = grant(id, ['checkpoint']);
  const decl = [{ part: 'checkpoint', bytes: 10, entries: 4, encoding: 'identity' }];
  const first = await planTransfer(source, g, id, decl);
  const body = new PassThrough();
  for await (const c of await archive([{ name: 'a', body: 'x' }])) body.write(c as Buffer); // the end-of-archive blocks too
  const firstPut = sendStream(source, { ...target, token: first.parts[0].token }, id, 'checkpoint', body);
  firstPut.catch(() => undefined);
  for (let i = 0; i < 500 && !fs.existsSync(path.join(stagingRoot, id, 'checkpoint', 'a')); i++) await sleep(10);
  const t0 = Date.now();
  await planTransfer(source, g, id, decl);
  expect(Date.now() - t0).toBeLessThan(2000);
  body.end(Buffer.alloc(1024)); // the sender goes on: it sees the refusal
  await expect(firstPut).rejects.toThrow(/409: .*replaced or forgotten/);
});

describe('unsafe archives (422), nothing written outside the staging', () => {
  const chain = [
    { name: 'd', type: 'symlink' as const, linkname: '.' },
    { name: 'x', type: 'symlink' as const, linkname: 'd/d/d/../../../SECRET' },
  ];
  for (const [part, kind] of [
    ['checkpoint', 'checkpoint'],
    ['rootfs', 'rootfs'],
    ['volume/v1', 'volume'],
  ] as const) {
    test(`the symlink chain d -> . ; x -> d/d/d/../../../SECRET in a ${kind} part`, async () => {
      const id = `m-chain-${kind}`;
      const g = grant(id, ['checkpoint', 'rootfs', 'volume/v1']);
      const plan = await planTransfer(source, g, id, [
        { part: 'checkpoint', bytes: 0, entries: 10, encoding: 'identity' },
        ...(part === 'checkpoint' ? [] : [{ part, bytes: 0, entries: 10, encoding: 'identity' }]),
      ]);
      const token = plan.parts.find((p) => p.part === part)!.token;
      const before = listAll(tmp).filter((p) => !p.startsWith('staging'));
      await expect(sendStream(source, { ...target, token }, id, part, await archive(chain))).rejects.toThrow(
        kind === 'checkpoint' ? /422.*symlink refused in a checkpoint/ : /422.*"\.\." after a name/,
      );
      expect(listAll(tmp).filter((p) => !p.startsWith('staging'))).toEqual(before);
      expect(fs.existsSync(path.join(stagingRoot, id, part))).toBe(false);
    });
  }

  test('hard links and devices in a checkpoint', async () => {
    const g = grant('m-ckpt-link', ['checkpoint']);
    let plan = await planTransfer(source, g, 'm-ckpt-link', [{ part: 'checkpoint', bytes: 10, entries: 10, encoding: 'identity' }]);
    const link = [
      { name: 'a', body: 'x' },
      { name: 'h', type: 'link' as const, linkname: 'a' },
    ];
    await expect(sendStream(source, { ...target, token: plan.parts[0].token }, 'm-ckpt-link', 'checkpoint', await archive(link))).rejects.toThrow(
      /422.*hard link refused/,
    );
    plan = await planTransfer(source, g, 'm-ckpt-link', [{ part: 'checkpoint', bytes: 10, entries: 10, encoding: 'identity' }]);
    const dev = [{ name: 'null', type: 'character-device' as const, devmajor: 1, devminor: 3 }];
    await expect(sendStream(source, { ...target, token: plan.parts[0].token }, 'm-ckpt-link', 'checkpoint', await archive(dev))).rejects.toThrow(/422.*device/);
  });
});

test('setuid and setgid are stripped in volumes and checkpoints, kept in the rootfs diff', async () => {
  const g = grant('m-suid', ['checkpoint', 'rootfs', 'volume/v1']);
  const decl = (part: string) => ({ part, bytes: 10, entries: 5, encoding: 'identity' });
  const plan = await planTransfer(source, g, 'm-suid', [decl('checkpoint'), decl('rootfs'), decl('volume/v1')]);
  const entry = [{ name: 'su', mode: 0o6755, uid: 0, gid: 0, body: 'x' }];
  for (const p of plan.parts) await sendStream(source, { ...target, token: p.token }, 'm-suid', p.part, await archive(entry));
  const mode = (part: string) => fs.statSync(path.join(stagingRoot, 'm-suid', part, 'su')).mode & 0o7777;
  expect(mode('volume/v1')).toBe(0o755);
  expect(mode('checkpoint')).toBe(0o755);
  expect(mode('rootfs')).toBe(0o6755);
});

test('gzip negotiated per part: used when the target accepts it, identity when it does not; a mismatched PUT is 400', async () => {
  const g = grant('m-gz', ['checkpoint', 'rootfs']);
  const src = tree('gz', 2_000_000);
  const out = await transferParts({ ...source, compression: 'gzip' }, g, 'm-gz', [{ part: 'checkpoint', dir: src, kind: 'checkpoint' }]);
  expect(out.receipts[0].bytes).toBeLessThan(100_000); // 2 MB of one byte value, compressed
  expect(fs.readFileSync(path.join(stagingRoot, 'm-gz', 'checkpoint', 'sub', 'b.bin')).length).toBe(2_000_000);

  const plain = new DataChannelServer({
    host: 'compute2',
    bindHost: '127.0.0.1',
    port: 0,
    maxBytes: 50_000_000,
    grants,
    handler: handler(path.join(tmp, 'staging-plain')),
    tls: tlsOf.compute2,
    acceptEncodings: ['identity'],
  });
  const address = await plain.listen();
  try {
    const g2 = { ...target, address, token: grants.grantUpload('m-gz2', 'compute1', ['checkpoint']) };
    const plan = await planTransfer(source, g2, 'm-gz2', [{ part: 'checkpoint', bytes: 2_000_006, entries: 4, encoding: 'gzip' }]);
    expect(plan.parts[0].encoding).toBe('identity');
    await expect(sendTree(source, { ...g2, token: plan.parts[0].token }, 'm-gz2', 'checkpoint', src, 'checkpoint', { encoding: 'gzip' })).rejects.toThrow(
      /400.*planned as identity, sent as gzip/,
    );
  } finally {
    await plain.close();
  }
});

test('the bandwidth cap holds across parts', async () => {
  const throttle = new Throttle(2 * 1024 * 1024);
  const t0 = Date.now();
  await Promise.all([throttle.take(512 * 1024), throttle.take(512 * 1024), throttle.take(512 * 1024)]);
  // 1.5 MiB at 2 MiB/s: at least 750 ms less the 100 ms burst.
  expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  const g = grant('m-bw', ['checkpoint']);
  const src = tree('bw', 1_000_000);
  const t1 = Date.now();
  await transferParts({ ...source, bandwidthBytesPerSec: 2 * 1024 * 1024 }, g, 'm-bw', [{ part: 'checkpoint', dir: src, kind: 'checkpoint' }]);
  expect(Date.now() - t1).toBeGreaterThanOrEqual(350);
});

test('the first part that fails stops the others at once', async () => {
  const g = grant('m-stop', ['checkpoint', 'rootfs']);
  const bad = path.join(tmp, 'src', 'stop-bad');
  fs.mkdirSync(bad, { recursive: true });
  fs.symlinkSync('x', path.join(bad, 'link')); // no symlinks in a checkpoint: 422 at once
  const big = tree('stop-big', 3_000_000);
  const t0 = Date.now();
  // 3 MB at 1 MiB/s would take about 3 s.
  await expect(
    transferParts({ ...source, bandwidthBytesPerSec: 1024 * 1024 }, g, 'm-stop', [
      { part: 'checkpoint', dir: bad, kind: 'checkpoint' },
      { part: 'rootfs', dir: big, kind: 'rootfs' },
    ]),
  ).rejects.toThrow(/422.*symlink refused in a checkpoint/);
  expect(Date.now() - t0).toBeLessThan(1500);
  await sleep(300);
  expect(listAll(path.join(stagingRoot, 'm-stop'))).toEqual([]);
});

describe('mutual TLS', () => {
  test('the upload is bound to the source host: another host of the same CA is refused (403)', async () => {
    const g = grant('m-bound', ['checkpoint']);
    await expect(planTransfer(stranger, g, 'm-bound', [{ part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' }])).rejects.toThrow(
      /403.*bound to sender compute1, but the client certificate names compute3/,
    );
  });

  test('a client without a certificate, or with one from another CA, does not get through the handshake', async () => {
    const g = grant('m-nocert', ['checkpoint']);
    const decl = [{ part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' }];
    await expect(planTransfer({ tls: { ...tlsOf.compute1, cert: Buffer.alloc(0), key: Buffer.alloc(0) } }, g, 'm-nocert', decl)).rejects.toThrow(/failed/);
    await expect(planTransfer(foreign, g, 'm-nocert', decl)).rejects.toThrow(/failed/);
    // And a raw TLS client with no certificate at all.
    const status = await new Promise<string>((resolve) => {
      const req = https.request({
        host: '127.0.0.1',
        port: Number(target.address.split(':')[1]),
        path: '/v1/migrations/m-nocert/plan',
        method: 'POST',
        ca: tlsOf.compute1.ca,
        servername: 'compute2',
      });
      req.on('response', (res) => resolve(String(res.statusCode)));
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.end('{}');
    });
    expect(status).toMatch(/^error/);
  });

  test('the client refuses a server whose certificate is for another host', async () => {
    const g = grant('m-mitm', ['checkpoint']);
    await expect(
      planTransfer(source, { ...g, host: 'compute9' }, 'm-mitm', [{ part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' }]),
    ).rejects.toThrow(/compute9|altnames/);
  });

  test('plain HTTP to the TLS channel is refused', async () => {
    const status = await new Promise<string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: Number(target.address.split(':')[1]), path: '/v1/migrations/x/plan', method: 'POST' });
      req.on('response', (res) => resolve(String(res.statusCode)));
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.end('{}');
    });
    expect(status).not.toBe('200');
    expect(status).not.toMatch(/^[2]/);
  });
});

test('the image export: one complete GET per token, bound to the receiving host', async () => {
  const token = grants.grantExport('m-img', 'compute1'); // compute1 receives here
  await expect(fetchImage(stranger, { ...target, token }, 'm-img')).rejects.toThrow(/403.*bound to receiver compute1/);
  const res = await fetchImage(source, { ...target, token }, 'm-img');
  let body = '';
  for await (const c of res) body += String(c);
  expect(body).toBe('image of m-img');
  await expect(fetchImage(source, { ...target, token }, 'm-img')).rejects.toThrow(/403.*already used/);
});

describe('a full disk', () => {
  const small = path.join(tmp, 'small');
  let full: DataChannelServer;
  let address: string;
  let mounted = false;
  beforeAll(async () => {
    fs.mkdirSync(small, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ferry-test', small]);
    mounted = true;
    full = new DataChannelServer({
      host: 'compute2',
      bindHost: '127.0.0.1',
      port: 0,
      maxBytes: 50_000_000,
      grants,
      handler: handler(small),
      tls: tlsOf.compute2,
    });
    address = await full.listen();
  });
  afterAll(async () => {
    await full?.close();
    if (mounted) execFileSync('umount', [small]);
  });

  test('a plan larger than the free space: 507 with free and needed bytes', async () => {
    const g = { ...target, address, token: grants.grantUpload('m-full1', 'compute1', ['checkpoint']) };
    await expect(planTransfer(source, g, 'm-full1', [{ part: 'checkpoint', bytes: 5_000_000, entries: 4, encoding: 'identity' }])).rejects.toThrow(
      /507.*no space left on compute2 staging for migration m-full1: free \d+ bytes, needed 5000000/,
    );
    expect(listAll(small)).toEqual([]);
  });

  test('ENOSPC while extracting: 507 with free and needed bytes, the staging removed', async () => {
    const g = { ...target, address, token: grants.grantUpload('m-full2', 'compute1', ['checkpoint']) };
    // 900 kB of content in 300 files fit the declaration and the free bytes, not the 4 KiB pages of tmpfs.
    const plan = await planTransfer(source, g, 'm-full2', [{ part: 'checkpoint', bytes: 900_000, entries: 400, encoding: 'identity' }]);
    const blocks = Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: 'y'.repeat(3000) }));
    await expect(sendStream(source, { ...g, token: plan.parts[0].token }, 'm-full2', 'checkpoint', await archive(blocks))).rejects.toThrow(
      /507.*no space left on compute2 staging for migration m-full2: free \d+ bytes, needed 900000/,
    );
    expect(listAll(small)).toEqual([]);
  });
});
