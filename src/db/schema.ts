/**
 * The embedded database: SQLite through better-sqlite3 (WAL), with the schema versioned as a
 * list of migrations that `ferry-manage db sync` applies in order. Services refuse to run on
 * a schema older than the code (as Nova does) instead of changing it behind the operator's back.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../common/errors.js';

export type Db = Database.Database;

/** Each entry is one schema version; never edit a released one, append a new one. */
const MIGRATIONS: string[] = [
  // 1: migrations, compute hosts, and the containers they last reported
  `CREATE TABLE migrations (
     uuid TEXT PRIMARY KEY,
     container_id TEXT NOT NULL,
     container_name TEXT NOT NULL,
     source_host TEXT NOT NULL,
     dest_host TEXT,
     status TEXT NOT NULL,
     phase TEXT,
     progress INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     freeze_ms INTEGER, checkpoint_ms INTEGER, transfer_ms INTEGER, restore_ms INTEGER, total_ms INTEGER,
     memory_bytes INTEGER, rootfs_bytes INTEGER, volume_bytes INTEGER, image_bytes INTEGER, transferred_bytes INTEGER,
     connections_preserved INTEGER,
     abort_requested INTEGER NOT NULL DEFAULT 0,
     request_id TEXT, user_id TEXT, project_id TEXT,
     steps TEXT NOT NULL DEFAULT '{}',
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX migrations_status ON migrations(status);
   CREATE INDEX migrations_container ON migrations(container_id);
   CREATE TABLE compute_hosts (
     name TEXT PRIMARY KEY,
     report TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE TABLE containers (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     host TEXT NOT NULL,
     image TEXT NOT NULL,
     status TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX containers_host ON containers(host);
   CREATE INDEX containers_name ON containers(name);`,
  // 2: paged lists (newest first, changes-since, per project) and the containers' page order
  `CREATE INDEX migrations_created ON migrations(created_at);
   CREATE INDEX migrations_updated ON migrations(updated_at);
   CREATE INDEX migrations_project ON migrations(project_id, created_at);
   CREATE INDEX containers_page ON containers(host, name, id);`,
  // 3: host maintenance: a host's service status (disabled hosts are never chosen as targets), and evacuations
  `ALTER TABLE compute_hosts ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled';
   ALTER TABLE compute_hosts ADD COLUMN disabled_reason TEXT;
   CREATE TABLE evacuations (
     uuid TEXT PRIMARY KEY,
     host TEXT NOT NULL,
     target_host TEXT,
     max_parallel INTEGER NOT NULL,
     post_copy INTEGER NOT NULL DEFAULT 0,
     status TEXT NOT NULL,
     host_disabled INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     request_id TEXT, user_id TEXT, project_id TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX evacuations_host ON evacuations(host, created_at);
   CREATE TABLE evacuation_containers (
     evacuation_uuid TEXT NOT NULL REFERENCES evacuations(uuid),
     position INTEGER NOT NULL,
     container_id TEXT NOT NULL,
     container_name TEXT NOT NULL,
     container_status TEXT NOT NULL,
     status TEXT NOT NULL,
     migration_uuid TEXT,
     dest_host TEXT,
     reason TEXT,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (evacuation_uuid, position)
   );`,
  // 4: how memory moves (stop-and-copy, pre-copy, post-copy) and Nova's memory counters
  `ALTER TABLE migrations ADD COLUMN mode TEXT NOT NULL DEFAULT 'stop-and-copy';
   ALTER TABLE migrations ADD COLUMN memory_total_bytes INTEGER;
   ALTER TABLE migrations ADD COLUMN memory_processed_bytes INTEGER;
   ALTER TABLE migrations ADD COLUMN memory_remaining_bytes INTEGER;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** `sqlite:////abs/path` (oslo.db style) or `sqlite:///:memory:`. */
export function sqlitePath(connection: string): string {
  const m = /^sqlite:\/\/\/(.*)$/.exec(connection);
  if (!m) throw new ConfigError(`[database] connection "${connection}": only sqlite:////ABS/PATH is supported`);
  return m[1] === ':memory:' ? ':memory:' : m[1];
}

export function openDatabase(connection: string): Db {
  const file = sqlitePath(connection);
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Apply the migrations the database lacks; returns [from, to]. */
export function syncSchema(db: Db): [number, number] {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new ConfigError(`database schema ${from} is newer than this Ferry (${SCHEMA_VERSION}); upgrade Ferry`);
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return [from, SCHEMA_VERSION];
}

export function requireCurrentSchema(db: Db): void {
  const v = schemaVersion(db);
  if (v !== SCHEMA_VERSION) {
    throw new ConfigError(`database schema is at version ${v}, this Ferry needs ${SCHEMA_VERSION}: run "ferry-manage db sync"`);
  }
}
