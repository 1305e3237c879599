/**
 * The data channel under attack, on the dev cloud's real engines and agents with the dev
 * cloud's certificates: a migration is prepared for real (check on compute1, pre_migration on
 * compute2: image, shell, upload grant), then someone holding compute1's certificate, or no
 * certificate, tries what the channel must refuse: wrong, reused and expired tokens, a part
 * outside the plan, a checkpoint name that climbs out, the symlink chain, two PUTs of one
 * part at once, more than declared, no client certificate, plain HTTP, an image archive whose
 * tag the target already has on another image. After each: nothing
 * was written on compute2 outside the migration's staging directory; after the rollback the
 * staging and the tokens are gone. The running ferry-compute services are probed too: their
 * channel speaks only mutual TLS.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import tar from 'tar-stream';
import { MigrationAgent } from '../../../src/compute/agent.js';
import { planTransfer, commit, sendStream, sendTree, type ChannelClientOptions, type ChannelTarget } from '../../../src/compute/datachannel/sender.js';
import { loadTlsMaterial } from '../../../src/compute/datachannel/tls.js';
import type { PreMigrationResult } from '../../../src/compute/steps.js';
import { ensureHostCert, pkiDir } from '../../../src/devcloud/certs.js';
import { cloud } from '../../helpers/cloud.js';
import { dk, lastCount, makeAgent, makeDriver, migrate, removeEverywhere, uniqueName, waitFor, workDir } from '../compute/helpers.js';

jest.setTimeout(300_000);

const name = uniqueName('dc');
let a1: MigrationAgent;
let a2: MigrationAgent;
let shortLived: MigrationAgent;
let source: ChannelClientOptions;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-dc-int-'));

function archive(entries: { name: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string; body?: string }[]): Readable {
  const pack = tar.pack();
  for (const { body, ...h } of entries) pack.entry(h, body ?? '');
  pack.finalize();
  return pack as unknown as Readable;
}

function tree(dir: string): string {
  fs.mkdirSync(path.join(scratch, dir), { recursive: true });
  fs.writeFileSync(path.join(scratch, dir, 'pages-1.img'), Buffer.alloc(50_000, 1));
  return path.join(scratch, dir);
}

/**
 * What compute2 holds outside one migration's staging dir, where an escape would land: this
 * file's other staging dirs, the folder above the staging root (`../../../SECRET` from a part),
 * the engine's data root, /etc.
 */
async function outside(agent: MigrationAgent, migrationId: string): Promise<string[]> {
  const root = await agent.driver.stagingRoot();
  const mine = fs.readdirSync(root).filter((n) => n.startsWith('dc-') && n !== migrationId);
  const above = fs.readdirSync(path.dirname(root));
  const dockerRoot = path.dirname(path.dirname(root));
  const top = fs.readdirSync(dockerRoot);
  const etc = fs.statSync('/etc');
  return [
    ...mine.map((o) => `staging:${o}`),
    ...above.map((a) => `above:${a}`),
    ...top.map((t) => `root:${t}`),
    `etc:${etc.mtimeMs}:${fs.readdirSync('/etc').length}`,
  ];
}

/** A migration prepared on compute2 for real: returns its upload grant. */
async function prepare(agent: MigrationAgent, tag: string): Promise<{ id: string; grant: ChannelTarget; pre: PreMigrationResult }> {
  const id = `dc-${tag}-${Date.now().toString(36)}`;
  const checked = await a1.checkCanMigrateSource({ migration_id: id, container: name, dest_host: 'compute2' });
  const pre = await agent.preMigration({ migration_id: id, source_host: 'compute1', spec: checked.spec, export: checked.export });
  return { id, grant: { address: pre.upload.address, host: 'compute2', token: pre.upload.token }, pre };
}

/** Roll the migration back on compute2; its staging and tokens must be gone. */
async function rollBack(agent: MigrationAgent, id: string): Promise<void> {
  await agent.rollbackAtDestination({ migration_id: id });
  await a1.rollbackAtSource({ migration_id: id }).catch(() => undefined);
  expect(fs.existsSync(path.join(await agent.driver.stagingRoot(), id))).toBe(false);
  expect(agent.transfer.holdsTokens(id)).toBe(false);
}

