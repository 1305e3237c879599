/**
 * Rolling upgrades and the schema: expand/contract steps, the oldest code schema a database
 * records (schema_compat, version 9), and the start-up rule that lets the previous release's
 * services run on a schema a later release expanded. SQLite here; MariaDB's statements as text
 * (the real server's leg is test/integration/db/repository.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../../src/common/errors.js';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { openDriver } from '../../../src/db/connection.js';
import type { ExecResult, Row, SqlDriver, SqlExecutor } from '../../../src/db/driver.js';
import { mysqlDialect } from '../../../src/db/mysql.js';
import {
  COMPAT_SCHEMA_VERSION,
  databaseSchemaState,
  migrationKind,
  oldestCodeSchemaOf,
  openDatabase,
  requireCurrentDatabase,
  requireCurrentSchema,
  schemaState,
  schemaStatements,
  SCHEMA_VERSION,
  syncDatabase,
  syncSchema,
  type Db,
} from '../../../src/db/schema.js';
import { SqliteDriver, sqliteDialect } from '../../../src/db/sqlite.js';

const T = '2026-11-30T06:00:00.000Z';

/** A SQLite database at exactly `version`, as the Ferry of that version left it. */
function databaseAt(version: number): Db {
  const db = openDatabase('sqlite:///:memory:');
  for (let v = 1; v <= version; v++) for (const s of schemaStatements(v, sqliteDialect.types)) db.exec(s);
  db.pragma(`user_version = ${version}`);
  return db;
}

/**
 * What a later release's `db sync` does to this release's database: its own step (unknown to
 * this code), then the oldest code schema it computes from its list, recorded as this code reads it.
 */
function laterReleaseSync(db: Db, step: string, oldestCode: number): void {
  db.exec(step);
  db.exec(`UPDATE schema_compat SET oldest_code_schema = ${oldestCode}`);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
}

const LATER_EXPAND = 'ALTER TABLE migrations ADD COLUMN later_note TEXT';
const LATER_CONTRACT = 'ALTER TABLE migrations DROP COLUMN error';

describe('expand and contract steps', () => {
  it('classifies every step (1 is the baseline; 5 and 6 need every writer to be at their version)', () => {
    expect(Array.from({ length: SCHEMA_VERSION }, (_, i) => migrationKind(i + 1))).toEqual([
      'contract',
      'expand',
      'expand',
      'expand',
      'contract',
      'contract',
      'expand',
      'expand',
      'expand',
      'expand',
    ]);
  });

  it('the oldest code schema is the last contract step at or before a version', () => {
    expect([1, 2, 4, 5, 6, 7, 8, 9].map(oldestCodeSchemaOf)).toEqual([1, 1, 1, 5, 6, 6, 6, 6]);
  });
});

describe('db sync records the oldest code schema', () => {
  it('a new database gets one schema_compat row at the last contract step', async () => {
    const d = openDriver('sqlite:///:memory:');
    expect(await syncDatabase(d)).toEqual([0, SCHEMA_VERSION]);
    expect(await d.query('SELECT * FROM schema_compat')).toEqual([{ oldest_code_schema: oldestCodeSchemaOf(SCHEMA_VERSION) }]);
    expect(await databaseSchemaState(d)).toEqual({ version: SCHEMA_VERSION, oldestCode: 6 });
    await d.close();
  });

  it('an existing database at 8 syncs to 9 and keeps its records', async () => {
    const db = databaseAt(8);
    db.prepare(
      `INSERT INTO migrations (uuid, container_id, container_name, source_host, dest_host, status, created_at, updated_at)
       VALUES ('old-1', 'abc', 'web', 'compute1', 'compute2', 'completed', ?, ?)`,
    ).run(T, T);
    expect(schemaState(db)).toEqual({ version: 8, oldestCode: 6 });
    expect(syncSchema(db)).toEqual([8, SCHEMA_VERSION]);
    expect(schemaState(db)).toEqual({ version: SCHEMA_VERSION, oldestCode: 6 });
    expect(await new SqlRepository(openDriverOn(db)).getMigration('old-1')).toMatchObject({ container_name: 'web', status: 'completed' });
  });

  it('step 9 run again (a MariaDB sync stopped before recording the version) leaves one row', () => {
    const db = databaseAt(COMPAT_SCHEMA_VERSION);
    for (const s of schemaStatements(COMPAT_SCHEMA_VERSION, sqliteDialect.types)) db.exec(s);
    expect(db.prepare('SELECT oldest_code_schema AS n FROM schema_compat').all()).toEqual([{ n: 6 }]);
  });

  it('db sync on a newer database (even expand-only) refuses: it never downgrades', async () => {
    const db = databaseAt(SCHEMA_VERSION);
    laterReleaseSync(db, LATER_EXPAND, oldestCodeSchemaOf(SCHEMA_VERSION));
    expect(() => syncSchema(db)).toThrow(`database schema ${SCHEMA_VERSION + 1} is newer than this Ferry (${SCHEMA_VERSION})`);
    await expect(syncDatabase(openDriverOn(db))).rejects.toThrow(ConfigError);
  });
});

