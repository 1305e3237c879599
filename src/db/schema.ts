/**
 * The database schema, one for both backends (embedded SQLite, MariaDB/MySQL), versioned as a
 * list of migrations that `ferry-manage db sync` applies in order. Services refuse to run on a
 * schema older than the code (as Nova does) instead of changing it behind the operator's back.
 *
 * Each version is written once with the dialect's type names (driver.ts SchemaTypes):
 *   ${t.key}  a short string that is a key or indexed   (SQLite TEXT,    MySQL VARCHAR(255))
 *   ${t.text} a string of any length, never indexed     (SQLite TEXT,    MySQL MEDIUMTEXT)
 *   ${t.int}  an integer (64-bit)                       (SQLite INTEGER, MySQL BIGINT)
 *   ${t.seq}  first column of a table paged by insertion order (SQLite: none, rowid does it)
 *   ${t.table} after a CREATE TABLE's closing parenthesis (MySQL: InnoDB, utf8mb4, binary collation)
 * For SQLite these render exactly the text earlier versions of Ferry applied.
 */
import { ConfigError } from '../common/errors.js';
import { parseConnection } from './connection.js';
import { splitStatements, type SchemaTypes, type SqlDriver } from './driver.js';
import { openSqlite, sqliteDialect, type Db } from './sqlite.js';

export type { Db } from './sqlite.js';

/**
 * How a schema version treats the code of the version before it, for rolling upgrades:
 *  expand:   it only adds (nullable or defaulted columns, tables, indexes) and data the previous
 *            version's code writes stays right for the new code: that code may keep running on it.
 *  contract: the previous version's code must be gone first (drops, renames, NOT NULL on existing
 *            data, or data every writer must now maintain).
 */
export type MigrationKind = 'expand' | 'contract';

interface Migration {
  kind: MigrationKind;
  sql: (t: SchemaTypes) => string;
}

/** One row: the oldest schema version whose code may run on the database (version 9 on). */
const COMPAT_TABLE = 'schema_compat';

