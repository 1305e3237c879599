/**
 * The real `openstack` command with Ferry's plugin against the development cloud: migrate a
 * counter with --wait, list/show the migration, abort an unknown one, list the hosts.
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { sleep } from '../../../src/common/sleep.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { installPlugin, openstack } from './helpers.js';

jest.setTimeout(300_000);

const name = uniqueName('osc-counter');
let uuid = '';

beforeAll(async () => {
  const inst = await installPlugin();
  expect(inst.stderr).toBe('');
  expect(inst.code).toBe(0);
  const c = await engine('compute1').createContainer({ Image: 'ferry/counter', name });
  await c.start();
});

afterAll(async () => {
  for (const h of ['compute1', 'compute2']) await removeQuietly(engine(h), name);
});

test('the plugin adds its commands beside Swift\'s `container` group', async () => {
  const help = await openstack(['container', 'migration', 'list', '--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('--status <status>');
  expect(help.stdout).toContain('python-ferryclient');
  const swift = await openstack(['container', 'list', '--help']);
  expect(swift.code).toBe(0);
});

test('host list shows compute1 and compute2 up', async () => {
  const r = await openstack(['container', 'host', 'list', '-f', 'json']);
  expect(r.code).toBe(0);
  const hosts = JSON.parse(r.stdout) as Record<string, unknown>[];
  const state = Object.fromEntries(hosts.map((h) => [h.Name, h.State]));
  expect(state).toMatchObject({ compute1: 'up', compute2: 'up' });
  expect(hosts.find((h) => h.Name === 'compute1')?.['CRIU Version']).toMatch(/^4\.\d+/);
  const v = await openstack(['container', 'host', 'list', '-f', 'value', '-c', 'Name']);
  expect(v.stdout.split('\n')).toEqual(expect.arrayContaining(['compute1', 'compute2']));
});

test('container migrate --wait moves the counter and reports the downtime', async () => {
  await sleep(2000);
  const r = await openstack(['container', 'migrate', name, '--host', 'compute2', '--wait', '-f', 'json']);
  console.log(`openstack container migrate ${name} --host compute2 --wait\n${r.stderr}`);
  expect(r.code).toBe(0);
  const m = JSON.parse(r.stdout) as Record<string, unknown>;
  expect(m).toMatchObject({ container_name: name, source_host: 'compute1', dest_host: 'compute2', status: 'completed', progress: 100 });
  expect(m.freeze_ms).toEqual(expect.any(Number));
  uuid = m.uuid as string;
  // The progress bar and phases went to stderr, then the one-line summary with the downtime.
  expect(r.stderr).toMatch(/\[#+\.*\]\s+\d+%.*compute1 -> compute2\s+running/);
  expect(r.stderr).toContain(`Migration ${uuid} of ${name} completed: compute1 -> compute2 in `);
  expect(r.stderr).toMatch(/downtime \d+ ms/);
  const where = await engine('compute2').getContainer(name).inspect();
  expect(where.State.Running).toBe(true);
  await expect(engine('compute1').getContainer(name).inspect()).rejects.toThrow();
});

test('migration list -f json parses and shows it; filters work', async () => {
  expect(uuid).not.toBe('');
  const r = await openstack(['container', 'migration', 'list', '-f', 'json']);
  expect(r.code).toBe(0);
  const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
  const row = rows.find((x) => x.UUID === uuid);
  expect(row).toMatchObject({ Container: name, 'Source Host': 'compute1', 'Dest Host': 'compute2', Status: 'completed' });
  expect(row?.['Downtime (ms)']).toEqual(expect.any(Number));

  const mine = JSON.parse((await openstack(['container', 'migration', 'list', '--container', name, '--long', '-f', 'json'])).stdout) as Record<string, unknown>[];
  expect(mine.map((x) => x.UUID)).toEqual([uuid]);
  expect(mine[0]['Total (ms)']).toEqual(expect.any(Number));
  const failed = JSON.parse((await openstack(['container', 'migration', 'list', '--status', 'failed', '-f', 'json'])).stdout) as Record<string, unknown>[];
  expect(failed.map((x) => x.UUID)).not.toContain(uuid);
});

test('migration show gives the timings', async () => {
  const r = await openstack(['container', 'migration', 'show', uuid, '-f', 'json']);
  expect(r.code).toBe(0);
  const m = JSON.parse(r.stdout) as Record<string, number>;
  for (const k of ['freeze_ms', 'checkpoint_ms', 'transfer_ms', 'restore_ms', 'total_ms']) {
    expect(m[k]).toEqual(expect.any(Number));
    expect(m[k]).toBeGreaterThanOrEqual(0);
  }
  expect(m.total_ms).toBeGreaterThan(0);
  expect(m.total_ms).toBeGreaterThanOrEqual(m.freeze_ms);
  const v = await openstack(['container', 'migration', 'show', uuid, '-f', 'value', '-c', 'status']);
  expect(v.stdout.trim()).toBe('completed');
});

test('abort of an unknown uuid fails with one clear line', async () => {
  const id = '00000000-0000-4000-8000-000000000000';
  const r = await openstack(['container', 'migration', 'abort', id]);
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^[Mm]igration ${id} could not be found\\. \\(HTTP 404, request req-[0-9a-f-]+\\)$`));
});

test('migrating an unknown container fails with one clear line', async () => {
  const r = await openstack(['container', 'migrate', 'no-such-container-osc', '--wait']);
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/no-such-container-osc.*\(HTTP 404/);
});

test('a non-admin user is refused migrating, in one line', async () => {
  const r = await openstack(['container', 'migrate', name], 'demo');
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/\(HTTP 403, request req-/);
});
