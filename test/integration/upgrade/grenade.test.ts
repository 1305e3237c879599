/**
 * The rolling upgrade, as OpenStack's grenade job proves it: the development cloud is brought up
 * on the previous release (git tag v0.1.0, built from this repository), with migrations running,
 * and upgraded to this checkout one step at a time, in docs/operations.md's order:
 *
 *   1. old cloud: every Ferry service on v0.1.0, a fresh database (v0.1.0's `db sync`);
 *      two migrations started, one held in pre-migrating by the old agents' fault
 *      (delayPreMigrationMs) and one queued behind it;
 *   2. `ferry-manage db sync` with the new code, then the conductor, while both are in flight:
 *      the new conductor resumes them and both complete;
 *   3. compute1: a migration old host -> new host and one new -> old;
 *   4. compute2, then ferry-api (while a migration runs); a last migration of every container.
 *
 * At each stage `ferry-status upgrade check` (this checkout's) says what it should for the two
 * releases' schema and service versions, and the services' recorded versions follow the
 * upgrade. At the end every migration the test asked for completed, each exactly once; every
 * container runs exactly once with its state (counters counted on, Redis kept its keys, one TCP
 * connection read the stream across all its moves with no number missing or repeated).
 *
 * Written against behaviour (the REST API, the engines, the commands' output, the services'
 * records), so that it compares v0.1.0 with whatever this checkout becomes. The test leaves
 * the cloud up on this checkout's code (its afterAll runs `ferry-devcloud up`), with Ferry's
 * database the upgraded one. Figures: results/upgrade.json (README's "Rolling upgrade").
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sleep } from '../../../src/common/sleep.js';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { openDriver } from '../../../src/db/connection.js';
import type { SqlDriver } from '../../../src/db/driver.js';
import { databaseUrl } from '../../../src/devcloud/shape.js';
import type { CloudStatus } from '../../../src/devcloud/status.js';
import type { Migration } from '../../../src/objects/migration.js';
import { repoRoot, runDevcloud } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, lastNumber, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { ferry } from '../../helpers/ferry.js';
import { connectStreamClient } from '../../helpers/stream-client.js';

jest.setTimeout(600_000);

const pexec = promisify(execFile);

/** The previous release: its tag, and the commit it names should a clone lack the tag. */
const PREVIOUS_RELEASE = { tag: 'v0.1.0', commit: '69727584b7a47c7b566f7d2b9717449af7ab207e' };
/** The old agents hold every migration this long in pre-migrating (the target's pre_migration): the window the upgrade happens in. */
const PRE_MIGRATION_DELAY_MS = 12_000;
const FABRIC = 'ferry-fabric';
const STREAM_IP = '10.250.0.50';
const STREAM_MAC = '02:42:0a:fa:00:32';
const CONF = path.join(repoRoot, '.devcloud', 'etc', 'ferry.conf');

type Host = 'compute1' | 'compute2';

/** ferry-devcloud as an operator runs it: no test-only environment but what `env` adds. */
async function devcloud(args: string[], env: Record<string, string> = {}): Promise<string> {
  return runDevcloud(args, { env, timeoutMs: 600_000 });
}

/** The previous release as git names it here: its tag, else its known commit; neither is a failure (never a skip). */
async function previousRelease(): Promise<{ revision: string; commit: string }> {
  for (const revision of [PREVIOUS_RELEASE.tag, PREVIOUS_RELEASE.commit]) {
    const r = await pexec('git', ['-C', repoRoot, 'rev-parse', '--verify', '--quiet', `${revision}^{commit}`]).catch(() => null);
    if (r?.stdout.trim()) return { revision, commit: r.stdout.trim() };
  }
  throw new Error(
    `the previous release is not in this clone: neither tag ${PREVIOUS_RELEASE.tag} nor commit ${PREVIOUS_RELEASE.commit} resolves ` +
      `(a shallow clone? git fetch --tags --unshallow); the rolling-upgrade test needs it`,
  );
}

