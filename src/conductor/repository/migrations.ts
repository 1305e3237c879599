/** The migrations aggregate: records, their step results, and what the queue and scheduler read of them. */
import { InvalidInput } from '../../common/errors.js';
import type { SqlExecutor } from '../../db/driver.js';
import type { Migration, MigrationStatus } from '../../objects/migration.js';
import type { MigrationFilters, MigrationSortKey } from '../interface.js';
import { chunks, likePrefix, marks, num, SqlStore, toDb, UNFINISHED_SQL } from './sql.js';

/** Intermediate step results kept with a migration, so that a restarted conductor can resume it. */
export type StepResults = Record<string, unknown>;

export interface MigrationState {
  status: MigrationStatus;
  abort_requested: boolean;
}

/**
 * A condition that an abort and the flow's step into the restore test and set in one statement,
 * so that of the two racing, exactly one wins: an accepted abort is always honoured.
 * `not-aborted`: no abort was asked for; `abortable`: the restore has not begun.
 */
export type MigrationGuard = 'not-aborted' | 'abortable';

const GUARD_SQL: Readonly<Record<MigrationGuard, string>> = {
  'not-aborted': 'abort_requested = 0',
  // Mirrors the refusals of an abort (conductor/interventions.ts): final, restoring, or running on the target in post-copy.
  abortable: `status IN ${UNFINISHED_SQL} AND status <> 'post-migrating' AND NOT (mode = 'post-copy' AND status = 'running' AND phase IN ('restore', 'post-copy'))`,
};

export interface MigrationStore {
  createMigration(m: Migration): Promise<void>;
  /** Apply `patch` (and bump updated_at); returns the new record. */
  updateMigration(uuid: string, patch: Partial<Migration>): Promise<Migration>;
  /** Apply `patch` only if `guard` holds, in one statement; the record afterwards, and whether it was applied. */
  updateMigrationIf(uuid: string, patch: Partial<Migration>, guard: MigrationGuard): Promise<{ applied: boolean; migration: Migration }>;
  getMigration(uuid: string): Promise<Migration | null>;
  listMigrations(filters?: MigrationFilters): Promise<Migration[]>;
  /** Non-final migrations, oldest first. */
  unfinishedMigrations(): Promise<Migration[]>;
  /** The newest non-final migration of a container (by its exact id), if any. */
  unfinishedMigrationOf(containerId: string): Promise<Migration | null>;
  /** How many non-final migrations are on their way to each target host. */
  incomingCounts(): Promise<Map<string, number>>;
  /** The status and abort flag of each of these migrations that exists (a queue's look at them). */
  migrationStates(uuids: readonly string[]): Promise<Map<string, MigrationState>>;
  getSteps(uuid: string): Promise<StepResults>;
  saveStep(uuid: string, step: string, result: unknown): Promise<void>;
}

/** The SQL expression each sort key orders by (NULL-free, so that keyset paging can compare it). */
const SORT_EXPR: Readonly<Record<MigrationSortKey, string>> = {
  created_at: 'created_at',
  updated_at: 'updated_at',
  status: 'status',
  container_name: 'container_name',
  container_id: 'container_id',
  source_host: 'source_host',
  dest_host: "COALESCE(dest_host, '')",
  uuid: 'uuid',
};

const BOOL_FIELDS = new Set(['connections_preserved', 'abort_requested']);
/** Columns that are not integers; every other non-null column of a migration is one. */
const STRING_FIELDS = new Set([
  'uuid',
  'mode',
  'container_id',
  'container_name',
  'source_host',
  'dest_host',
  'status',
  'phase',
  'error',
  'request_id',
  'user_id',
  'project_id',
  'created_at',
  'updated_at',
]);

function rowToMigration(row: Record<string, unknown>): Migration {
  const m: Record<string, unknown> = { ...row };
  delete m.steps;
  delete m.seq;
  for (const [k, v] of Object.entries(m)) {
    if (v === null || v === undefined || STRING_FIELDS.has(k)) continue;
    m[k] = BOOL_FIELDS.has(k) ? Boolean(Number(v)) : num(v);
  }
  return m as unknown as Migration;
}

