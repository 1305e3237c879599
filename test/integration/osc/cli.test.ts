/**
 * The real `openstack` command with Ferry's plugin against the development cloud: migrate a
 * counter with --wait, list/show the migration, abort an unknown one, list the hosts and their
 * modes; Redis moved with --post-copy --wait (bytes and mode in the progress), force complete
 * refused on a finished migration.
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { sleep } from '../../../src/common/sleep.js';
import { engine, execOut, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, waitKnown } from '../../helpers/ferry.js';
import { installPlugin, openstack } from './helpers.js';

jest.setTimeout(300_000);

const name = uniqueName('osc-counter');
const redis = uniqueName('osc-pc-redis');
let uuid = '';

beforeAll(async () => {
  const inst = await installPlugin();
  expect(inst.stderr).toBe('');
  expect(inst.code).toBe(0);
  const c = await engine('compute1').createContainer({ Image: 'ferry/counter', name });
  await c.start();
});

afterAll(async () => {
  for (const h of ['compute1', 'compute2']) for (const n of [name, redis]) await removeQuietly(engine(h), n);
});

test("the plugin adds its commands beside Swift's `container` group", async () => {
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

test('the CLI at two microversions against one server, and a 406 with the supported range', async () => {
  // Default: the highest both know (1.4 here): hosts show their status. At 1.1 there is no such field yet.
  const now = await openstack(['container', 'host', 'list', '-f', 'json', '-c', 'Name', '-c', 'Status']);
  expect(now.code).toBe(0);
  expect((JSON.parse(now.stdout) as Record<string, unknown>[]).find((h) => h.Name === 'compute1')?.Status).toBe('enabled');
  const old = await openstack(['--os-container-migration-api-version', '1.1', 'container', 'host', 'list', '-f', 'json', '-c', 'Name', '-c', 'Status']);
  expect(old.code).toBe(0);
  expect((JSON.parse(old.stdout) as Record<string, unknown>[]).find((h) => h.Name === 'compute1')?.Status).toBeNull();
  const beyond = await openstack(['--os-container-migration-api-version', '1.99', 'container', 'host', 'list']);
  expect(beyond.code).toBe(1);
  expect(beyond.stderr.trim().split('\n')).toEqual([
    expect.stringMatching(/^Version 1\.99 of the container-migration API is not supported: this server supports 1\.0 to 1\.\d+\. \(HTTP 406, request req-/),
  ]);
});

interface ModeSupport {
  ok: boolean;
  reason: string | null;
}

test('host list shows the modes each host supports, --long why it lacks the others', async () => {
  const rest = (await admin<{ hosts: { name: string; criu_ok: boolean; modes: Record<'pre_copy' | 'post_copy', ModeSupport> | null }[] }>('GET', '/v1/hosts'))
    .body.hosts;
  const r = await openstack(['container', 'host', 'list', '-f', 'json']);
  expect(r.code).toBe(0);
  const rows = JSON.parse(r.stdout) as Record<string, string>[];
  const long = JSON.parse((await openstack(['container', 'host', 'list', '--long', '-f', 'json'])).stdout) as Record<string, string>[];
  for (const n of ['compute1', 'compute2']) {
    const h = rest.find((x) => x.name === n);
    expect(h?.criu_ok).toBe(true);
    // The dev cloud's compute hosts permit post-copy; this kernel lacks dirty tracking (pre-copy).
    expect(h?.modes?.post_copy.ok).toBe(true);
    const want = ['stop-and-copy', ...(h?.modes?.pre_copy.ok ? ['pre-copy'] : []), 'post-copy'];
    expect(rows.find((x) => x.Name === n)?.Modes).toBe(want.join(', '));
    const lacking = long.find((x) => x.Name === n)?.['Unavailable Modes'];
    if (h?.modes?.pre_copy.ok) expect(lacking).toBe('');
    else expect(lacking).toBe(`pre-copy: ${(h?.modes?.pre_copy.reason ?? '').split(/\s+/).join(' ')}`);
  }
  expect(rows[0]).not.toHaveProperty('Unavailable Modes');
});

/** The disk pre-copy's part of a progress line or summary (the dev cloud pre-copies by default). */
const DISK = String.raw`disk \d+ rounds? [\d.]+ (B|kB|MB|GB) live, [\d.]+ (B|kB|MB|GB) frozen`;