/** `ferry-manage db version` of a tree: the schema version its code needs. */
async function schemaOf(root: string): Promise<number> {
  const r = await pexec(process.execPath, [path.join(root, 'dist/cmd/manage.js'), '--config-file', CONF, 'db', 'version']);
  const m = /this Ferry needs (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`ferry-manage db version in ${root} said: ${r.stdout}`);
  return Number(m[1]);
}

/** The service version a tree's code records (src/common/service-version.ts, documented in docs/operations.md). */
async function serviceVersionOf(root: string): Promise<number> {
  const mod = path.join(root, 'dist/common/service-version.js');
  const r = await pexec(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(mod)}); console.log(m.SERVICE_VERSION);`]);
  return Number(r.stdout.trim());
}

interface CheckRow {
  check: string;
  result: number;
  details: string | null;
}

/** This checkout's `ferry-status upgrade check --json`, with its exit status. */
async function upgradeCheck(): Promise<{ code: number; rows: CheckRow[] }> {
  const r = await pexec(process.execPath, [path.join(repoRoot, 'dist/cmd/status.js'), '--config-file', CONF, '--json', 'upgrade', 'check']).then(
    (x) => ({ code: 0, stdout: x.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
  return { code: r.code, rows: JSON.parse(r.stdout) as CheckRow[] };
}

/** GET a migration, asking again while ferry-api or the conductor restarts (refused, 503, 504). */
async function getMigration(uuid: string): Promise<Migration> {
  for (let i = 0; ; i++) {
    const r = await ferry()
      .request<{ migration: Migration }>('GET', `/v1/migrations/${uuid}`)
      .catch(() => null);
    if (r?.status === 200) return r.body.migration;
    if (i > 240) throw new Error(`GET /v1/migrations/${uuid}: ${r ? `HTTP ${r.status}` : 'no answer'} for a minute`);
    await sleep(250);
  }
}

async function waitFinal(uuid: string, timeoutMs = 180_000): Promise<Migration> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await getMigration(uuid);
    if (['completed', 'failed', 'cancelled', 'error'].includes(m.status)) return m;
    if (Date.now() > deadline) throw new Error(`migration ${uuid} of ${m.container_name} still ${m.status}/${m.phase} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

const isFinal = (m: Migration) => ['completed', 'failed', 'cancelled', 'error'].includes(m.status);

