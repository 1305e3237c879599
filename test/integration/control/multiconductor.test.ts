/**
 * Two conductors on MariaDB, one SIGKILLed mid-evacuation, on the real development cloud: the
 * test brings the cloud into that shape itself (`up --db mariadb --conductors 2`) and puts the
 * default shape back at the end (`up --db sqlite --conductors 1`), a bounded window for the
 * other engineers' tests.
 *
 * compute1 runs 12 containers (counters, Redis with a sentinel, streams: one read over a single
 * TCP connection on the fabric); compute1 is evacuated with max_parallel 3; once some of its
 * migrations completed, the conductor that holds the evacuation's claim (and so its migrations')
 * is SIGKILLed and left dead: the other conductor takes the evacuation and the unfinished
 * migrations over once their lease ran out, and finishes them. Every container ends on compute2,
 * running, with its state; each had exactly one migration, completed; the evacuation counts them
 * all. The killed conductor is started again at the end, compute1 enabled again, and whatever else
 * the evacuation moved goes back to compute1.
 */
import { type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sleep } from '../../../src/common/sleep.js';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { openDriver } from '../../../src/db/connection.js';
import type { SqlDriver } from '../../../src/db/driver.js';
import { MARIADB, stateDir } from '../../../src/devcloud/layout.js';
import { mariadbUrl } from '../../../src/devcloud/mariadb.js';
import type { CloudStatus } from '../../../src/devcloud/status.js';
import type { Evacuation } from '../../../src/objects/evacuation.js';
import type { Migration } from '../../../src/objects/migration.js';
import { runDevcloud } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, lastNumber, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, waitKnown } from '../../helpers/ferry.js';
import { enableHosts, moveBack, setHost } from '../../helpers/hosts.js';
import { connectStreamClient } from '../../helpers/stream-client.js';

jest.setTimeout(900_000);

const c1 = engine('compute1');
const c2 = engine('compute2');
const FABRIC = 'ferry-fabric';
const STREAM_IP = '10.250.0.58';
const STREAM_MAC = '02:42:0a:fa:00:3a';

/** ferry-devcloud as an operator runs it (services at the dev cloud's log level, no test-only environment). */
async function status(): Promise<CloudStatus> {
  return JSON.parse(await runDevcloud(['status', '--json'])) as CloudStatus;
}

async function waitEvacuation(uuid: string, until: (e: Evacuation) => boolean, timeoutMs: number): Promise<Evacuation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin<{ evacuation: Evacuation }>('GET', `/v1/evacuations/${uuid}`).catch(() => null);
    if (r?.status === 200 && until(r.body.evacuation)) return r.body.evacuation;
    if (Date.now() > deadline) throw new Error(`evacuation ${uuid}: condition not met in ${timeoutMs} ms: ${JSON.stringify(r?.body)}`);
    await sleep(250);
  }
}