export class SqlMigrations extends SqlStore implements MigrationStore {
  async createMigration(m: Migration): Promise<void> {
    const cols = Object.keys(m);
    await this.driver.exec(
      `INSERT INTO migrations (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
      cols.map((c) => toDb((m as unknown as Record<string, unknown>)[c])),
    );
  }

  async updateMigration(uuid: string, patch: Partial<Migration>): Promise<Migration> {
    return (await this.update(uuid, patch, null)).migration;
  }

  updateMigrationIf(uuid: string, patch: Partial<Migration>, guard: MigrationGuard): Promise<{ applied: boolean; migration: Migration }> {
    return this.update(uuid, patch, guard);
  }

  private async update(uuid: string, patch: Partial<Migration>, guard: MigrationGuard | null): Promise<{ applied: boolean; migration: Migration }> {
    const fields = { ...patch, updated_at: patch.updated_at ?? new Date().toISOString() } as Record<string, unknown>;
    delete fields.uuid;
    // A field given as undefined is not given (a partial patch), never a NULL.
    const cols = Object.keys(fields).filter((c) => fields[c] !== undefined);
    const f = this.fenceOf('migration', uuid);
    const condition = guard ? ` AND ${GUARD_SQL[guard]}` : '';
    const r = await this.driver.exec(`UPDATE migrations SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE uuid = ?${condition}${f.sql}`, [
      ...cols.map((c) => toDb(fields[c])),
      uuid,
      ...f.args,
    ]);
    const m = await this.getMigration(uuid);
    if (!m) throw new Error(`migration ${uuid} vanished from the database`);
    // Nothing changed: the claim is gone (ClaimLost), or else the guard did not hold.
    if (r.changes === 0 && f.sql) await this.checkFence(this.driver, 'migration', uuid);
    return { applied: r.changes > 0, migration: m };
  }

  async getMigration(uuid: string): Promise<Migration | null> {
    const rows = await this.driver.query('SELECT * FROM migrations WHERE uuid = ?', [uuid]);
    return rows.length ? rowToMigration(rows[0]) : null;
  }

  async listMigrations(filters: MigrationFilters = {}): Promise<Migration[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filters.container) {
      // A prefix of the id; LIKE's own wildcards in the input are taken literally ('!' escapes the same in both dialects).
      where.push("(container_id = ? OR container_name = ? OR container_id LIKE ? ESCAPE '!')");
      args.push(filters.container, filters.container, likePrefix(filters.container));
    }
    for (const f of ['status', 'source_host', 'dest_host', 'user_id'] as const) {
      if (filters[f]) {
        where.push(`${f} = ?`);
        args.push(filters[f]);
      }
    }
    // Given is given: an empty project id matches nothing, never every project (a caller without a project sees none).
    if (filters.project_id !== undefined) {
      where.push('project_id = ?');
      args.push(filters.project_id);
    }
    if (filters.changes_since) {
      where.push('updated_at >= ?');
      args.push(filters.changes_since);
    }
    if (filters.changes_before) {
      where.push('updated_at <= ?');
      args.push(filters.changes_before);
    }
    const key = SORT_EXPR[filters.sort_key ?? 'created_at'];
    if (!key) throw new InvalidInput(`cannot sort migrations by "${filters.sort_key}"`);
    const dir = filters.sort_dir === 'asc' ? 'ASC' : 'DESC';
    const seq = this.d.seq;
    if (filters.marker !== undefined) {
      // Keyset paging: everything after the marker in this order (the marker itself excluded).
      // Looked up within the caller's project when the list is, so a marker cannot reveal another project's migration.
      const scope = filters.project_id !== undefined ? ' AND project_id = ?' : '';
      const mks = await this.driver.query<{ k: unknown; r: unknown }>(`SELECT ${key} AS k, ${seq} AS r FROM migrations WHERE uuid = ?${scope}`, [
        filters.marker,
        ...(filters.project_id !== undefined ? [filters.project_id] : []),
      ]);
      if (!mks.length) throw new InvalidInput(`marker "${filters.marker}" could not be found`, { marker: filters.marker });
      const op = dir === 'ASC' ? '>' : '<';
      where.push(`(${key} ${op} ? OR (${key} = ? AND ${seq} ${op} ?))`);
      args.push(mks[0].k, mks[0].k, mks[0].r);
    }
    let sql = `SELECT * FROM migrations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${key} ${dir}, ${seq} ${dir}`;
    if (filters.limit !== undefined) {
      sql += ' LIMIT ?';
      args.push(filters.limit);
    }
    return (await this.driver.query(sql, args)).map(rowToMigration);
  }

  async unfinishedMigrations(): Promise<Migration[]> {
    return (await this.driver.query(`SELECT * FROM migrations WHERE status IN ${UNFINISHED_SQL} ORDER BY created_at, ${this.d.seq}`)).map(rowToMigration);
  }

  async unfinishedMigrationOf(containerId: string): Promise<Migration | null> {
    const rows = await this.driver.query(
      `SELECT * FROM migrations WHERE container_id = ? AND status IN ${UNFINISHED_SQL} ORDER BY created_at DESC, ${this.d.seq} DESC LIMIT 1`,
      [containerId],
    );
    return rows.length ? rowToMigration(rows[0]) : null;
  }

  async incomingCounts(): Promise<Map<string, number>> {
    const rows = await this.driver.query<{ host: string; n: unknown }>(
      `SELECT dest_host AS host, COUNT(*) AS n FROM migrations WHERE status IN ${UNFINISHED_SQL} AND dest_host IS NOT NULL GROUP BY dest_host`,
    );
    return new Map(rows.map((r) => [r.host, Number(r.n)]));
  }

  async migrationStates(uuids: readonly string[]): Promise<Map<string, MigrationState>> {
    const out = new Map<string, MigrationState>();
    for (const part of chunks(uuids)) {
      const rows = await this.driver.query<{ uuid: string; status: MigrationStatus; abort_requested: unknown }>(
        `SELECT uuid, status, abort_requested FROM migrations WHERE uuid IN (${marks(part.length)})`,
        part,
      );
      for (const r of rows) out.set(r.uuid, { status: r.status, abort_requested: Boolean(Number(r.abort_requested)) });
    }
    return out;
  }

  async getSteps(uuid: string): Promise<StepResults> {
    return this.stepsOf(this.driver, uuid);
  }

  private async stepsOf(x: SqlExecutor, uuid: string, lock = false): Promise<StepResults> {
    const rows = await x.query<{ steps: string }>(`SELECT steps FROM migrations WHERE uuid = ?${lock ? this.d.forUpdate : ''}`, [uuid]);
    return rows.length ? (JSON.parse(rows[0].steps) as StepResults) : {};
  }

  async saveStep(uuid: string, step: string, result: unknown): Promise<void> {
    await this.driver.transaction(async (tx) => {
      await this.checkFence(tx, 'migration', uuid);
      const steps = await this.stepsOf(tx, uuid, true);
      steps[step] = result;
      await tx.exec('UPDATE migrations SET steps = ? WHERE uuid = ?', [JSON.stringify(steps), uuid]);
    });
  }
}