/** Each entry is one schema version; never edit a released one, append a new one. */
const MIGRATIONS: Migration[] = [
  // 1: migrations, compute hosts, and the containers they last reported.
  //    Contract: the baseline, no older code exists that could run on it.
  {
    kind: 'contract',
    sql: (t) => `CREATE TABLE migrations (
     ${t.seq}uuid ${t.key} PRIMARY KEY,
     container_id ${t.key} NOT NULL,
     container_name ${t.key} NOT NULL,
     source_host ${t.key} NOT NULL,
     dest_host ${t.key},
     status ${t.key} NOT NULL,
     phase ${t.key},
     progress ${t.int} NOT NULL DEFAULT 0,
     error ${t.text},
     freeze_ms ${t.int}, checkpoint_ms ${t.int}, transfer_ms ${t.int}, restore_ms ${t.int}, total_ms ${t.int},
     memory_bytes ${t.int}, rootfs_bytes ${t.int}, volume_bytes ${t.int}, image_bytes ${t.int}, transferred_bytes ${t.int},
     connections_preserved ${t.int},
     abort_requested ${t.int} NOT NULL DEFAULT 0,
     request_id ${t.key}, user_id ${t.key}, project_id ${t.key},
     steps ${t.text} NOT NULL DEFAULT '{}',
     created_at ${t.key} NOT NULL,
     updated_at ${t.key} NOT NULL
   )${t.table};
   CREATE INDEX migrations_status ON migrations(status);
   CREATE INDEX migrations_container ON migrations(container_id);
   CREATE TABLE compute_hosts (
     name ${t.key} PRIMARY KEY,
     report ${t.text} NOT NULL,
     updated_at ${t.key} NOT NULL,
     created_at ${t.key} NOT NULL
   )${t.table};
   CREATE TABLE containers (
     id ${t.key} PRIMARY KEY,
     name ${t.key} NOT NULL,
     host ${t.key} NOT NULL,
     image ${t.key} NOT NULL,
     status ${t.key} NOT NULL,
     updated_at ${t.key} NOT NULL
   )${t.table};
   CREATE INDEX containers_host ON containers(host);
   CREATE INDEX containers_name ON containers(name);`,
  },
  // 2: paged lists (newest first, changes-since, per project) and the containers' page order. Expand: indexes.
  {
    kind: 'expand',
    sql: () => `CREATE INDEX migrations_created ON migrations(created_at);
   CREATE INDEX migrations_updated ON migrations(updated_at);
   CREATE INDEX migrations_project ON migrations(project_id, created_at);
   CREATE INDEX containers_page ON containers(host, name, id);`,
  },
  // 3: host maintenance: a host's service status (disabled hosts are never chosen as targets), and evacuations.
  //    Expand: a defaulted column, a nullable one, new tables; older code just does not honour 'disabled'.
  {
    kind: 'expand',
    sql: (t) => `ALTER TABLE compute_hosts ADD COLUMN status ${t.key} NOT NULL DEFAULT 'enabled';
   ALTER TABLE compute_hosts ADD COLUMN disabled_reason ${t.key};
   CREATE TABLE evacuations (
     ${t.seq}uuid ${t.key} PRIMARY KEY,
     host ${t.key} NOT NULL,
     target_host ${t.key},
     max_parallel ${t.int} NOT NULL,
     post_copy ${t.int} NOT NULL DEFAULT 0,
     status ${t.key} NOT NULL,
     host_disabled ${t.int} NOT NULL DEFAULT 0,
     error ${t.text},
     request_id ${t.key}, user_id ${t.key}, project_id ${t.key},
     created_at ${t.key} NOT NULL,
     updated_at ${t.key} NOT NULL
   )${t.table};
   CREATE INDEX evacuations_host ON evacuations(host, created_at);
   CREATE TABLE evacuation_containers (
     evacuation_uuid ${t.key} NOT NULL REFERENCES evacuations(uuid),
     position ${t.int} NOT NULL,
     container_id ${t.key} NOT NULL,
     container_name ${t.key} NOT NULL,
     container_status ${t.key} NOT NULL,
     status ${t.key} NOT NULL,
     migration_uuid ${t.key},
     dest_host ${t.key},
     reason ${t.text},
     updated_at ${t.key} NOT NULL,
     PRIMARY KEY (evacuation_uuid, position)
   )${t.table};`,
  },
  // 4: how memory moves (stop-and-copy, pre-copy, post-copy) and Nova's memory counters.
  //    Expand: older code's migrations get the default mode, which is what they do.
  {
    kind: 'expand',
    sql: (t) => `ALTER TABLE migrations ADD COLUMN mode ${t.key} NOT NULL DEFAULT 'stop-and-copy';
   ALTER TABLE migrations ADD COLUMN memory_total_bytes ${t.int};
   ALTER TABLE migrations ADD COLUMN memory_processed_bytes ${t.int};
   ALTER TABLE migrations ADD COLUMN memory_remaining_bytes ${t.int};`,
  },
  // 5: several conductors: who drives each migration and evacuation, until when (ms since the epoch),
  //    and whether a queued migration holds its hosts' slots already.
  //    Contract although it only adds: an older conductor takes no claims, so next to a newer one
  //    both would drive the same migration.
  {
    kind: 'contract',
    sql: (t) => `CREATE TABLE claims (
     kind ${t.key} NOT NULL,
     id ${t.key} NOT NULL,
     owner ${t.key} NOT NULL,
     expires_at ${t.int} NOT NULL,
     admitted ${t.int} NOT NULL DEFAULT 0,
     PRIMARY KEY (kind, id)
   )${t.table};
   CREATE INDEX claims_owner ON claims(owner);
   INSERT INTO claims (kind, id, owner, expires_at, admitted) VALUES ('lock', 'admission', '', 0, 0);`,
  },
  // 6: a host's facts without its container list, and how many containers it has now, so that the
  //    scheduler reads 1,000 hosts without parsing 50,000 containers' worth of reports each time.
  //    JSON_REMOVE is the same function in SQLite's JSON1 and in MariaDB/MySQL.
  //    Contract although it only adds: the backfill holds only while every heartbeat writer keeps
  //    facts and container_count, and an older conductor's heartbeats leave them stale (or null).
  {
    kind: 'contract',
    sql: (t) => `ALTER TABLE compute_hosts ADD COLUMN facts ${t.text};
   ALTER TABLE compute_hosts ADD COLUMN container_count ${t.int} NOT NULL DEFAULT 0;
   UPDATE compute_hosts SET facts = JSON_REMOVE(report, '$.containers'),
     container_count = (SELECT COUNT(*) FROM containers c WHERE c.host = compute_hosts.name AND c.status != 'removed');`,
  },
  // 7: the project a container belongs to (its creator's label, src/objects/host.ts PROJECT_LABEL); null: not labelled.
  //    Expand: a nullable column.
  { kind: 'expand', sql: (t) => `ALTER TABLE containers ADD COLUMN project_id ${t.key};` },
  // 8: rolling upgrades: each running service's service version (src/common/service-version.ts) and
  //    the RPC API version it serves, as Nova's services table. A compute agent's come with its
  //    heartbeat, so they sit on its host's row (written by the same statement); other services
  //    have a row in services. Expand only: nullable columns and a new table that the previous
  //    release's code never reads.
  {
    kind: 'expand',
    sql: (t) => `ALTER TABLE compute_hosts ADD COLUMN service_version ${t.int};
   ALTER TABLE compute_hosts ADD COLUMN rpc_version ${t.key};
   CREATE TABLE services (
     binary_name ${t.key} NOT NULL,
     host ${t.key} NOT NULL,
     topic ${t.key} NOT NULL,
     service_version ${t.int} NOT NULL,
     rpc_version ${t.key},
     created_at ${t.key} NOT NULL,
     updated_at ${t.key} NOT NULL,
     PRIMARY KEY (binary_name, host)
   )${t.table};
   CREATE INDEX services_topic ON services(topic);`,
  },
  // 9: the oldest schema version whose code may still run on this database (oldestCodeSchemaOf), so
  //    that older code can tell whether a later release's schema is safe for it without knowing
  //    that release's steps. One row; every sync from here on sets it (compatStatements).
  //    Expand: a new table. Safe to re-run (MariaDB commits DDL one statement at a time).
  {
    kind: 'expand',
    sql: (t) => `CREATE TABLE IF NOT EXISTS ${COMPAT_TABLE} (oldest_code_schema ${t.int} NOT NULL)${t.table};
   DELETE FROM ${COMPAT_TABLE};
   INSERT INTO ${COMPAT_TABLE} (oldest_code_schema) VALUES (0);`,
  },
  // 10: the disk pre-copy's rounds and bytes on a migration (null: the disk moved in the freeze).
  //     Expand: nullable columns that the previous release's code never writes.
  {
    kind: 'expand',
    sql: (t) => `ALTER TABLE migrations ADD COLUMN disk_rounds ${t.int};
   ALTER TABLE migrations ADD COLUMN disk_live_bytes ${t.int};
   ALTER TABLE migrations ADD COLUMN disk_frozen_bytes ${t.int};`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The first schema version that records the oldest code schema in the database. */
export const COMPAT_SCHEMA_VERSION = 9;

/** Whether schema version `version` is an expand or a contract step. */
export function migrationKind(version: number): MigrationKind {
  return MIGRATIONS[version - 1].kind;
}

/** The oldest schema version whose code may run on a database at `version` of this code's list: its last contract step. */
export function oldestCodeSchemaOf(version: number): number {
  for (let v = version; v >= 1; v--) if (MIGRATIONS[v - 1].kind === 'contract') return v;
  return 0;
}

/** What version `version` (1-based) applies: its own statements, then, from the version that has it, the compat row. */
export function schemaStatements(version: number, types: SchemaTypes): string[] {
  const own = splitStatements(MIGRATIONS[version - 1].sql(types));
  return version >= COMPAT_SCHEMA_VERSION ? [...own, `UPDATE ${COMPAT_TABLE} SET oldest_code_schema = ${oldestCodeSchemaOf(version)}`] : own;
}

/** A database's schema as the start-up check sees it. */
export interface SchemaState {
  version: number;
  /** The oldest schema version whose code may run on it (as the database records it, or from this code's list when older). */
  oldestCode: number;
}

/** The start-up rule: ok when this code may run on `s` (with a warning when `s` is newer), else the refusal. */
export function schemaVerdict(s: SchemaState): { ok: true; warning: string | null } | { ok: false; error: Error } {
  if (s.version === SCHEMA_VERSION) return { ok: true, warning: null };
  if (s.version < SCHEMA_VERSION) return { ok: false, error: tooOld(s.version) };
  if (s.oldestCode <= SCHEMA_VERSION) {
    return {
      ok: true,
      warning: `database schema ${s.version} is newer than this Ferry's (${SCHEMA_VERSION}) but still runs code of schema ${s.oldestCode} and later: an upgrade is in progress, upgrade this service too`,
    };
  }
  return {
    ok: false,
    error: new ConfigError(
      `database schema ${s.version} needs code of schema ${s.oldestCode} or later and this Ferry is at ${SCHEMA_VERSION}: upgrade this service to the release that synced the database`,
    ),
  };
}

function tooNew(v: number): Error {
  return new ConfigError(`database schema ${v} is newer than this Ferry (${SCHEMA_VERSION}); upgrade Ferry (db sync never downgrades)`);
}

function tooOld(v: number): Error {
  return new ConfigError(`database schema is at version ${v}, this Ferry needs ${SCHEMA_VERSION}: run "ferry-manage db sync"`);
}

/** Apply the versions the database lacks (either backend); returns [from, to]. */
export async function syncDatabase(driver: SqlDriver): Promise<[number, number]> {
  const from = await driver.schemaVersion();
  if (from > SCHEMA_VERSION) throw tooNew(from);
  for (let v = from + 1; v <= SCHEMA_VERSION; v++) await driver.applySchema(v, schemaStatements(v, driver.dialect.types));
  return [from, SCHEMA_VERSION];
}

/** The database's version and the oldest code schema it records (either backend). */
export async function databaseSchemaState(driver: SqlDriver): Promise<SchemaState> {
  const version = await driver.schemaVersion();
  if (version < COMPAT_SCHEMA_VERSION) return { version, oldestCode: oldestCodeSchemaOf(version) };
  const rows = await driver.query<{ n: unknown }>(`SELECT oldest_code_schema AS n FROM ${COMPAT_TABLE}`);
  return { version, oldestCode: compatValue(rows, version) };
}

function compatValue(rows: { n: unknown }[], version: number): number {
  // No row: a sync stopped inside version 9 (MariaDB); trust nothing newer than the code.
  if (rows.length !== 1)
    throw new ConfigError(`database schema ${version} has no ${COMPAT_TABLE} row: run "ferry-manage db sync" with the release that synced it`);
  return Number(rows[0].n);
}

/** Refuse to run on a schema this code cannot use; returns the warning to log when a newer, compatible schema is there. */
export async function requireCurrentDatabase(driver: SqlDriver): Promise<string | null> {
  const v = schemaVerdict(await databaseSchemaState(driver));
  if (!v.ok) throw v.error;
  return v.warning;
}

// ---- the embedded database, synchronously (better-sqlite3): tests and tools that hold a handle ----

/** `sqlite:////abs/path` (oslo.db style) or `sqlite:///:memory:`. */
export function sqlitePath(connection: string): string {
  const t = parseConnection(connection);
  if (t.kind !== 'sqlite') throw new ConfigError('this needs the embedded database ([database] connection = sqlite:////ABS/PATH)');
  return t.file;
}

export function openDatabase(connection: string): Db {
  return openSqlite(sqlitePath(connection));
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Apply the versions a SQLite database lacks; returns [from, to]. */
export function syncSchema(db: Db): [number, number] {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) throw tooNew(from);
  for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
    db.transaction(() => {
      for (const s of schemaStatements(v, sqliteDialect.types)) db.exec(s);
      db.pragma(`user_version = ${v}`);
    })();
  }
  return [from, SCHEMA_VERSION];
}

export function schemaState(db: Db): SchemaState {
  const version = schemaVersion(db);
  if (version < COMPAT_SCHEMA_VERSION) return { version, oldestCode: oldestCodeSchemaOf(version) };
  return { version, oldestCode: compatValue(db.prepare(`SELECT oldest_code_schema AS n FROM ${COMPAT_TABLE}`).all() as { n: unknown }[], version) };
}

/** requireCurrentDatabase for a SQLite handle. */
export function requireCurrentSchema(db: Db): string | null {
  const v = schemaVerdict(schemaState(db));
  if (!v.ok) throw v.error;
  return v.warning;
}
