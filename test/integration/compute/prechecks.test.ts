/**
 * Pre-check refusals on the real engines, each with its reason and a message saying what to
 * change; the container is left running on the source and nothing is created on the target.
 * (Experimental-off, architecture and CRIU-too-old are decided by pure functions whose unit
 * tests are in test/unit/compute/prechecks.test.ts: the dev cloud cannot flip those.)
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { RequestContext } from '../../../src/common/context.js';
import { ContainerSpecRefused, FerryError } from '../../../src/common/errors.js';
import type { MigrationAgent } from '../../../src/compute/agent.js';
import type { ContainerSpec } from '../../../src/compute/driver.js';
import { hasRlimitsPatch } from '../../../src/compute/docker/criu.js';
import { run as runCommand } from '../../../src/compute/docker/exec.js';
import { InProcessComputeAPI } from '../../../src/compute/inprocess.js';
import { cloud } from '../../helpers/cloud.js';
import { craftedCpuinfo } from '../../helpers/cpuinfo.js';
import { dk, exists, isRunning, makeAgent, removeEverywhere, uniqueName, migrate, type MigrationRun } from './helpers.js';

jest.setTimeout(300_000);

let a1: MigrationAgent;
let a2: MigrationAgent;
const names: string[] = [];
const volumes: string[] = [];
const SHARED = '/tmp/ferry-test-shared';

beforeAll(async () => {
  a1 = await makeAgent('compute1', { sharedStoragePaths: [SHARED] });
  a2 = await makeAgent('compute2');
  fs.mkdirSync(`${SHARED}/data`, { recursive: true });
  fs.mkdirSync('/tmp/ferry-test-local', { recursive: true });
});

afterAll(async () => {
  await removeEverywhere(names, volumes);
  await a1?.stop();
  await a2?.stop();
});

/** Refused at the pre-checks: failed before anything was frozen, with the refusal's message (its reason is in the log). */
function refusedFor(r: MigrationRun, reason: string, message: RegExp) {
  expect(r.status).toBe('failed');
  expect(r.phase).toBeNull();
  expect(r.error).toMatch(/migration refused by the (source|target)/);
  expect(r.error).toMatch(message);
  expect(reason).toMatch(/^[a-z_]+$/);
}

async function run(tag: string, args: string[], host = 'compute1'): Promise<string> {
  const name = uniqueName(tag);
  names.push(name);
  await dk(host, ['run', '-d', '--name', name, ...args]);
  return name;
}

async function untouched(name: string) {
  expect(await isRunning('compute1', name)).toBe(true);
  expect(await exists('compute2', name)).toBe(false);
}

test('container not running', async () => {
  const name = await run('stopped', ['ferry/counter']);
  await dk('compute1', ['stop', '-t', '1', name]);
  refusedFor(await migrate(a1, a2, name), 'not_running', /not running: start it first/);
  expect(await exists('compute2', name)).toBe(false);
});

test('same host', async () => {
  const name = await run('same', ['ferry/counter']);
  refusedFor(await migrate(a1, a1, name), 'same_host', /choose another target host/);
  await untouched(name);
});

test('attached TTY', async () => {
  const name = await run('tty', ['-t', 'ferry/counter']);
  refusedFor(await migrate(a1, a2, name), 'tty_attached', /recreate it without -t/);
  await untouched(name);
});

test('privileged (every refusal is reported, not only the first)', async () => {
  // This sandbox cannot start privileged containers ("unable to apply caps"): a created one
  // is refused for both reasons at once.
  const name = uniqueName('priv');
  names.push(name);
  await dk('compute1', ['create', '--name', name, '--privileged', 'ferry/counter']);
  const r = await migrate(a1, a2, name);
  refusedFor(r, 'privileged', /without --privileged/);
  expect(r.error).toMatch(/not running/);
  expect(await exists('compute2', name)).toBe(false);
});

