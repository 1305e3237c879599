/**
 * Ferry's MariaDB driver on a real three-node Galera cluster (a private one this file starts on
 * its own ports): writes to the same rows through different nodes meet certification conflicts,
 * which Galera reports as ER_LOCK_DEADLOCK (1213) at COMMIT; the driver runs those transactions
 * again, so that no increment is lost and, of conductors claiming one migration through
 * different nodes at once, exactly one gets it. A node SIGKILLed under a stream of writes: the
 * driver moves to the next node, and every write is there once.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mysql from 'mysql2/promise';
import { randomUUID } from 'node:crypto';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { openDriver, parseConnection } from '../../../src/db/connection.js';
import { MysqlDriver } from '../../../src/db/mysql.js';
import { syncDatabase } from '../../../src/db/schema.js';
import { DatabaseError } from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import { PrivateGalera } from '../../helpers/private-galera.js';

const galera = new PrivateGalera();
const drivers: MysqlDriver[] = [];
let urlOn: (first: number) => string;

function driverOn(node: number, onFailover?: (from: string, to: string) => void): MysqlDriver {
  const d = openDriver(urlOn(node), { onFailover }) as MysqlDriver;
  drivers.push(d);
  return d;
}

beforeAll(async () => {
  await galera.start();
  urlOn = await galera.database('ferry_galera_test');
  await syncDatabase(driverOn(0));
}, 240_000);

afterAll(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  await galera.stop();
}, 120_000);

describe('Ferry on a three-node Galera cluster', () => {
  it('the cluster has three synced nodes, and a conflicting commit on another node fails with 1213 (what the driver retries)', async () => {
    expect((await galera.status()).map((s) => [s.state, s.clusterSize])).toEqual([
      ['Synced', 3],
      ['Synced', 3],
      ['Synced', 3],
    ]);
    const t = parseConnection(urlOn(0));
    if (t.kind !== 'mysql') throw new Error('not a MySQL URL');
    const [a, b] = await Promise.all(
      [0, 1].map((i) =>
        mysql.createConnection({ host: '127.0.0.1', port: galera.cluster.nodes[i].port, user: t.user, password: t.password, database: t.database }),
      ),
    );
    try {
      await a.query('CREATE TABLE raw_conflict (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
      await a.query('INSERT INTO raw_conflict VALUES (1, 0)');
      await sleep(200); // replicated to node2 (Galera applies asynchronously after certification)
      await a.query('START TRANSACTION');
      await a.query('UPDATE raw_conflict SET v = v + 1 WHERE id = 1');
      // node2 commits a write to the same row first: node1's transaction loses certification.
      await b.query('UPDATE raw_conflict SET v = v + 10 WHERE id = 1');
      const err = await a.query('COMMIT').then(
        () => null,
        (e: unknown) => e as { code?: string; errno?: number },
      );
      expect(err).toMatchObject({ code: 'ER_LOCK_DEADLOCK', errno: 1213 });
      const [rows] = await b.query('SELECT v FROM raw_conflict WHERE id = 1');
      expect(rows).toEqual([{ v: 10 }]);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('read-modify-write transactions through two nodes at once: conflicts are retried, no increment is lost', async () => {
    const [d1, d2] = [driverOn(0), driverOn(1)];
    await d1.exec('CREATE TABLE counter (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
    await d1.exec('INSERT INTO counter VALUES (1, 0)');
    await sleep(200);
    const PER_NODE = 40;
    const bump = (d: MysqlDriver) =>
      d.transaction(async (tx) => {
        const [row] = await tx.query<{ v: number }>('SELECT v FROM counter WHERE id = 1 FOR UPDATE');
        await tx.exec('UPDATE counter SET v = ? WHERE id = 1', [Number(row.v) + 1]);
      });
    await Promise.all(
      [d1, d2].map(async (d) => {
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            for (let i = 0; i < PER_NODE / 4; i++) await bump(d);
          }),
        );
      }),
    );
    const [row] = await d2.query<{ v: number }>('SELECT v FROM counter WHERE id = 1');
    expect(Number(row.v)).toBe(2 * PER_NODE);
    // The conflicts were real: some transactions ran more than once.
    expect(d1.retried + d2.retried).toBeGreaterThan(0);
  }, 120_000);

  it('conductors claiming the same migrations through different nodes at once: exactly one gets each, and every node agrees who', async () => {
    const repos = [0, 1, 2].map((i) => new SqlRepository(driverOn(i)));
    const ids = Array.from({ length: 30 }, () => randomUUID());
    for (const id of ids) {
      const results = await Promise.all(repos.map((r, i) => r.claim('migration', id, `conductor${i}`, 60_000)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = `conductor${results.indexOf(true)}`;
      // Every node agrees on the owner.
      for (const r of repos) expect((await r.getClaim('migration', id))?.owner).toBe(winner);
    }
  }, 120_000);

  it('a node SIGKILLed under a stream of writes: the driver fails over to the next node and every write is there once', async () => {
    const moves: string[] = [];
    const d = driverOn(0, (from, to) => moves.push(`${from} -> ${to}`));
    const reader = driverOn(1);
    await d.exec('CREATE TABLE stream (n INT PRIMARY KEY) ENGINE=InnoDB');
    const victim = galera.pid(0) as number;
    expect(victim).toBeGreaterThan(0);
    let written = 0;
    let unknown = 0;
    const writer = (async () => {
      for (let n = 1; n <= 300; n++) {
        try {
          await d.transaction((tx) => tx.exec('INSERT INTO stream (n) VALUES (?)', [n]));
        } catch (e) {
          // The node died with this COMMIT in flight: the driver says the outcome is unknown, and the caller looks.
          if (!(e instanceof DatabaseError)) throw e;
          unknown++;
          const there = await d.query('SELECT n FROM stream WHERE n = ?', [n]);
          if (there.length === 0) await d.exec('INSERT INTO stream (n) VALUES (?)', [n]);
        }
        written = n;
      }
    })();
    while (written < 50) await sleep(5);
    process.kill(victim, 'SIGKILL');
    await writer;
    expect(unknown).toBeLessThanOrEqual(1);
    expect(d.server).not.toBe(`127.0.0.1:${galera.cluster.nodes[0].port}`);
    expect(moves[0]).toBe(`127.0.0.1:${galera.cluster.nodes[0].port} -> 127.0.0.1:${galera.cluster.nodes[1].port}`);
    const rows = await reader.query<{ c: number; lo: number; hi: number }>('SELECT COUNT(*) AS c, MIN(n) AS lo, MAX(n) AS hi FROM stream');
    expect(rows.map((r) => [Number(r.c), Number(r.lo), Number(r.hi)])).toEqual([[300, 1, 300]]);
    // The killed node comes back (incremental state transfer) and has every row as well.
    await galera.start();
    expect((await galera.status()).map((s) => s.state)).toEqual(['Synced', 'Synced', 'Synced']);
    const back = driverOn(0);
    expect(await back.query<{ c: number }>('SELECT COUNT(*) AS c FROM stream').then((r) => Number(r[0].c))).toBe(300);
  }, 180_000);
});
