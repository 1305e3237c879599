/**
 * Persistence of migrations, hosts and containers. The conductor talks to the Repository
 * interface only; SqliteRepository is the embedded backend (a PostgreSQL or MySQL one would
 * implement the same interface).
 */
import type { Db } from '../db/schema.js';
import type { ContainerSummary, HostState } from '../objects/host.js';
import type { Migration, MigrationStatus } from '../objects/migration.js';
import type { MigrationFilters } from './interface.js';

export interface HostRecord {
  name: string;
  report: HostState;
  updated_at: string;
}

export interface ContainerRecord extends ContainerSummary {
  host: string;
  updated_at: string;
}

/** Intermediate step results kept with a migration, so that a restarted conductor can resume it. */
export type StepResults = Record<string, unknown>;

export interface Repository {
  createMigration(m: Migration): void;
  /** Apply `patch` (and bump updated_at); returns the new record. */
  updateMigration(uuid: string, patch: Partial<Migration>): Migration;
  getMigration(uuid: string): Migration | null;
  listMigrations(filters?: MigrationFilters): Migration[];
  /** Non-final migrations, oldest first. */
  unfinishedMigrations(): Migration[];
  getSteps(uuid: string): StepResults;
  saveStep(uuid: string, step: string, result: unknown): void;

  saveHostReport(name: string, report: HostState, at: string): void;
  listHostRecords(): HostRecord[];
  getHostRecord(name: string): HostRecord | null;
  listContainers(): ContainerRecord[];
  /** Move a container's known location right away (heartbeats would take a while to say so). */
  setContainerHost(id: string, host: string, newId?: string): void;
}

interface HostRow {
  name: string;
  report: string;
  updated_at: string;
}

function hostRecord(r: HostRow): HostRecord {
  return { name: r.name, report: JSON.parse(r.report) as HostState, updated_at: r.updated_at };
}

const BOOL_FIELDS = new Set(['connections_preserved', 'abort_requested']);

function rowToMigration(row: Record<string, unknown>): Migration {
  const m: Record<string, unknown> = { ...row };
  delete m.steps;
  for (const f of BOOL_FIELDS) if (m[f] !== null && m[f] !== undefined) m[f] = Boolean(m[f]);
  return m as unknown as Migration;
}

function toDb(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

export class SqliteRepository implements Repository {
  constructor(private readonly db: Db) {}

  createMigration(m: Migration): void {
    const cols = Object.keys(m);
    this.db
      .prepare(`INSERT INTO migrations (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`)
      .run(Object.fromEntries(cols.map((c) => [c, toDb((m as unknown as Record<string, unknown>)[c])])));
  }

  updateMigration(uuid: string, patch: Partial<Migration>): Migration {
    const fields = { ...patch, updated_at: patch.updated_at ?? new Date().toISOString() } as Record<string, unknown>;
    delete fields.uuid;
    const cols = Object.keys(fields);
    this.db
      .prepare(`UPDATE migrations SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE uuid = @uuid`)
      .run({ ...Object.fromEntries(cols.map((c) => [c, toDb(fields[c])])), uuid });
    const m = this.getMigration(uuid);
    if (!m) throw new Error(`migration ${uuid} vanished from the database`);
    return m;
  }

  getMigration(uuid: string): Migration | null {
    const row = this.db.prepare('SELECT * FROM migrations WHERE uuid = ?').get(uuid) as Record<string, unknown> | undefined;
    return row ? rowToMigration(row) : null;
  }

  listMigrations(filters: MigrationFilters = {}): Migration[] {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (filters.container) {
      where.push('(container_id = @c OR container_name = @c OR container_id LIKE @cp)');
      args.c = filters.container;
      args.cp = `${filters.container}%`;
    }
    for (const f of ['status', 'source_host', 'dest_host'] as const) {
      if (filters[f]) {
        where.push(`${f} = @${f}`);
        args[f] = filters[f];
      }
    }
    const sql = `SELECT * FROM migrations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC`;
    return (this.db.prepare(sql).all(args) as Record<string, unknown>[]).map(rowToMigration);
  }

  unfinishedMigrations(): Migration[] {
    const finals: MigrationStatus[] = ['completed', 'failed', 'cancelled'];
    return (
      this.db
        .prepare(`SELECT * FROM migrations WHERE status NOT IN (${finals.map(() => '?').join(', ')}) ORDER BY created_at, rowid`)
        .all(...finals) as Record<string, unknown>[]
    ).map(rowToMigration);
  }

  getSteps(uuid: string): StepResults {
    const row = this.db.prepare('SELECT steps FROM migrations WHERE uuid = ?').get(uuid) as { steps: string } | undefined;
    return row ? (JSON.parse(row.steps) as StepResults) : {};
  }

  saveStep(uuid: string, step: string, result: unknown): void {
    this.db.transaction(() => {
      const steps = this.getSteps(uuid);
      steps[step] = result;
      this.db.prepare('UPDATE migrations SET steps = ? WHERE uuid = ?').run(JSON.stringify(steps), uuid);
    })();
  }

  saveHostReport(name: string, report: HostState, at: string): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO compute_hosts (name, report, updated_at, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET report = excluded.report, updated_at = excluded.updated_at`,
        )
        .run(name, JSON.stringify(report), at, at);
      this.db.prepare('DELETE FROM containers WHERE host = ?').run(name);
      const ins = this.db.prepare(
        `INSERT INTO containers (id, name, host, image, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, host = excluded.host, image = excluded.image,
           status = excluded.status, updated_at = excluded.updated_at`,
      );
      for (const c of report.containers) ins.run(c.id, c.name, name, c.image, c.status, at);
    })();
  }

  listHostRecords(): HostRecord[] {
    return (this.db.prepare('SELECT name, report, updated_at FROM compute_hosts ORDER BY name').all() as HostRow[]).map(hostRecord);
  }

  getHostRecord(name: string): HostRecord | null {
    const row = this.db.prepare('SELECT name, report, updated_at FROM compute_hosts WHERE name = ?').get(name) as HostRow | undefined;
    return row ? hostRecord(row) : null;
  }

  listContainers(): ContainerRecord[] {
    return this.db.prepare('SELECT * FROM containers ORDER BY host, name').all() as ContainerRecord[];
  }

  setContainerHost(id: string, host: string, newId?: string): void {
    this.db.transaction(() => {
      // The target's heartbeat may already have reported the new container.
      if (newId && newId !== id) this.db.prepare('DELETE FROM containers WHERE id = ?').run(newId);
      this.db.prepare('UPDATE containers SET host = ?, id = ?, status = ? WHERE id = ?').run(host, newId ?? id, 'running', id);
    })();
  }
}
