/**
 * The repository's tests on both backends through `[database] connection` URLs, as the
 * services open them: SQLite on a file, and MariaDB (a private server this file starts on
 * 127.0.0.1:3307 with its own datadir, and stops by its PID). Also: `db sync` brings an existing
 * SQLite database of schema 3 forward, and is idempotent on both.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { openDriver } from '../../../src/db/connection.js';
import type { SqlDriver } from '../../../src/db/driver.js';
import {
  COMPAT_SCHEMA_VERSION,
  databaseSchemaState,
  oldestCodeSchemaOf,
  requireCurrentDatabase,
  schemaStatements,
  SCHEMA_VERSION,
  syncDatabase,
} from '../../../src/db/schema.js';
import { openSqlite, sqliteDialect } from '../../../src/db/sqlite.js';
import { PrivateMariaDB } from '../../helpers/private-mariadb.js';
import { repositorySuite } from '../../helpers/repository-suite.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-repo-'));
const mariadb = new PrivateMariaDB();
const drivers: SqlDriver[] = [];
let n = 0;

beforeAll(async () => {
  await mariadb.start();
}, 120_000);

afterAll(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  await mariadb.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A new empty database of that backend, synced like `ferry-manage db sync` does. */
const BACKENDS: [string, () => Promise<string>][] = [
  ['SQLite (file)', async () => `sqlite:///${path.join(tmp, `repo${++n}.sqlite`)}`],
  ['MariaDB', () => mariadb.database(`ferry_test_${++n}`)],
];

async function open(url: string): Promise<SqlDriver> {
  const d = openDriver(url);
  drivers.push(d);
  return d;
}

describe.each(BACKENDS)('%s', (_name, newUrl) => {
  repositorySuite(async () => {
    const d = await open(await newUrl());
    expect(await syncDatabase(d)).toEqual([0, SCHEMA_VERSION]);
    return new SqlRepository(d);
  });

  it("db sync from schema 5 fills each host's facts and container count in from its last report and containers", async () => {
    const d = await open(await newUrl());
    for (let v = 1; v <= 5; v++) await d.applySchema(v, schemaStatements(v, d.dialect.types));
    const report = {
      docker_version: '20.10',
      api_version: '1.41',
      criu_version: '4.2.1',
      criu_ok: true,
      architecture: 'x86_64',
      migration_address: 'x:1',
      memory_used_bytes: 6_000_000_000,
      memory_total_bytes: 8_000_000_000,
      modes: { post_copy: { ok: false, reason: 'no userfaultfd' } },
      containers: [{ id: 'a', name: 'web', image: 'i', status: 'running' }],
    };
    const t = '2026-11-30T06:00:00.000Z';
    await d.exec('INSERT INTO compute_hosts (name, report, updated_at, created_at) VALUES (?, ?, ?, ?), (?, ?, ?, ?)', [
      'h1',
      JSON.stringify(report),
      t,
      t,
      'h2',
      JSON.stringify({ ...report, containers: [] }),
      t,
      t,
    ]);
    await d.exec('INSERT INTO containers (id, name, host, image, status, updated_at) VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)', [
      'a',
      'web',
      'h1',
      'i',
      'running',
      t,
      'b',
      'db',
      'h1',
      'i',
      'exited',
      t,
      'c',
      'gone',
      'h1',
      'i',
      'removed',
      t,
    ]);
    expect(await syncDatabase(d)).toEqual([5, SCHEMA_VERSION]);
    const hosts = await new SqlRepository(d).listHostRecords();
    const { containers: _c, ...facts } = report;
    expect(hosts).toEqual([
      { name: 'h1', facts, containers: 2, updated_at: t, status: 'enabled', disabled_reason: null },
      { name: 'h2', facts, containers: 0, updated_at: t, status: 'enabled', disabled_reason: null },
    ]);
  });

  it('db sync a second time changes nothing', async () => {
    const d = await open(await newUrl());
    await syncDatabase(d);
    expect(await syncDatabase(d)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION]);
  });
});

describe('upgrades', () => {
  it('an existing SQLite database at schema 3 (with records) syncs forward and keeps them', async () => {
    const file = path.join(tmp, 'old.sqlite');
    const db = openSqlite(file);
    // Schema 3 exactly as Ferry 3 applied it.
    for (let v = 1; v <= 3; v++) for (const s of schemaStatements(v, sqliteDialect.types)) db.exec(s);
    db.pragma('user_version = 3');
    db.prepare(
      `INSERT INTO migrations (uuid, container_id, container_name, source_host, dest_host, status, created_at, updated_at)
       VALUES ('old-1', 'abc', 'web', 'compute1', 'compute2', 'completed', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`,
    ).run();
    db.close();
    const d = await open(`sqlite:///${file}`);
    expect(await syncDatabase(d)).toEqual([3, SCHEMA_VERSION]);
    const m = await new SqlRepository(d).getMigration('old-1');
    expect(m).toMatchObject({ container_name: 'web', status: 'completed', mode: 'stop-and-copy' });
  });

  it('a MariaDB database newer than this Ferry is refused', async () => {
    const d = await open(await mariadb.database('ferry_test_newer'));
    await syncDatabase(d);
    await d.exec('UPDATE ferry_schema_version SET version = ?', [SCHEMA_VERSION + 1]);
    await expect(syncDatabase(d)).rejects.toThrow(`database schema ${SCHEMA_VERSION + 1} is newer than this Ferry`);
  });

  it("a MariaDB database at 8 syncs to 9; a later release's expand-only schema lets this code start, a contract one does not", async () => {
    const d = await open(await mariadb.database('ferry_test_compat'));
    for (let v = 1; v <= 8; v++) await d.applySchema(v, schemaStatements(v, d.dialect.types));
    expect(await syncDatabase(d)).toEqual([8, SCHEMA_VERSION]);
    expect(await databaseSchemaState(d)).toEqual({ version: SCHEMA_VERSION, oldestCode: oldestCodeSchemaOf(SCHEMA_VERSION) });
    // Step 9 again, as after a sync that stopped before recording its version: still one row.
    for (const s of schemaStatements(COMPAT_SCHEMA_VERSION, d.dialect.types)) await d.exec(s);
    expect(await d.query('SELECT oldest_code_schema FROM schema_compat')).toHaveLength(1);
    // A later release's expand step, and the oldest code schema its sync records.
    await d.applySchema(SCHEMA_VERSION + 1, [
      'ALTER TABLE migrations ADD COLUMN later_note VARCHAR(255)',
      `UPDATE schema_compat SET oldest_code_schema = ${oldestCodeSchemaOf(SCHEMA_VERSION)}`,
    ]);
    expect(await requireCurrentDatabase(d)).toMatch(/upgrade is in progress/);
    await expect(syncDatabase(d)).rejects.toThrow(`database schema ${SCHEMA_VERSION + 1} is newer than this Ferry`);
    // Then its contract step.
    await d.applySchema(SCHEMA_VERSION + 2, [
      'ALTER TABLE migrations DROP COLUMN later_note',
      `UPDATE schema_compat SET oldest_code_schema = ${SCHEMA_VERSION + 2}`,
    ]);
    await expect(requireCurrentDatabase(d)).rejects.toThrow(`needs code of schema ${SCHEMA_VERSION + 2} or later and this Ferry is at ${SCHEMA_VERSION}`);
  });
});
