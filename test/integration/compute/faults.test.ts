/**
 * Faults after the freeze (truncated transfer, corrupted transfer, wrong token, the target
 * dropping the connection, a restore failure on the target) each end with the container
 * running on the source WITH its state (the count goes on, no restart from 1), and nothing
 * left on the target. A failure before the freeze leaves the source untouched.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { clientTlsOptions, loadTlsMaterial } from '../../../src/compute/datachannel/tls.js';
import type { Faults } from '../../../src/compute/faults.js';
import { ensureHostCert, pkiDir } from '../../../src/devcloud/certs.js';
import { cloud } from '../../helpers/cloud.js';
import { dk, exists, isRunning, lastCount, uniqueName, waitFor, useAgents, migrate } from './helpers.js';

jest.setTimeout(300_000);

const names: string[] = [];
const agents = useAgents(names);

afterEach(() => {
  agents.a1.setFaults({});
  agents.a2.setFaults({});
});

async function startCounter(tag: string): Promise<{ name: string; before: number }> {
  const name = uniqueName(tag);
  names.push(name);
  await dk('compute1', ['run', '-d', '--name', name, '-e', 'COUNTER_INTERVAL=0.2', 'ferry/counter']);
  await dk('compute1', ['exec', name, 'sh', '-c', 'echo kept > /kept.txt']);
  const before = await waitFor('count >= 3', async () => {
    const n = await lastCount('compute1', name);
    return n >= 3 ? n : null;
  });
  return { name, before };
}

/** Running on compute1, the count continued without a restart, nothing on compute2. */
async function expectBackOnSource(name: string, before: number, migrationId: string): Promise<void> {
  expect(await isRunning('compute1', name)).toBe(true);
  const now = await waitFor('the count to go on', async () => {
    const n = await lastCount('compute1', name);
    return n > before + 2 ? n : null;
  });
  const nums = (await dk('compute1', ['logs', name])).split('\n').filter(Boolean).map(Number);
  // One unbroken sequence 1..now: the process was restored, not started afresh.
  expect(nums[0]).toBe(1);
  for (let i = 1; i < nums.length; i++) expect(nums[i]).toBe(nums[i - 1] + 1);
  expect(now).toBeGreaterThan(before);
  expect(await dk('compute1', ['exec', name, 'cat', '/kept.txt'])).toBe('kept');
  // Nothing left on the target: no container, no record, no staged data.
  expect(await exists('compute2', name)).toBe(false);
  expect(agents.a2.load(migrationId)).toBeNull();
  const staging = await agents.a2.driver.stagingRoot();
  expect(fs.existsSync(path.join(staging, migrationId))).toBe(false);
}

describe.each<[string, { src?: Faults; dst?: Faults }, string, RegExp]>([
  ['truncated transfer', { src: { truncateTransfer: true } }, 'live_migration', /corrupted or truncated|unreadable|incomplete/],
  ['corrupted transfer', { src: { corruptTransfer: true } }, 'live_migration', /corrupted or truncated|unreadable|incomplete/],
  ['target drops the connection', { dst: { cutTransferAfterBytes: 50_000 } }, 'live_migration', /failed|refused|socket|reset|EPIPE/i],
  ['restore fails on the target', { dst: { failRestore: true } }, 'post_migration_at_destination', /restore/i],
])('%s', (_label, faults, step, message) => {
  test('rolls back to the source with its state', async () => {
    const { name, before } = await startCounter('fault');
    if (faults.src) agents.a1.setFaults(faults.src);
    if (faults.dst) agents.a2.setFaults(faults.dst);
    const r = await migrate(agents.a1, agents.a2, name);
    expect(r.status).toBe('failed');
    expect(r.phase).toBe('rolled-back');
    expect(step === 'post_migration_at_destination' ? r.live : r.pre).toBeDefined();
    expect(r.post).toBeUndefined();
    expect(r.error).toMatch(message);
    expect(r.error).toMatch(/rolled back to compute1/);
    await expectBackOnSource(name, before, r.uuid);
  });
});

test('wrong token: refused with 403, rolled back; no token: 401', async () => {
  const { name, before } = await startCounter('token');
  const id = `tok-${Date.now()}`;
  const src = await agents.a1.checkCanMigrateSource({ migration_id: id, container: name, dest_host: 'compute2' });
  const pre = await agents.a2.preMigration({ migration_id: id, source_host: 'compute1', source: src.source, spec: src.spec, export: src.export });

  // No token at all, straight at the data channel (with compute1's certificate: without one the TLS handshake fails first).
  const tls = clientTlsOptions(loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), 'compute1')), 'compute2');
  const status = await new Promise<number>((resolve, reject) => {
    const [h, p] = pre.upload.address.split(':');
    const req = https.request({ host: h, port: Number(p), method: 'PUT', path: `/v1/migrations/${id}/parts/checkpoint`, ...tls }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end('x');
  });
  expect(status).toBe(401);

  let err: Error | null = null;
  try {
    await agents.a1.liveMigration({ migration_id: id, upload: { ...pre.upload, token: `${pre.upload.token}x` } });
  } catch (e) {
    err = e as Error;
  }
  expect(err?.name).toBe('TransferFailed');
  expect(err?.message).toMatch(/403/);
  // The agent never rolls back on its own: the conductor's order is target first, then source.
  expect(await isRunning('compute1', name)).toBe(false);
  await agents.a2.rollbackAtDestination({ migration_id: id });
  const rb = await agents.a1.rollbackAtSource({ migration_id: id });
  expect(rb.running).toBe(true);
  expect(rb.from_checkpoint).toBe(true);
  await expectBackOnSource(name, before, id);
});

test('a failure before the freeze leaves the source untouched', async () => {
  const { name } = await startCounter('prefreeze');
  const pidBefore = await dk('compute1', ['inspect', '-f', '{{.State.Pid}}', name]);
  agents.a2.setFaults({ failPreMigration: true });
  const r = await migrate(agents.a1, agents.a2, name);
  expect(r.status).toBe('failed');
  expect(r.phase).toBeNull(); // never frozen, nothing rolled back on the source
  expect(r.pre).toBeUndefined();
  expect(r.error).toMatch(/fault injected: pre_migration/);
  // The same process kept running all along.
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Pid}}', name])).toBe(pidBefore);
  expect(await exists('compute2', name)).toBe(false);
});