test('host bind mount not on shared storage; one on shared storage passes the check', async () => {
  const name = await run('bind', ['-v', '/tmp/ferry-test-local:/local', 'ferry/counter']);
  refusedFor(await migrate(a1, a2, name), 'host_bind_mount', /shared_storage_paths/);
  await untouched(name);
  const ok = await run('bindok', ['-v', `${SHARED}/data:/shared`, 'ferry/counter']);
  const spec = (await a1.checkCanMigrateSource({ migration_id: `bind-${Date.now()}`, container: ok, dest_host: 'compute2' })).spec;
  expect(spec.binds).toEqual([{ source: `${SHARED}/data`, destination: '/shared', read_only: false }]);
});

test('processes of another user than root, where root lacks CAP_SYS_RESOURCE (CRIU cannot read their limits unless patched)', async () => {
  const name = await run('nonroot', ['--user', '65534:65534', '--entrypoint', '/bin/sleep', 'ferry/counter', '3600']);
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const rootHasSysResource = ((BigInt(`0x${capEff}`) >> 24n) & 1n) === 1n;
  const criuPatched = hasRlimitsPatch((await runCommand(cloud().criu.binary, ['--version'])).stdout);
  const r = await migrate(a1, a2, name);
  if (rootHasSysResource || criuPatched) {
    // A host where CRIU can read another user's limits (the capability, or Ferry's CRIU patch)
    // moves the container as any other, and it runs on the target as that user.
    expect(r.status).toBe('completed');
    expect(await dk('compute2', ['inspect', '-f', '{{.Config.User}} {{.State.Running}}', name])).toBe('65534:65534 true');
    return;
  }
  refusedFor(r, 'foreign_credentials', /runs processes as another user than root \(pid \d+: uid 65534\/65534\/65534, gid 65534\/65534\/65534\)/);
  expect(r.error).toMatch(/lacks CAP_SYS_RESOURCE; run its processes as root/);
  await untouched(name);
});

test('name already taken on the target', async () => {
  const name = await run('name', ['ferry/counter']);
  await dk('compute2', ['create', '--name', name, 'ferry/counter']);
  refusedFor(await migrate(a1, a2, name), 'name_taken', /already exists on compute2: rename or remove it there/);
  expect(await isRunning('compute1', name)).toBe(true);
  expect(await dk('compute2', ['inspect', '-f', '{{.State.Status}}', name])).toBe('created'); // theirs, untouched
});

test('published host port already used on the target', async () => {
  const name = await run('port', ['-p', '18181:8080', 'ferry/counter']);
  await run('portblock', ['-p', '18181:8080', 'ferry/counter'], 'compute2');
  refusedFor(await migrate(a1, a2, name), 'port_in_use', /host port 18181\/tcp is already published on compute2/);
  await untouched(name);
});

test('CRIU missing on the source', async () => {
  const broken = await makeAgent('compute1', { criuBinary: '/nonexistent/criu' });
  try {
    const name = await run('nocriu', ['ferry/counter']);
    refusedFor(await migrate(broken, a2, name), 'criu_unusable', /CRIU not found .*install CRIU 4.2 or newer/);
    await untouched(name);
  } finally {
    await broken.stop();
  }
});

test("a source CPU with a feature the target lacks (issue 20 hole 8): refused by the target naming it, before anything is frozen; the source's own image passes", async () => {
  const { crafted, feature } = await craftedCpuinfo(cloud().criu.binary);
  // The source sends the crafted image instead of its own (a test-only fault of the driver's cpuInfo).
  const fancy = await makeAgent('compute1', { faults: { cpuinfoImage: crafted.toString('base64') } });
  try {
    const name = await run('cpu', ['ferry/counter']);
    const r = await migrate(fancy, a2, name);
    refusedFor(r, 'cpu_features', new RegExp(`CPU of target compute2 .*lacks ${feature}.*SIGILL`));
    await untouched(name);
    // the same container, the real image of the same CPU: the check passes on the conductor's path
    const api = new InProcessComputeAPI([a1, a2]);
    const ctx = RequestContext.admin();
    const id = `cpu-${Date.now()}`;
    const checked = await api.call(ctx, 'compute1', 'check_can_migrate_source', { migration_id: id, container: name, dest_host: 'compute2' });
    expect(checked.source.cpuinfo).toMatch(/^[A-Za-z0-9+/]+=*$/);
    await expect(
      api.call(ctx, 'compute2', 'check_can_migrate_destination', { migration_id: id, source_host: 'compute1', source: checked.source, spec: checked.spec }),
    ).resolves.toBeTruthy();
    const e = await api
      .call(ctx, 'compute2', 'check_can_migrate_destination', {
        migration_id: id,
        source_host: 'compute1',
        source: { ...checked.source, cpuinfo: crafted.toString('base64') },
        spec: checked.spec,
      })
      .then(
        () => null,
        (err: unknown) => err as FerryError,
      );
    expect(e?.details.reasons).toEqual(['cpu_features']);
  } finally {
    await fancy.stop();
  }
});

