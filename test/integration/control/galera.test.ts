/**
 * Two conductors on the development cloud's three-node Galera cluster (`up --db galera
 * --conductors 2`; the test puts the default shape back at its end): each conductor writes
 * through its own node. While a Redis container with 200 000 keys migrates, the Galera node
 * the migration's conductor writes through is SIGKILLed: the conductor's database driver moves
 * to the next node and the migration completes; the container runs once, on compute2, with its
 * keys. The node is started again (it catches up by incremental state transfer). Then compute1
 * is evacuated to compute2 with 12 small counters and, after the first counter moved, the node
 * the evacuating conductor writes through at that moment is SIGKILLed: the evacuation completes,
 * each counter once, on compute2, counting on; the node comes back Synced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { openDriver } from '../../../src/db/connection.js';
import type { SqlDriver } from '../../../src/db/driver.js';
import { cloudGaleraUrl, GALERA } from '../../../src/devcloud/galera-cloud.js';
import { galeraNodePid } from '../../../src/devcloud/galera.js';
import { stateDir } from '../../../src/devcloud/layout.js';
import type { CloudStatus } from '../../../src/devcloud/status.js';
import { runDevcloud } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { faultedEvacuation } from '../../helpers/evacuation.js';
import { admin, startMigration, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { sleep } from '../../../src/common/sleep.js';
import { setHost } from '../../helpers/hosts.js';

jest.setTimeout(600_000);

const c1 = engine('compute1');
const c2 = engine('compute2');

const EVACUATED = 12;
// The dev cloud runs one migration per host at a time: the second waits in the conductor's queue.
const MAX_PARALLEL = 2;

/** A claim's owner (`host:pid`): the conductor's service name, its own Galera node's index and its PID. */
function conductorOf(owner: string): { service: string; index: number; pid: number } {
  const [host, pid] = owner.split(':');
  const index = host === 'controller' ? 0 : Number(host.replace('controller', '')) - 1;
  return { service: index === 0 ? 'ferry-conductor' : `ferry-conductor${index + 1}`, index, pid: Number(pid) };
}

/** A conductor's failovers from its log ({from, to}: "127.0.0.1:port"), with when and by which process. */
function failovers(service: string): { from: string; to: string; time: number; pid: number }[] {
  return fs
    .readFileSync(path.join(stateDir, 'log', `${service}.log`), 'utf8')
    .split('\n')
    .filter((l) => l.includes('database server stopped answering'))
    .map((l) => JSON.parse(l) as { from: string; to: string; time: number; pid: number });
}

/** The Galera node a conductor process writes through now: its own until it failed over, then the last one it moved to. */
function nodeInUse(c: { service: string; index: number; pid: number }) {
  const last = failovers(c.service)
    .filter((f) => f.pid === c.pid)
    .at(-1);
  const node = last ? GALERA.nodes.find((n) => last.to === `127.0.0.1:${n.port}`) : GALERA.nodes[c.index % GALERA.nodes.length];
  if (!node) throw new Error(`${c.service} moved to ${last?.to}, not a Galera node of the dev cloud`);
  return node;
}