describe('the start-up rule', () => {
  it('runs on its own version without a warning', async () => {
    const db = databaseAt(SCHEMA_VERSION);
    expect(requireCurrentSchema(db)).toBeNull();
    expect(await requireCurrentDatabase(openDriverOn(db))).toBeNull();
  });

  it('runs, with a warning, on a schema a later release synced with expand steps only', async () => {
    const db = databaseAt(SCHEMA_VERSION);
    laterReleaseSync(db, LATER_EXPAND, oldestCodeSchemaOf(SCHEMA_VERSION));
    const warning = `database schema ${SCHEMA_VERSION + 1} is newer than this Ferry's (${SCHEMA_VERSION})`;
    expect(requireCurrentSchema(db)).toContain(warning);
    expect(await requireCurrentDatabase(openDriverOn(db))).toMatch(/upgrade is in progress/);
  });

  it('refuses a schema a later release contracted, naming both versions', async () => {
    const db = databaseAt(SCHEMA_VERSION);
    laterReleaseSync(db, LATER_CONTRACT, SCHEMA_VERSION + 1);
    const refusal = `database schema ${SCHEMA_VERSION + 1} needs code of schema ${SCHEMA_VERSION + 1} or later and this Ferry is at ${SCHEMA_VERSION}: upgrade this service`;
    expect(() => requireCurrentSchema(db)).toThrow(refusal);
    await expect(requireCurrentDatabase(openDriverOn(db))).rejects.toThrow(ConfigError);
  });

  it('refuses an older schema: db sync first', async () => {
    const db = databaseAt(SCHEMA_VERSION - 1);
    const refusal = `database schema is at version ${SCHEMA_VERSION - 1}, this Ferry needs ${SCHEMA_VERSION}: run "ferry-manage db sync"`;
    expect(() => requireCurrentSchema(db)).toThrow(refusal);
    await expect(requireCurrentDatabase(openDriverOn(db))).rejects.toThrow(refusal);
  });

  it('refuses a newer schema whose schema_compat row is missing instead of guessing', () => {
    const db = databaseAt(SCHEMA_VERSION);
    db.exec('DELETE FROM schema_compat');
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    expect(() => requireCurrentSchema(db)).toThrow('has no schema_compat row');
  });
});

describe('MariaDB statements', () => {
  it('step 10 adds the disk pre-copy columns, nullable, and keeps the oldest code schema at 6 (an expand step)', () => {
    expect(schemaStatements(10, mysqlDialect.types)).toEqual([
      'ALTER TABLE migrations ADD COLUMN disk_rounds BIGINT',
      'ALTER TABLE migrations ADD COLUMN disk_live_bytes BIGINT',
      'ALTER TABLE migrations ADD COLUMN disk_frozen_bytes BIGINT',
      'UPDATE schema_compat SET oldest_code_schema = 6',
    ]);
  });

  it('step 9 creates the table if missing, refills its one row, then sets the value (each statement safe to run again)', () => {
    expect(schemaStatements(COMPAT_SCHEMA_VERSION, mysqlDialect.types)).toEqual([
      'CREATE TABLE IF NOT EXISTS schema_compat (oldest_code_schema BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
      'DELETE FROM schema_compat',
      'INSERT INTO schema_compat (oldest_code_schema) VALUES (0)',
      'UPDATE schema_compat SET oldest_code_schema = 6',
    ]);
  });

  it('db sync 8 -> latest and the start-up check go through the driver interface with those statements', async () => {
    const d = new RecordingDriver(8);
    expect(await syncDatabase(d)).toEqual([8, SCHEMA_VERSION]);
    expect(d.applied).toEqual(
      Array.from({ length: SCHEMA_VERSION - 8 }, (_, i) => [COMPAT_SCHEMA_VERSION + i, schemaStatements(COMPAT_SCHEMA_VERSION + i, mysqlDialect.types)]),
    );
    expect(await requireCurrentDatabase(d)).toBeNull();
    d.version = SCHEMA_VERSION + 1;
    expect(await requireCurrentDatabase(d)).toMatch(/upgrade is in progress/);
    d.oldestCode = SCHEMA_VERSION + 1;
    await expect(requireCurrentDatabase(d)).rejects.toThrow(ConfigError);
    expect(d.queries).toContain('SELECT oldest_code_schema AS n FROM schema_compat');
  });
});

const openDriverOn = (db: Db): SqlDriver => SqliteDriver.for(db);

/** A driver with MariaDB's dialect that records what it is given and answers the version and schema_compat reads. */
class RecordingDriver implements SqlDriver {
  readonly dialect = mysqlDialect;
  readonly description = 'recording';
  applied: [number, string[]][] = [];
  queries: string[] = [];
  oldestCode = 0;
  constructor(public version: number) {}
  async query<T = Row>(sql: string): Promise<T[]> {
    this.queries.push(sql);
    if (sql.includes('FROM schema_compat')) return [{ n: this.oldestCode }] as T[];
    throw new Error(`unexpected query ${sql}`);
  }
  async exec(): Promise<ExecResult> {
    throw new Error('unexpected exec');
  }
  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async schemaVersion(): Promise<number> {
    return this.version;
  }
  async applySchema(version: number, statements: readonly string[]): Promise<void> {
    this.applied.push([version, [...statements]]);
    const set = statements.map((s) => /^UPDATE schema_compat SET oldest_code_schema = (\d+)$/.exec(s)).find((m) => m);
    if (set) this.oldestCode = Number(set[1]);
    this.version = version;
  }
  async close(): Promise<void> {}
}