describe('rolling upgrade from the previous release (grenade)', () => {
  const tag = uniqueName('grenade');
  const names = { counterA: `${tag}-counter-a`, counterB: `${tag}-counter-b`, redis: `${tag}-redis`, stream: `${tag}-stream` };
  const engines: Record<Host, Docker> = { compute1: engine('compute1'), compute2: engine('compute2') };
  const where: Record<string, Host> = {};
  const sentinel = `kept-${randomUUID()}`;
  /** Every migration the test asked for, in order, with what it showed. */
  const asked: { uuid: string; name: string; from: Host; to: Host; stage: string }[] = [];
  const figures: Record<string, unknown> = {};
  const stageMs: Record<string, number> = {};
  const streamLines: number[] = [];
  let client: ChildProcess | null = null;
  let db: SqlDriver | null = null;
  let oldTree = '';
  let versions = { oldSchema: 0, newSchema: 0, oldService: 0, newService: 0 };
  /** Which services run the new code so far (drives what ferry-status must say). */
  const upgraded = new Set<string>();
  let t0 = 0;

  function stage(label: string): void {
    stageMs[label] = Date.now() - t0;
  }

  /** Ask for a migration of `name` to `to` through the REST API (ferry-api of whichever release runs). */
  async function migrate(name: string, to: Host, label: string): Promise<string> {
    const m = await ferry().migrate(name, to);
    asked.push({ uuid: m.uuid, name, from: where[name], to, stage: label });
    return m.uuid;
  }

  /** The migration completed, and the container runs on its target only, with its state. */
  async function expectMoved(uuid: string): Promise<Migration> {
    const m = await waitFinal(uuid);
    const a = asked.find((x) => x.uuid === uuid)!;
    expect({ uuid, container: a.name, status: m.status, error: m.error, source: m.source_host, dest: m.dest_host }).toEqual({
      uuid,
      container: a.name,
      status: 'completed',
      error: null,
      source: a.from,
      dest: a.to,
    });
    where[a.name] = a.to;
    await expectOneCopy(a.name);
    return m;
  }

  /** Exactly one copy of the container on the two engines, running, where the test last moved it. */
  async function expectOneCopy(name: string): Promise<void> {
    const copies = [];
    for (const h of ['compute1', 'compute2'] as const) {
      const c = await containerOn(engines[h], name);
      if (c) copies.push({ host: h, state: c.State });
    }
    expect({ name, copies }).toEqual({ name, copies: [{ host: where[name], state: 'running' }] });
  }

  async function counterNow(name: string): Promise<number> {
    const c = (await containerOn(engines[where[name]], name))!;
    return lastNumber(engines[where[name]], c.Id);
  }

  /** The counter went on counting where it is now: above what it showed before. */
  async function expectCounted(name: string, before: number): Promise<number> {
    let now = NaN;
    await waitFor(`${name} to count on past ${before}`, async () => (now = await counterNow(name)) > before, 20_000);
    return now;
  }

  async function expectRedisKept(): Promise<void> {
    const c = (await containerOn(engines[where[names.redis]], names.redis))!;
    expect(await execOut(engines[where[names.redis]], c.Id, ['redis-cli', 'GET', 'sentinel'])).toBe(sentinel);
    expect(Number(await execOut(engines[where[names.redis]], c.Id, ['redis-cli', 'DBSIZE']))).toBe(20_001);
  }

  /** The recorded service versions: each service's row, refreshed since `since`, at the version of its code. */
  async function expectRecordedVersions(since: number): Promise<void> {
    const repo = new SqlRepository(db!);
    const want = (binary: string, host: string, service: string) => ({
      binary,
      host,
      service_version: upgraded.has(service) ? versions.newService : versions.oldService,
    });
    const expected = [
      want('ferry-compute', 'compute1', 'compute1'),
      want('ferry-compute', 'compute2', 'compute2'),
      want('ferry-conductor', 'controller', 'conductor'),
    ];
    let seen: unknown = null;
    await waitFor(
      `service records ${JSON.stringify(expected)}`,
      async () => {
        const rows = (await repo.listServices()).filter((r) => expected.some((e) => e.binary === r.binary && e.host === r.host));
        seen = rows.map((r) => ({ binary: r.binary, host: r.host, service_version: r.service_version, updated_at: r.updated_at }));
        const fresh = rows.every((r) => Date.parse(r.updated_at) >= since);
        const got = rows.map((r) => ({ binary: r.binary, host: r.host, service_version: r.service_version })).sort((x, y) => x.host.localeCompare(y.host));
        return fresh && JSON.stringify(got) === JSON.stringify(expected);
      },
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; recorded: ${JSON.stringify(seen)}`);
    });
  }

  /**
   * ferry-status (this checkout's) at this stage: the schema check by the database's schema
   * against this release's, the service versions by which services still run the old code.
   */
  async function expectUpgradeCheck(label: string, schemaSynced: boolean): Promise<void> {
    const { code, rows } = await upgradeCheck();
    const byName = Object.fromEntries(rows.map((r) => [r.check, r]));
    const schemaBehind = !schemaSynced && versions.oldSchema < versions.newSchema;
    const oldServicesRunning = ['conductor', 'compute1', 'compute2'].some((s) => !upgraded.has(s));
    const olderVersionsRunning = oldServicesRunning && versions.oldService < versions.newService;
    const want = {
      'Database schema': schemaBehind ? 2 : 0,
      'Service versions': olderVersionsRunning ? 1 : 0,
      'Compute hosts on old agents': 0,
      'Policy file': 0,
      'Configuration options': 0,
    };
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, byName[k]?.result]));
    expect({ label, got }).toEqual({ label, got: want });
    if (schemaBehind) expect(byName['Database schema'].details).toContain('ferry-manage db sync');
    expect(code).toBe(Math.max(...Object.values(want)));
    figures[`upgrade_check_${label}`] = Object.fromEntries(rows.map((r) => [r.check, ['Success', 'Warning', 'Failure'][r.result]]));
  }

  beforeAll(async () => {
    t0 = Date.now();
    const { revision, commit } = await previousRelease();
    // The old cloud: v0.1.0's services on an empty database (its own db sync), the old agents
    // holding each migration in pre-migrating for a while (their fault hook, armed for them alone).
    const s = JSON.parse(
      await devcloud(['up', '--release', revision, '--fresh-database', '--json'], {
        FERRY_ENABLE_FAULTS: '1',
        FERRY_FAULTS: JSON.stringify({ delayPreMigrationMs: PRE_MIGRATION_DELAY_MS }),
      }),
    ) as CloudStatus;
    stage('old cloud up');
    expect(s.services).toMatchObject({ 'ferry-conductor': 'up', 'ferry-compute-compute1': 'up', 'ferry-compute-compute2': 'up', 'ferry-api': 'up' });
    expect(Object.keys(s.releases ?? {}).sort()).toEqual(['ferry-api', 'ferry-compute-compute1', 'ferry-compute-compute2', 'ferry-conductor']);
    oldTree = s.releases!['ferry-conductor'].dir;
    expect(s.releases!['ferry-conductor'].commit).toBe(commit);
    versions = {
      oldSchema: await schemaOf(oldTree),
      newSchema: await schemaOf(repoRoot),
      oldService: await serviceVersionOf(oldTree),
      newService: await serviceVersionOf(repoRoot),
    };
    figures.previous_release = { revision, commit };
    figures.versions = versions;
    expect(versions.newSchema).toBeGreaterThanOrEqual(versions.oldSchema);
    expect(versions.newService).toBeGreaterThanOrEqual(versions.oldService);
    db = openDriver(databaseUrl());

    // The workloads: counters on both hosts, Redis with keys and a sentinel, a stream on the tenant network.
    for (const image of ['ferry/counter:latest', 'ferry/redis:latest', 'ferry/stream:latest']) {
      const out = await engines.compute2.loadImage(await engines.compute1.getImage(image).get());
      await new Promise<void>((resolve, reject) => {
        out
          .on('data', () => undefined)
          .on('end', () => resolve())
          .on('error', reject);
      });
    }
    const start = async (h: Host, name: string, opts: Record<string, unknown>) => {
      await (await engines[h].createContainer({ name, ...opts } as Docker.ContainerCreateOptions)).start();
      where[name] = h;
    };
    await start('compute1', names.counterA, { Image: 'ferry/counter:latest', Env: ['COUNTER_INTERVAL=0.2'] });
    await start('compute2', names.counterB, { Image: 'ferry/counter:latest', Env: ['COUNTER_INTERVAL=0.2'] });
    await start('compute2', names.redis, { Image: 'ferry/redis:latest' });
    await start('compute1', names.stream, {
      Image: 'ferry/stream:latest',
      Env: ['STREAM_INTERVAL_US=50000'],
      HostConfig: { NetworkMode: FABRIC },
      NetworkingConfig: { EndpointsConfig: { [FABRIC]: { IPAMConfig: { IPv4Address: STREAM_IP } } } },
      MacAddress: STREAM_MAC,
    });
    const redisId = (await containerOn(engines.compute2, names.redis))!.Id;
    await waitFor('Redis to answer', async () => (await execOut(engines.compute2, redisId, ['redis-cli', 'PING'])) === 'PONG', 10_000);
    expect(await execOut(engines.compute2, redisId, ['redis-cli', 'DEBUG', 'POPULATE', '20000'])).toBe('OK');
    expect(await execOut(engines.compute2, redisId, ['redis-cli', 'SET', 'sentinel', sentinel])).toBe('OK');

    // One TCP connection to the stream from the tenant side, read across every move.
    client = await connectStreamClient(STREAM_IP, streamLines);
    expect(streamLines.length).toBeGreaterThan(0);
    for (const [n, h] of Object.entries(where)) await ferry().waitKnown(n, h, 60_000);
    stage('workloads started');
  }, 600_000);

  afterAll(async () => {
    if (client && client.exitCode === null && client.pid) process.kill(client.pid, 'SIGTERM');
    await db?.close().catch(() => undefined);
    for (const n of Object.values(names)) for (const h of ['compute1', 'compute2'] as const) await removeQuietly(engines[h], n);
    // Whatever happened above: the cloud on this checkout's code again, for the tests after this one.
    const s = JSON.parse(await devcloud(['up', '--json'])) as CloudStatus;
    expect(s.releases).toBeUndefined();
    fs.mkdirSync(path.join(repoRoot, 'results'), { recursive: true });
    fs.writeFileSync(
      path.join(repoRoot, 'results', 'upgrade.json'),
      `${JSON.stringify({ ...figures, stages_ms: stageMs, total_ms: Date.now() - t0, migrations: asked }, null, 2)}\n`,
    );
  }, 600_000);

  it('old cloud: every service on the previous release records its version; ferry-status (new) sees the old schema and services', async () => {
    await expectRecordedVersions(t0);
    await expectUpgradeCheck('old cloud', false);
  });

  it('database, then conductor upgraded with two migrations in flight: the new conductor resumes both and they complete', async () => {
    const counterBefore = await counterNow(names.counterA);
    const inFlight = await migrate(names.counterA, 'compute2', 'across db sync and conductor');
    await waitFor('the first migration to reach pre-migrating', async () => (await getMigration(inFlight)).status === 'pre-migrating', 30_000);
    // Both hosts are busy (the dev cloud runs one migration per host at a time): this one waits, accepted, in the database.
    const queued = await migrate(names.redis, 'compute1', 'across db sync and conductor');
    const before = await Promise.all([getMigration(inFlight), getMigration(queued)]);
    figures.in_flight_before_db_sync = before.map((m) => ({ container: m.container_name, status: m.status, phase: m.phase }));
    expect(before[0].status).toBe('pre-migrating');
    expect(['accepted', 'pre-migrating']).toContain(before[1].status);

    await devcloud(['upgrade', 'db']);
    stage('db synced');
    await expectUpgradeCheck('db synced', true);
    const conductorAt = Date.now();
    await devcloud(['upgrade', 'conductor']);
    upgraded.add('conductor');
    stage('conductor upgraded');
    // Still in flight once the old conductor is gone: the new one must carry them on.
    const across = await Promise.all([getMigration(inFlight), getMigration(queued)]);
    figures.in_flight_when_conductor_replaced = across.map((m) => ({ container: m.container_name, status: m.status, phase: m.phase }));
    expect(across.filter(isFinal)).toEqual([]);

    const done = [await expectMoved(inFlight), await expectMoved(queued)];
    figures.across_conductor_upgrade = done.map((m) => ({ container: m.container_name, total_ms: m.total_ms, freeze_ms: m.freeze_ms }));
    await expectCounted(names.counterA, counterBefore);
    await expectRedisKept();
    await expectRecordedVersions(conductorAt);
    await expectUpgradeCheck('conductor upgraded', true);
    stage('in-flight migrations completed');
  });

  it('compute1 upgraded: migrations old host -> new host and new host -> old host complete', async () => {
    const at = Date.now();
    await devcloud(['upgrade', 'compute1']);
    upgraded.add('compute1');
    await expectRecordedVersions(at);
    await waitFor('compute1 reporting as up', async () => {
      const r = await ferry().request<{ hosts: { name: string; state: string }[] }>('GET', '/v1/hosts');
      return r.body.hosts.filter((h) => h.state === 'up').length === 2;
    });
    stage('compute1 upgraded');
    await expectUpgradeCheck('compute1 upgraded', true);

    const counterBefore = await counterNow(names.counterB);
    const oldToNew = await expectMoved(await migrate(names.counterB, 'compute1', 'old host -> new host'));
    await expectCounted(names.counterB, counterBefore);
    const newToOld = await expectMoved(await migrate(names.stream, 'compute2', 'new host -> old host'));
    expect(newToOld.connections_preserved).toBe(true);
    figures.mixed_hosts = [oldToNew, newToOld].map((m) => ({
      container: m.container_name,
      from: m.source_host,
      to: m.dest_host,
      total_ms: m.total_ms,
      freeze_ms: m.freeze_ms,
    }));
    stage('mixed-host migrations completed');
  });

  it('compute2, then ferry-api upgraded (with a migration running): every service on the new code; the last round of migrations completes', async () => {
    const at = Date.now();
    await devcloud(['upgrade', 'compute2']);
    upgraded.add('compute2');
    await expectRecordedVersions(at);
    stage('compute2 upgraded');

    // ferry-api is stateless: the migration it accepted goes on while it restarts.
    const during = await migrate(names.counterA, 'compute1', 'across ferry-api upgrade');
    await devcloud(['upgrade', 'api']);
    upgraded.add('api');
    stage('api upgraded');
    const s = JSON.parse(await devcloud(['status', '--json'])) as CloudStatus;
    expect(s.releases).toBeUndefined();
    await expectMoved(during);
    await expectUpgradeCheck('all upgraded', true);

    const counts = { a: await counterNow(names.counterA), b: await counterNow(names.counterB) };
    const last = [
      await expectMoved(await migrate(names.counterB, 'compute2', 'all new')),
      await expectMoved(await migrate(names.redis, 'compute2', 'all new')),
      await expectMoved(await migrate(names.stream, 'compute1', 'all new')),
    ];
    expect(last.find((m) => m.container_name === names.stream)?.connections_preserved).toBe(true);
    await expectCounted(names.counterA, counts.a);
    await expectCounted(names.counterB, counts.b);
    await expectRedisKept();
    stage('all migrations completed');
  });

  it('nothing lost: each migration asked for completed exactly once, each container runs once with its state, the stream read on one connection', async () => {
    for (const n of Object.values(names)) {
      const mine = asked.filter((a) => a.name === n).map((a) => a.uuid);
      const listed = (await ferry().request<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${n}`)).body.migrations.filter(
        (m) => m.container_name === n,
      );
      expect({ n, listed: listed.map((m) => [m.uuid, m.status]).sort() }).toEqual({ n, listed: mine.map((u) => [u, 'completed']).sort() });
      await expectOneCopy(n);
    }
    expect(asked).toHaveLength(8);
    // The client's single connection: every number once, in order, still arriving.
    const seen = streamLines.length;
    await waitFor('the stream to go on', async () => streamLines.length > seen + 10, 20_000);
    expect(client?.exitCode).toBeNull();
    const gaps = streamLines.slice(1).filter((n, i) => n !== streamLines[i] + 1);
    expect({ read: streamLines.length, first: streamLines[0], gaps }).toEqual({ read: streamLines.length, first: 1, gaps: [] });
    figures.stream = { numbers_read: streamLines.length, moves: asked.filter((a) => a.name === names.stream).length };
    figures.migrations_asked = asked.length;
  });
});