describe('two conductors on Galera, a node killed during a migration', () => {
  const name = uniqueName('galera-redis');
  const sentinel = `kept-${randomUUID()}`;
  let db: SqlDriver;
  let repo: SqlRepository;
  const evacuation = faultedEvacuation(uniqueName('galera-evac'), EVACUATED, MAX_PARALLEL);

  beforeAll(async () => {
    const s = JSON.parse(await runDevcloud(['up', '--db', 'galera', '--conductors', '2', '--json'])) as CloudStatus;
    expect(s.database).toMatchObject({ kind: 'galera', conductors: 2 });
    expect(s.database.galera?.map((n) => [n.state, n.cluster_size])).toEqual([
      ['Synced', 3],
      ['Synced', 3],
      ['Synced', 3],
    ]);
    expect(s.services).toMatchObject({ 'ferry-conductor': 'up', 'ferry-conductor2': 'up', 'ferry-api': 'up' });
    // The test reads through the third node, which nobody kills.
    db = openDriver(cloudGaleraUrl(2));
    repo = new SqlRepository(db);
    for (let i = 0; i < 60; i++) {
      const r = await admin<{ hosts: { name: string; state: string }[] }>('GET', '/v1/hosts').catch(() => null);
      if (r?.body.hosts?.filter((h) => h.state === 'up').length === 2) break;
      await sleep(500);
    }
    for (const h of ['compute1', 'compute2']) expect((await setHost(h, 'enabled')).status).toBe(200);
    const ct = await c1.createContainer({ Image: 'ferry/redis:latest', name });
    await ct.start();
    for (let i = 0; i < 50 && (await execOut(c1, ct.id, ['redis-cli', 'PING']).catch(() => '')) !== 'PONG'; i++) await sleep(100);
    expect(await execOut(c1, ct.id, ['redis-cli', 'DEBUG', 'POPULATE', '200000'])).toBe('OK');
    expect(await execOut(c1, ct.id, ['redis-cli', 'SET', 'sentinel', sentinel])).toBe('OK');
    await waitKnown(name, 'compute1', 60_000);
  }, 600_000);

  afterAll(async () => {
    await removeQuietly(c1, name);
    await removeQuietly(c2, name);
    await evacuation.cleanUp();
    await db?.close().catch(() => undefined);
    const s = JSON.parse(await runDevcloud(['up', '--db', 'sqlite', '--conductors', '1', '--json'])) as CloudStatus;
    expect(s.database).toMatchObject({ kind: 'sqlite', conductors: 1 });
    expect(s.database.galera).toBeUndefined();
    expect(GALERA.nodes.map((n) => galeraNodePid(GALERA, n))).toEqual([null, null, null]);
  }, 600_000);

  it('the migration completes through the node failover; the container runs once, on compute2, with its keys', async () => {
    const m = await startMigration(name, 'compute2');
    await waitMigration(m.uuid, (x) => x.status !== 'accepted', 60_000);
    const claim = await repo.getClaim('migration', m.uuid);
    expect(claim).not.toBeNull();
    const { service, index } = conductorOf(claim!.owner);
    const node = GALERA.nodes[index % GALERA.nodes.length];
    const pid = galeraNodePid(GALERA, node);
    expect(pid).not.toBeNull();
    const killedAt = Date.now();
    process.kill(pid!, 'SIGKILL');

    const done = await waitMigration(m.uuid, (x) => ['completed', 'failed', 'error', 'cancelled'].includes(x.status), 300_000);
    expect(done.status).toBe('completed');
    // The migration's conductor did write through the killed node, and moved on to the next.
    expect(failovers(service).some((f) => f.from === `127.0.0.1:${node.port}` && f.time >= killedAt)).toBe(true);
    const list = (await admin<{ migrations: { uuid: string; container_name: string }[] }>('GET', `/v1/migrations?container=${name}`)).body.migrations.filter(
      (x) => x.container_name === name,
    );
    expect(list.map((x) => x.uuid)).toEqual([m.uuid]);
    expect(await containerOn(c1, name)).toBeNull();
    const there = await containerOn(c2, name);
    expect(there?.State).toBe('running');
    expect(await execOut(c2, there!.Id, ['redis-cli', 'GET', 'sentinel'])).toBe(sentinel);
    expect(await execOut(c2, there!.Id, ['redis-cli', 'DBSIZE'])).toBe('200001');

    // The killed node comes back and joins the cluster again.
    const s = JSON.parse(await runDevcloud(['up', '--json'])) as CloudStatus;
    expect(s.database.galera?.map((n) => n.state)).toEqual(['Synced', 'Synced', 'Synced']);
  });

  it(`the node under the evacuating conductor is SIGKILLed mid-evacuation of ${EVACUATED} counters: each moves once, with its state; the node rejoins`, async () => {
    await evacuation.start();
    let killed: { service: string; port: number; at: number } | null = null;
    const r = await evacuation.run(async (e) => {
      const claim = await repo.getClaim('evacuation', e.uuid);
      expect(claim).not.toBeNull();
      const conductor = conductorOf(claim!.owner);
      const node = nodeInUse(conductor);
      const pid = galeraNodePid(GALERA, node);
      expect(pid).not.toBeNull();
      killed = { service: conductor.service, port: node.port, at: Date.now() };
      process.kill(pid!, 'SIGKILL');
    });
    const k = killed as { service: string; port: number; at: number } | null;
    expect(k).not.toBeNull();
    process.stdout.write(`${r.summary}; killed the Galera node 127.0.0.1:${k!.port} under ${k!.service}\n`);
    // The evacuating conductor did write through the killed node, and moved on.
    expect(failovers(k!.service).some((f) => f.from === `127.0.0.1:${k!.port}` && f.time >= k!.at)).toBe(true);

    // The killed node comes back and joins the cluster again.
    const s = JSON.parse(await runDevcloud(['up', '--json'])) as CloudStatus;
    expect(s.database.galera?.map((n) => n.state)).toEqual(['Synced', 'Synced', 'Synced']);
  });
});