test('crafted spec (issue 20 hole 1): a clean summary over a create body with Privileged, Binds "/:/hostfs", host PID, CapAdd ALL and a bind volume of "/" is refused by the real target on the conductor\'s path; nothing is created there', async () => {
  const name = await run('crafted', ['ferry/counter']);
  const vol = uniqueName('crafted-vol');
  volumes.push(vol);
  // The conductor's path: the same ComputeManager (schemas, one step at a time) the bus server runs, through JSON.
  const api = new InProcessComputeAPI([a1, a2]);
  const ctx = RequestContext.admin();
  const id = `crafted-${Date.now()}`;
  const checked = await api.call(ctx, 'compute1', 'check_can_migrate_source', { migration_id: id, container: name, dest_host: 'compute2' });
  const clean = checked.spec;
  const hostConfig = { ...(clean.create.HostConfig as Record<string, unknown>), Privileged: true, Binds: ['/:/hostfs'], PidMode: 'host', CapAdd: ['ALL'] };
  const crafted: ContainerSpec = {
    ...clean, // the summary stays clean: privileged false, no binds, no devices
    create: { ...clean.create, HostConfig: hostConfig },
    volumes: [{ name: vol, destination: '/host', driver: 'local', labels: {}, options: { type: 'none', o: 'bind', device: '/' }, read_only: false }],
  };
  expect(crafted.privileged).toBe(false);
  expect(crafted.binds).toEqual([]);

  const refusedWith = async (p: Promise<unknown>): Promise<FerryError> => {
    const e = await p.then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(FerryError);
    return e as FerryError;
  };
  for (const step of ['check_can_migrate_destination', 'pre_migration'] as const) {
    const args = { migration_id: id, source_host: 'compute1', source: checked.source, spec: crafted, export: checked.export };
    const e = await refusedWith(api.call(ctx, 'compute2', step, args));
    expect(e.code).toBe('migration_precheck_failed');
    expect(e.details.reasons).toEqual(expect.arrayContaining(['container_spec']));
    for (const field of ['HostConfig.Privileged', 'HostConfig.Binds[0]', 'HostConfig.PidMode', 'HostConfig.CapAdd[0]', 'volumes[0].options.device'])
      expect(e.message).toContain(field);
  }
  // The create step itself refuses it too (a spec that changed after the checks), before the engine is asked.
  await expect(a2.driver.createShell(crafted, id)).rejects.toThrow(ContainerSpecRefused);
  await expect(a2.driver.createVolume(crafted.volumes[0])).rejects.toThrow(ContainerSpecRefused);

  expect(await exists('compute2', name)).toBe(false);
  expect(await a2.driver.shellsOf(id)).toEqual([]);
  expect(await dk('compute2', ['ps', '-aq', '--filter', `name=${name}`])).toBe('');
  expect(await a2.driver.volumeExists(vol)).toBe(false);
  expect(await isRunning('compute1', name)).toBe(true);
  // and the unmodified spec of the same container passes the same target check
  await expect(
    api.call(ctx, 'compute2', 'check_can_migrate_destination', { migration_id: id, source_host: 'compute1', source: checked.source, spec: clean }),
  ).resolves.toBeTruthy();
});