describe('two conductors on MariaDB, one killed mid-evacuation', () => {
  const tag = uniqueName('mc');
  const counters = Array.from({ length: 6 }, (_, i) => `${tag}-counter${i + 1}`);
  const redis = Array.from({ length: 4 }, (_, i) => `${tag}-redis${i + 1}`);
  const streams = [`${tag}-stream1`, `${tag}-stream2`];
  const mine = [...counters, ...redis, ...streams];
  const sentinel = new Map(redis.map((n) => [n, `kept-${randomUUID()}`]));
  const foreign = new Set<string>();
  let db: SqlDriver;
  let repo: SqlRepository;
  let client: ChildProcess | null = null;
  const streamLines: number[] = [];
  let killedService: string | null = null;

  beforeAll(async () => {
    const s = JSON.parse(await runDevcloud(['up', '--db', 'mariadb', '--conductors', '2', '--json'])) as CloudStatus;
    expect(s.database).toMatchObject({ kind: 'mariadb', conductors: 2, mariadb: { state: 'up' } });
    expect(s.services).toMatchObject({ 'ferry-conductor': 'up', 'ferry-conductor2': 'up', 'ferry-api': 'up' });
    db = openDriver(mariadbUrl(MARIADB.port, MARIADB));
    repo = new SqlRepository(db);
    // The hosts report into the new database within a heartbeat or two.
    for (let i = 0; i < 60; i++) {
      const r = await admin<{ hosts: { name: string; state: string }[] }>('GET', '/v1/hosts').catch(() => null);
      if (r?.body.hosts?.filter((h) => h.state === 'up').length === 2) break;
      await sleep(500);
    }
    for (const h of ['compute1', 'compute2']) expect((await setHost(h, 'enabled')).status).toBe(200);

    for (const n of counters) await (await c1.createContainer({ Image: 'ferry/counter:latest', name: n, Env: ['COUNTER_INTERVAL=0.2'] })).start();
    for (const n of redis) {
      const ct = await c1.createContainer({ Image: 'ferry/redis:latest', name: n });
      await ct.start();
      for (let i = 0; i < 50 && (await execOut(c1, ct.id, ['redis-cli', 'PING']).catch(() => '')) !== 'PONG'; i++) await sleep(100);
      expect(await execOut(c1, ct.id, ['redis-cli', 'DEBUG', 'POPULATE', '20000'])).toBe('OK');
      expect(await execOut(c1, ct.id, ['redis-cli', 'SET', 'sentinel', sentinel.get(n)!])).toBe('OK');
    }
    const fabricStream = await c1.createContainer({
      Image: 'ferry/stream:latest',
      name: streams[0],
      Env: ['STREAM_INTERVAL_US=50000'],
      HostConfig: { NetworkMode: FABRIC },
      NetworkingConfig: { EndpointsConfig: { [FABRIC]: { IPAMConfig: { IPv4Address: STREAM_IP } } } },
      MacAddress: STREAM_MAC,
    } as Parameters<typeof c1.createContainer>[0]);
    await fabricStream.start();
    await (await c1.createContainer({ Image: 'ferry/stream:latest', name: streams[1], Env: ['STREAM_INTERVAL_US=50000'] })).start();
    for (const n of mine) await waitKnown(n, 'compute1', 60_000);

    // One TCP connection to the fabric stream from the tenant side, kept across its migration.
    client = await connectStreamClient(STREAM_IP, streamLines);
    expect(streamLines.length).toBeGreaterThan(0);
  }, 600_000);

  afterAll(async () => {
    if (client && client.exitCode === null && client.pid) process.kill(client.pid, 'SIGTERM');
    if (killedService) await runDevcloud(['restart', killedService]).catch(() => undefined);
    await enableHosts(['compute1', 'compute2']);
    for (const n of mine) {
      await removeQuietly(c1, n);
      await removeQuietly(c2, n);
    }
    await moveBack(foreign, 90_000);
    await db?.close().catch(() => undefined);
    // The default shape again: SQLite, one conductor.
    const s = JSON.parse(await runDevcloud(['up', '--db', 'sqlite', '--conductors', '1', '--json'])) as CloudStatus;
    expect(s.database).toMatchObject({ kind: 'sqlite', conductors: 1 });
    expect(s.services['ferry-conductor2']).toBeUndefined();
  }, 600_000);

  it("every container ends on compute2 with its state, each migrated exactly once, the killed conductor's work taken over", async () => {
    const before = new Map<string, number>();
    for (const n of counters) before.set(n, await lastNumber(c1, (await containerOn(c1, n))!.Id));

    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', { max_parallel: 3 });
    expect(r.status).toBe(202);
    const uuid = r.body.evacuation.uuid;

    // Mid-evacuation: some moved, some in flight. Kill the conductor holding the evacuation (and its migrations).
    const mid = await waitEvacuation(uuid, (e) => e.counts.completed >= 3 && e.counts.migrating > 0, 300_000);
    const claim = await repo.getClaim('evacuation', uuid);
    expect(claim).not.toBeNull();
    const [ownerHost, ownerPid] = claim!.owner.split(':');
    killedService = ownerHost === 'controller' ? 'ferry-conductor' : `ferry-conductor${ownerHost.replace('controller', '')}`;
    const survivor = killedService === 'ferry-conductor' ? 'ferry-conductor2' : 'ferry-conductor';
    expect(fs.readFileSync(path.join(stateDir, 'run', `${killedService}.pid`), 'utf8').trim()).toBe(ownerPid);
    const inFlight = mid.containers.filter((c) => c.status === 'migrating').map((c) => c.migration_uuid!);
    const held = await Promise.all(inFlight.map((m) => repo.getClaim('migration', m)));
    expect(held.some((c) => c?.owner === claim!.owner)).toBe(true);
    const killedAt = Date.now();
    process.kill(Number(ownerPid), 'SIGKILL');

    const e = await waitEvacuation(uuid, (x) => x.status !== 'running', 600_000);
    const took = Date.now() - killedAt;
    for (const c of e.containers) if (!mine.includes(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    expect(e.status).toBe('completed');
    expect(e.counts.pending + e.counts.migrating).toBe(0);
    const byName = new Map(e.containers.map((c) => [c.container_name, c]));
    expect(mine.filter((n) => byName.get(n)?.status === 'completed')).toHaveLength(12);
    expect(e.counts.completed).toBe(e.containers.filter((c) => c.status === 'completed').length);

    // The survivor took the evacuation and the unfinished migrations over (after the 15 s lease).
    const survivorLog = fs.readFileSync(path.join(stateDir, 'log', `${survivor}.log`), 'utf8');
    expect(survivorLog).toContain('taking over an evacuation whose conductor stopped renewing its claim');
    expect(survivorLog.split('\n').some((l) => l.includes(uuid) && l.includes('taking over'))).toBe(true);
    expect(took).toBeGreaterThan(10_000);
    expect(await repo.getClaim('evacuation', uuid)).toBeNull(); // released at its end

    // Exactly once: one migration per container, completed, the one the evacuation lists.
    for (const n of mine) {
      const list = (await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${n}`)).body.migrations.filter((m) => m.container_name === n);
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ status: 'completed', source_host: 'compute1', dest_host: 'compute2', uuid: byName.get(n)!.migration_uuid });
    }

    // State intact on compute2.
    for (const n of mine) {
      expect((await containerOn(c2, n))?.State).toBe('running');
      expect(await containerOn(c1, n)).toBeNull();
    }
    for (const n of counters) {
      const id = (await containerOn(c2, n))!.Id;
      const first = await lastNumber(c2, id);
      await sleep(600);
      expect(first).toBeGreaterThanOrEqual(before.get(n)!);
      expect(await lastNumber(c2, id)).toBeGreaterThan(first);
    }
    for (const n of redis) {
      const id = (await containerOn(c2, n))!.Id;
      expect(await execOut(c2, id, ['redis-cli', 'GET', 'sentinel'])).toBe(sentinel.get(n));
      expect(await execOut(c2, id, ['redis-cli', 'DBSIZE'])).toBe('20001');
    }
    const atEnd = streamLines.length;
    for (let i = 0; i < 100 && streamLines.length < atEnd + 20; i++) await sleep(100);
    expect(streamLines.length).toBeGreaterThanOrEqual(atEnd + 20);
    expect(client?.exitCode).toBeNull();
    streamLines.forEach((v, i) => expect(v).toBe(i + 1)); // one connection, nothing missing or repeated
    const plain = (await containerOn(c2, streams[1]))!.Id;
    expect(await execOut(c2, plain, ['sh', '-c', 'nc 127.0.0.1 9000 | head -n 3'])).toBe('1\n2\n3');

    // The killed conductor comes back, and compute1 is enabled again.
    await runDevcloud(['restart', killedService]);
    expect((await status()).services[killedService]).toBe('up');
    killedService = null;
    expect((await setHost('compute1', 'enabled')).status).toBe(200);
  });
});