test('container migrate --wait moves the counter and reports the downtime', async () => {
  await sleep(2000);
  const r = await openstack(['container', 'migrate', name, '--host', 'compute2', '--wait', '-f', 'json']);
  console.log(`openstack container migrate ${name} --host compute2 --wait\n${r.stderr}`);
  expect(r.code).toBe(0);
  const m = JSON.parse(r.stdout) as Record<string, unknown>;
  expect(m).toMatchObject({ container_name: name, source_host: 'compute1', dest_host: 'compute2', status: 'completed', progress: 100 });
  expect(m.freeze_ms).toEqual(expect.any(Number));
  uuid = m.uuid as string;
  // The progress bar and phases went to stderr, then the one-line summary with the downtime. Which
  // statuses a poll sees depends on timing (a fast move can be `running` between two polls), so
  // the claim is: bars for the statuses seen, their percentages rising, the last one 100% completed.
  const bars = [...r.stderr.matchAll(/\[[#.]+\]\s+(\d+)%\s+compute1 -> compute2\s+([a-z-]+)/g)].map((x) => ({ pct: Number(x[1]), status: x[2] }));
  expect(bars.length).toBeGreaterThanOrEqual(2);
  expect(bars.map((b) => b.pct)).toEqual([...bars.map((b) => b.pct)].sort((a, b) => a - b));
  expect(bars[bars.length - 1]).toEqual({ pct: 100, status: 'completed' });
  expect(bars.some((b) => b.status !== 'completed' && b.status !== 'accepted')).toBe(true);
  expect(r.stderr).toContain(`Migration ${uuid} of ${name} completed: compute1 -> compute2 in `);
  // The dev cloud pre-copies the disk (the default): the rounds and bytes are in the record and the summary.
  expect(r.stderr).toMatch(new RegExp(`downtime \\d+ ms, mode stop-and-copy, ${DISK}\n`));
  expect(m.mode).toBe('stop-and-copy');
  expect(m.disk_rounds).toBeGreaterThanOrEqual(1);
  expect(m.disk_live_bytes).toEqual(expect.any(Number));
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

  const mine = JSON.parse((await openstack(['container', 'migration', 'list', '--container', name, '--long', '-f', 'json'])).stdout) as Record<
    string,
    unknown
  >[];
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

test('container migrate --post-copy --wait moves Redis, showing the memory moved and the mode', async () => {
  const c1 = engine('compute1');
  await (await c1.createContainer({ Image: 'ferry/redis:latest', name: redis })).start();
  for (let i = 0; i < 100 && (await execOut(c1, redis, ['redis-cli', 'PING']).catch(() => '')) !== 'PONG'; i++) await sleep(100);
  expect(await execOut(c1, redis, ['redis-cli', 'DEBUG', 'POPULATE', '100000'])).toBe('OK');
  expect(await execOut(c1, redis, ['redis-cli', 'SET', 'sentinel', redis])).toBe('OK');
  await waitKnown(redis, 'compute1');

  const r = await openstack(['container', 'migrate', redis, '--host', 'compute2', '--post-copy', '--wait', '--poll-interval', '0.1', '-f', 'json']);
  console.log(`openstack container migrate ${redis} --host compute2 --post-copy --wait\n${r.stderr}`);
  expect(r.code).toBe(0);
  const m = JSON.parse(r.stdout) as Record<string, unknown>;
  expect(m).toMatchObject({ container_name: redis, dest_host: 'compute2', status: 'completed', mode: 'post-copy', memory_remaining_bytes: 0 });
  // 100k keys: Redis holds some 10 MB; every byte of it arrived.
  expect(m.memory_total_bytes).toBeGreaterThan(5_000_000);
  expect(m.memory_processed_bytes).toBe(m.memory_total_bytes);
  const lines = r.stderr.trim().split('\n');
  // Every progress line says the mode; once the memory is known it is shown, in MB.
  for (const l of lines.slice(0, -1)) expect(l).toMatch(/compute1 -> compute2 .*, mode post-copy$/);
  const mb = ((m.memory_total_bytes as number) / 1e6).toFixed(1);
  expect(lines[lines.length - 2]).toMatch(new RegExp(`\\s100% compute1 -> compute2  completed ${mb}/${mb} MB memory, ${DISK}, mode post-copy$`));
  // Polls every 0.1 s see the migration in flight at least once; which phase they catch depends on the machine's load.
  expect(r.stderr).toMatch(/ (accepted|queued|preparing|pre-migrating|running|post-migrating) (\([a-z-]+\) )?.*mode post-copy\n/);
  expect(lines[lines.length - 1]).toMatch(
    new RegExp(`^Migration ${String(m.uuid)} of ${redis} completed: compute1 -> compute2 in [\\d.]+ s, downtime \\d+ ms, mode post-copy, ${DISK}$`),
  );
  const c2 = engine('compute2');
  expect((await c2.getContainer(redis).inspect()).State.Running).toBe(true);
  expect(await execOut(c2, redis, ['redis-cli', 'GET', 'sentinel'])).toBe(redis);
  expect(await execOut(c2, redis, ['redis-cli', 'DBSIZE'])).toBe('100001');
  await expect(c1.getContainer(redis).inspect()).rejects.toThrow();

  const show = JSON.parse((await openstack(['container', 'migration', 'show', String(m.uuid), '-f', 'json'])).stdout) as Record<string, unknown>;
  expect(show).toMatchObject({ mode: 'post-copy', memory_total_bytes: m.memory_total_bytes, memory_remaining_bytes: 0 });
  const listed = JSON.parse((await openstack(['container', 'migration', 'list', '--container', redis, '--long', '-f', 'json'])).stdout) as Record<
    string,
    unknown
  >[];
  expect(listed).toHaveLength(1);
  expect(listed[0]).toMatchObject({ UUID: m.uuid, Mode: 'post-copy', 'Remaining Memory Bytes': 0 });

  // A finished migration has nothing left to complete: 409, in one line.
  const forced = await openstack(['container', 'migration', 'force', 'complete', String(m.uuid)]);
  expect(forced.code).not.toBe(0);
  expect(forced.stdout).toBe('');
  const errLines = forced.stderr.trim().split('\n');
  expect(errLines).toHaveLength(1);
  expect(errLines[0]).toMatch(
    new RegExp(`^Migration ${String(m.uuid)} is already completed; there is nothing to complete\\. \\(HTTP 409, request req-[0-9a-f-]+\\)$`),
  );
});

test('force complete of an unknown uuid fails with one clear line; a member is refused', async () => {
  const id = '00000000-0000-4000-8000-000000000000';
  const r = await openstack(['container', 'migration', 'force', 'complete', id]);
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^Migration ${id} could not be found\\. \\(HTTP 404, request req-`))]);
  const demo = await openstack(['container', 'migration', 'force', 'complete', id], 'demo');
  expect(demo.code).not.toBe(0);
  expect(demo.stderr.trim().split('\n')).toEqual([expect.stringMatching(/ferry:migration:force_complete.*\(HTTP 403, request req-/)]);
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