beforeAll(async () => {
  a1 = await makeAgent('compute1');
  a2 = await makeAgent('compute2');
  shortLived = await makeAgent('compute2', { tokenTtlMs: 1500 });
  source = { tls: loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), 'compute1')) };
  await dk('compute1', ['run', '-d', '--name', name, '-e', 'COUNTER_INTERVAL=0.5', 'ferry/counter']);
  await waitFor('the counter to run', async () => (await dk('compute1', ['inspect', '-f', '{{.State.Running}}', name])) === 'true');
});

afterAll(async () => {
  await removeEverywhere([name]);
  await a1?.stop();
  await a2?.stop();
  await shortLived?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('wrong, reused and expired tokens are refused (401/403); a second PUT of a part is 409', async () => {
  const { id, grant } = await prepare(a2, 'tok');
  const before = await outside(a2, id);
  const decl = [{ part: 'checkpoint', bytes: 50_000, entries: 2, encoding: 'identity' }];
  await expect(planTransfer(source, { ...grant, token: '' }, id, decl)).rejects.toThrow(/401/);
  await expect(planTransfer(source, { ...grant, token: `${grant.token}x` }, id, decl)).rejects.toThrow(/403.*wrong token/);
  const plan = await planTransfer(source, grant, id, decl);
  const part = { ...grant, token: plan.parts[0].token };
  const r = await sendTree(source, part, id, 'checkpoint', tree('tok'), 'checkpoint');
  await expect(sendTree(source, part, id, 'checkpoint', tree('tok'), 'checkpoint')).rejects.toThrow(/409.*already received/);
  await commit(source, { ...grant, token: plan.commit_token }, id, { parts: [{ part: 'checkpoint', bytes: r.bytes, sha256: r.sha256 }] });
  await expect(planTransfer(source, grant, id, decl)).rejects.toThrow(/403.*already committed/);
  await expect(sendTree(source, part, id, 'checkpoint', tree('tok'), 'checkpoint')).rejects.toThrow(/403.*used/);
  expect(await outside(a2, id)).toEqual(before);
  await rollBack(a2, id);

  const short = await prepare(shortLived, 'exp');
  await new Promise((res) => setTimeout(res, 1700));
  await expect(planTransfer(source, short.grant, short.id, decl)).rejects.toThrow(/403.*expired/);
  await rollBack(shortLived, short.id);
});

test('a part outside the plan and a volume the target did not create are refused (403)', async () => {
  const { id, grant } = await prepare(a2, 'extra');
  const before = await outside(a2, id);
  await expect(
    planTransfer(source, grant, id, [
      { part: 'checkpoint', bytes: 1, entries: 1, encoding: 'identity' },
      { part: 'volume/someone-elses-data', bytes: 1, entries: 1, encoding: 'identity' },
    ]),
  ).rejects.toThrow(/403.*volume\/someone-elses-data is not expected/);
  const plan = await planTransfer(source, grant, id, [{ part: 'checkpoint', bytes: 50_000, entries: 2, encoding: 'identity' }]);
  await expect(sendTree(source, { ...grant, token: plan.parts[0].token }, id, 'rootfs', tree('extra'), 'rootfs')).rejects.toThrow(/403.*not in the plan/);
  expect(await outside(a2, id)).toEqual(before);
  await rollBack(a2, id);
});

test('a checkpoint name that climbs out ("../../../../../../etc") is refused; the target keeps its own', async () => {
  const { id, grant } = await prepare(a2, 'trav');
  const before = await outside(a2, id);
  const plan = await planTransfer(source, grant, id, [{ part: 'checkpoint', bytes: 50_000, entries: 2, encoding: 'identity' }]);
  const r = await sendTree(source, { ...grant, token: plan.parts[0].token }, id, 'checkpoint', tree('trav'), 'checkpoint');
  await expect(
    commit(source, { ...grant, token: plan.commit_token }, id, {
      checkpoint_name: '../../../../../../etc',
      parts: [{ part: 'checkpoint', bytes: r.bytes, sha256: r.sha256 }],
    }),
  ).rejects.toThrow(/400.*names the checkpoint .* itself/);
  expect(await outside(a2, id)).toEqual(before);
  await rollBack(a2, id);
});

test('the symlink chain is refused (422) in the rootfs diff and in a checkpoint', async () => {
  const { id, grant } = await prepare(a2, 'chain');
  const before = await outside(a2, id);
  const chain = [
    { name: 'd', type: 'symlink' as const, linkname: '.' },
    { name: 'x', type: 'symlink' as const, linkname: 'd/d/d/../../../SECRET' },
  ];
  const plan = await planTransfer(source, grant, id, [
    { part: 'checkpoint', bytes: 0, entries: 5, encoding: 'identity' },
    { part: 'rootfs', bytes: 0, entries: 5, encoding: 'identity' },
  ]);
  for (const p of plan.parts) {
    await expect(sendStream(source, { ...grant, token: p.token }, id, p.part, archive(chain))).rejects.toThrow(/422/);
    expect(fs.existsSync(path.join(await a2.driver.stagingRoot(), id, p.part))).toBe(false);
  }
  expect(await outside(a2, id)).toEqual(before);
  await rollBack(a2, id);
});

test('two concurrent PUTs of one part: the second is 409; more than declared is 413', async () => {
  const { id, grant } = await prepare(a2, 'twice');
  const before = await outside(a2, id);
  const plan = await planTransfer(source, grant, id, [
    { part: 'checkpoint', bytes: 0, entries: 3, encoding: 'identity' },
    { part: 'rootfs', bytes: 0, entries: 3, encoding: 'identity' },
  ]);
  const ck = { ...grant, token: plan.parts[0].token };
  const slow = new PassThrough();
  const first = sendStream(source, ck, id, 'checkpoint', slow);
  await new Promise((res) => setTimeout(res, 300));
  await expect(sendStream(source, ck, id, 'checkpoint', archive([{ name: 'a' }]))).rejects.toThrow(/409.*already being received/);
  slow.end(Buffer.alloc(1024));
  await first;
  // Ten entries where three were declared.
  const many = Array.from({ length: 10 }, (_, i) => ({ name: `f${i}` }));
  await expect(sendStream(source, { ...grant, token: plan.parts[1].token }, id, 'rootfs', archive(many))).rejects.toThrow(
    /413.*more entries than the 3 declared/,
  );
  expect(fs.existsSync(path.join(await a2.driver.stagingRoot(), id, 'rootfs'))).toBe(false);
  expect(await outside(a2, id)).toEqual(before);
  await rollBack(a2, id);
});

describe('TLS is required', () => {
  async function probe(kind: 'https-compute1' | 'https-no-cert' | 'http', address: string): Promise<string> {
    const [h, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    return new Promise<string>((resolve) => {
      const opts = { host: h, port, method: 'POST', path: '/v1/migrations/x/plan', headers: { authorization: 'Bearer x' } };
      const tls = source.tls!;
      const req =
        kind === 'http'
          ? http.request(opts)
          : https.request({
              ...opts,
              ca: tls.ca,
              servername: 'compute2',
              checkServerIdentity: () => undefined,
              ...(kind === 'https-compute1' ? { cert: tls.cert, key: tls.key } : {}),
            });
      req.on('response', (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.end('{}');
    });
  }

  test('only a client with a certificate from the CA gets an answer, from the test agent and from the running ferry-compute services', async () => {
    const addresses = [a2.address, ...cloud().hosts.map((h) => h.migration_address)];
    for (const address of addresses) {
      // Other tests restart the services: wait until this one listens again.
      await waitFor(`${address} to listen`, async () => !(await probe('https-compute1', address)).includes('ECONNREFUSED'), 60_000, 500);
      // With compute1's certificate the channel answers (403: no such grant), so it is there and speaks TLS...
      expect([address, await probe('https-compute1', address)]).toEqual([address, 'status 403']);
      // ...and without a certificate, or without TLS, nothing gets an HTTP answer at all.
      expect([address, await probe('https-no-cert', address)]).toEqual([address, expect.stringMatching(/^error/)]);
      expect([address, await probe('http', address)]).toEqual([address, expect.stringMatching(/^error/)]);
    }
  });
});

test('docker load never moves a tag the target has to another image ID', async () => {
  const counterId = await dk('compute1', ['image', 'inspect', '-f', '{{.Id}}', 'ferry/counter']);
  const streamId = await dk('compute2', ['image', 'inspect', '-f', '{{.Id}}', 'ferry/stream']);
  const tags = ['ferry-t/clash:1', 'ferry-t/clash:2'];
  try {
    await dk('compute1', ['tag', 'ferry/counter', tags[0]]);
    for (const t of tags) await dk('compute2', ['tag', 'ferry/stream', t]);
    // Control: a plain `docker load` of the source's archive moves the target's tag.
    const raw = await a1.driver.exportImage({ id: counterId, ref: tags[0] });
    await new Promise<void>((resolve, reject) => {
      const out = fs.createWriteStream(path.join(scratch, 'raw.tar'));
      raw.pipe(out);
      out.on('finish', resolve);
      raw.on('error', reject);
    });
    await dk('compute2', ['load', '-i', path.join(scratch, 'raw.tar')]);
    expect(await dk('compute2', ['image', 'inspect', '-f', '{{.Id}}', tags[0]])).toBe(counterId);
    // The agent's import of the same archive leaves the target's tag where it was.
    await dk('compute2', ['tag', 'ferry/stream', tags[0]]);
    const r = await a2.driver.importImage({ id: counterId, ref: tags[0] }, fs.createReadStream(path.join(scratch, 'raw.tar')));
    expect(r.bytes).toBeGreaterThan(0);
    expect(await dk('compute2', ['image', 'inspect', '-f', '{{.Id}}', tags[0]])).toBe(streamId);
    expect(await a2.driver.hasImage(counterId)).toBe(true);
    expect(await dk('compute2', ['image', 'inspect', '-f', '{{.Id}}', tags[1]])).toBe(streamId);
  } finally {
    for (const t of tags) {
      await dk('compute1', ['rmi', t], { allowFail: true });
      await dk('compute2', ['rmi', t], { allowFail: true });
    }
  }
});

test('target disk full: a clear 507 from compute2, a clean rollback, the counter goes on on compute1', async () => {
  // compute2's agent stages on a 100 KiB tmpfs; the counter's checkpoint is larger.
  const small = path.join(scratch, 'small-staging');
  fs.mkdirSync(small, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=100k', 'ferry-test-staging', small]);
  const driver = makeDriver('compute2');
  driver.stagingRoot = async () => small;
  const full = new MigrationAgent({
    driver,
    workDir: workDir('compute2'),
    bindHost: '127.0.0.1',
    port: 0,
    maxTransferBytes: 64 * 1024 ** 3,
    channel: { tls: loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), 'compute2')) },
  });
  await full.start();
  try {
    const before = await lastCount('compute1', name);
    const r = await migrate(a1, full, name);
    expect(r.error).toMatch(/507: no space left on compute2 staging for migration \S+: free \d+ bytes, needed \d+/);
    expect([r.status, r.phase]).toEqual(['failed', 'rolled-back']);
    expect(await dk('compute1', ['inspect', '-f', '{{.State.Running}}', name])).toBe('true');
    await waitFor('the count to go on', async () => (await lastCount('compute1', name)) > before + 1);
    expect(await dk('compute2', ['inspect', '-f', '{{.Id}}', name], { allowFail: true })).toBe('');
    expect(fs.readdirSync(small)).toEqual([]);
    expect(full.transfer.holdsTokens(r.uuid)).toBe(false);
  } finally {
    await full.stop();
    execFileSync('umount', [small]);
  }
});
