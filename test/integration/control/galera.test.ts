/**
 * Two conductors on the development cloud's three-node Galera cluster (`up --db galera
 * --conductors 2`; the test puts the default shape back at its end): each conductor writes
 * through its own node. While a Redis container with 200 000 keys migrates, the Galera node
 * the migration's conductor writes through is SIGKILLed: the conductor's database driver moves
 * to the next node and the migration completes; the container runs once, on compute2, with its
 * keys. The node is started again (it catches up by incremental state transfer).
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
import { admin, startMigration, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { sleep } from '../../../src/common/sleep.js';
import { setHost } from '../../helpers/hosts.js';

jest.setTimeout(600_000);

const c1 = engine('compute1');
const c2 = engine('compute2');

describe('two conductors on Galera, a node killed during a migration', () => {
  const name = uniqueName('galera-redis');
  const sentinel = `kept-${randomUUID()}`;
  let db: SqlDriver;
  let repo: SqlRepository;

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
    const host = claim!.owner.split(':')[0];
    const index = host === 'controller' ? 0 : Number(host.replace('controller', '')) - 1;
    const node = GALERA.nodes[index % GALERA.nodes.length];
    const pid = galeraNodePid(GALERA, node);
    expect(pid).not.toBeNull();
    const killedAt = Date.now();
    process.kill(pid!, 'SIGKILL');

    const done = await waitMigration(m.uuid, (x) => ['completed', 'failed', 'error', 'cancelled'].includes(x.status), 300_000);
    expect(done.status).toBe('completed');
    // The migration's conductor did write through the killed node, and moved on to the next.
    const service = index === 0 ? 'ferry-conductor' : `ferry-conductor${index + 1}`;
    const moved = fs
      .readFileSync(path.join(stateDir, 'log', `${service}.log`), 'utf8')
      .split('\n')
      .filter((l) => l.includes('database server stopped answering'));
    expect(moved.some((l) => l.includes(`"from":"127.0.0.1:${node.port}"`) && (JSON.parse(l) as { time: number }).time >= killedAt)).toBe(true);
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
});
