/**
 * Persistence of migrations, hosts and containers. The conductor talks to the Repository
 * interface only (asynchronous, so that a networked database fits behind it); SqliteRepository
 * is the embedded backend.
 */
import { InvalidInput } from '../common/errors.js';
import type { Db } from '../db/schema.js';
import { countByStatus, type Evacuation, type EvacuationContainer } from '../objects/evacuation.js';
import type { ContainerSummary, HostState, HostStatus } from '../objects/host.js';
import type { Migration, MigrationStatus } from '../objects/migration.js';
import type { MigrationFilters, MigrationSortKey, PageRequest } from './interface.js';

export interface HostRecord {
  name: string;
  report: HostState;
  updated_at: string;
  status: HostStatus;
  disabled_reason: string | null;
}

/** An evacuation as stored: the record without its derived counts. */
export type EvacuationRecord = Omit<Evacuation, 'counts'>;
export type EvacuationPatch = Partial<Pick<Evacuation, 'status' | 'error' | 'host_disabled' | 'updated_at'>>;
export type EvacuationContainerPatch = Partial<Pick<EvacuationContainer, 'status' | 'migration_uuid' | 'dest_host' | 'reason'>>;

export interface ContainerRecord extends ContainerSummary {
  host: string;
  /** When the host last observed this state (its event's time, or its inventory's). */
  updated_at: string;
}

/** A change of one container that its host reported as it happened (engine-neutral). */
export interface ContainerChange {
  id: string;
  /** Unknown in the event (e.g. some engines' die): null keeps what is recorded. */
  name: string | null;
  image: string | null;
  /** The state after the change; null when unchanged (rename); `removed` when it is gone. */
  status: string | null;
  /** When the host observed it, ISO 8601 UTC. */
  at: string;
}

/** The status a removed container keeps for a while, so that a late older report cannot bring it back. */
export const REMOVED = 'removed';

/** Intermediate step results kept with a migration, so that a restarted conductor can resume it. */
export type StepResults = Record<string, unknown>;

export interface Repository {
  createMigration(m: Migration): Promise<void>;
  /** Apply `patch` (and bump updated_at); returns the new record. */
  updateMigration(uuid: string, patch: Partial<Migration>): Promise<Migration>;
  getMigration(uuid: string): Promise<Migration | null>;
  listMigrations(filters?: MigrationFilters): Promise<Migration[]>;
  /** Non-final migrations, oldest first. */
  unfinishedMigrations(): Promise<Migration[]>;
  getSteps(uuid: string): Promise<StepResults>;
  saveStep(uuid: string, step: string, result: unknown): Promise<void>;

  /**
   * A heartbeat: the host's facts and its full container inventory, taken at `takenAt`
   * (default `at`). Containers a newer event already changed keep that change.
   */
  saveHostReport(name: string, report: HostState, at: string, takenAt?: string): Promise<void>;
  /** A full container inventory of one host taken at `takenAt` (a live check); the host's facts are untouched. */
  saveInventory(host: string, containers: ContainerSummary[], takenAt: string): Promise<void>;
  /** One container event; ignored when the record is newer. Returns whether it changed the record. */
  applyContainerChange(host: string, change: ContainerChange): Promise<boolean>;
  listHostRecords(): Promise<HostRecord[]>;
  getHostRecord(name: string): Promise<HostRecord | null>;
  /** Containers that exist (not removed), by host, name, id; paged when `page.limit` is set. */
  listContainers(page?: PageRequest): Promise<ContainerRecord[]>;
  /** How many containers each host has now. */
  containerCounts(): Promise<Map<string, number>>;
  /** Move a container's known location right away (heartbeats would take a while to say so). */
  setContainerHost(id: string, host: string, newId?: string): Promise<void>;

  /** Enable or disable a known host; null when no host of that name ever reported. */
  setHostStatus(name: string, status: HostStatus, reason: string | null): Promise<HostRecord | null>;
  /** Record a new evacuation with its containers (in their order). */
  createEvacuation(e: EvacuationRecord): Promise<void>;
  getEvacuation(uuid: string): Promise<Evacuation | null>;
  /** Newest first; only one host's when `host` is given. */
  listEvacuations(filters?: { host?: string; limit?: number }): Promise<Evacuation[]>;
  updateEvacuation(uuid: string, patch: EvacuationPatch): Promise<Evacuation>;
  /** Change one container's entry (found by its container id) of an evacuation. */
  updateEvacuationContainer(uuid: string, containerId: string, patch: EvacuationContainerPatch): Promise<void>;
  /** Evacuations still `running`, oldest first (a restarted conductor goes on with them). */
  unfinishedEvacuations(): Promise<Evacuation[]>;
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

interface HostRow {
  name: string;
  report: string;
  updated_at: string;
  status: HostStatus;
  disabled_reason: string | null;
}

const HOST_COLUMNS = 'name, report, updated_at, status, disabled_reason';

function hostRecord(r: HostRow): HostRecord {
  return { name: r.name, report: JSON.parse(r.report) as HostState, updated_at: r.updated_at, status: r.status, disabled_reason: r.disabled_reason };
}

function rowToEvacuation(row: Record<string, unknown>, containers: EvacuationContainer[]): Evacuation {
  const e = { ...row, post_copy: Boolean(row.post_copy), host_disabled: Boolean(row.host_disabled) } as unknown as EvacuationRecord;
  return { ...e, containers, counts: countByStatus(containers) };
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

  async createMigration(m: Migration): Promise<void> {
    const cols = Object.keys(m);
    this.db
      .prepare(`INSERT INTO migrations (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`)
      .run(Object.fromEntries(cols.map((c) => [c, toDb((m as unknown as Record<string, unknown>)[c])])));
  }

  async updateMigration(uuid: string, patch: Partial<Migration>): Promise<Migration> {
    const fields = { ...patch, updated_at: patch.updated_at ?? new Date().toISOString() } as Record<string, unknown>;
    delete fields.uuid;
    const cols = Object.keys(fields);
    this.db
      .prepare(`UPDATE migrations SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE uuid = @uuid`)
      .run({ ...Object.fromEntries(cols.map((c) => [c, toDb(fields[c])])), uuid });
    const m = await this.getMigration(uuid);
    if (!m) throw new Error(`migration ${uuid} vanished from the database`);
    return m;
  }

  async getMigration(uuid: string): Promise<Migration | null> {
    const row = this.db.prepare('SELECT * FROM migrations WHERE uuid = ?').get(uuid) as Record<string, unknown> | undefined;
    return row ? rowToMigration(row) : null;
  }

  async listMigrations(filters: MigrationFilters = {}): Promise<Migration[]> {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (filters.container) {
      // A prefix of the id; LIKE's own wildcards in the input are taken literally.
      where.push("(container_id = @c OR container_name = @c OR container_id LIKE @cp ESCAPE '\\')");
      args.c = filters.container;
      args.cp = `${filters.container.replace(/[%_\\]/g, (ch) => `\\${ch}`)}%`;
    }
    for (const f of ['status', 'source_host', 'dest_host', 'user_id', 'project_id'] as const) {
      if (filters[f]) {
        where.push(`${f} = @${f}`);
        args[f] = filters[f];
      }
    }
    if (filters.changes_since) {
      where.push('updated_at >= @changes_since');
      args.changes_since = filters.changes_since;
    }
    if (filters.changes_before) {
      where.push('updated_at <= @changes_before');
      args.changes_before = filters.changes_before;
    }
    const key = SORT_EXPR[filters.sort_key ?? 'created_at'];
    if (!key) throw new InvalidInput(`cannot sort migrations by "${filters.sort_key}"`);
    const dir = filters.sort_dir === 'asc' ? 'ASC' : 'DESC';
    if (filters.marker !== undefined) {
      // Keyset paging: everything after the marker in this order (the marker itself excluded).
      // Looked up within the caller's project when the list is, so a marker cannot reveal another project's migration.
      const scope = filters.project_id ? ' AND project_id = @project_id' : '';
      const mk = this.db
        .prepare(`SELECT ${key} AS k, rowid AS r FROM migrations WHERE uuid = @uuid${scope}`)
        .get({ uuid: filters.marker, ...(filters.project_id ? { project_id: filters.project_id } : {}) }) as { k: unknown; r: number } | undefined;
      if (!mk) throw new InvalidInput(`marker "${filters.marker}" could not be found`, { marker: filters.marker });
      const op = dir === 'ASC' ? '>' : '<';
      where.push(`(${key} ${op} @mk OR (${key} = @mk AND rowid ${op} @mr))`);
      args.mk = mk.k;
      args.mr = mk.r;
    }
    let sql = `SELECT * FROM migrations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${key} ${dir}, rowid ${dir}`;
    if (filters.limit !== undefined) {
      sql += ' LIMIT @limit';
      args.limit = filters.limit;
    }
    return (this.db.prepare(sql).all(args) as Record<string, unknown>[]).map(rowToMigration);
  }

  async unfinishedMigrations(): Promise<Migration[]> {
    const finals: MigrationStatus[] = ['completed', 'failed', 'cancelled'];
    return (
      this.db
        .prepare(`SELECT * FROM migrations WHERE status NOT IN (${finals.map(() => '?').join(', ')}) ORDER BY created_at, rowid`)
        .all(...finals) as Record<string, unknown>[]
    ).map(rowToMigration);
  }

  async getSteps(uuid: string): Promise<StepResults> {
    return this.stepsOf(uuid);
  }

  private stepsOf(uuid: string): StepResults {
    const row = this.db.prepare('SELECT steps FROM migrations WHERE uuid = ?').get(uuid) as { steps: string } | undefined;
    return row ? (JSON.parse(row.steps) as StepResults) : {};
  }

  async saveStep(uuid: string, step: string, result: unknown): Promise<void> {
    this.db.transaction(() => {
      const steps = this.stepsOf(uuid);
      steps[step] = result;
      this.db.prepare('UPDATE migrations SET steps = ? WHERE uuid = ?').run(JSON.stringify(steps), uuid);
    })();
  }

  async saveHostReport(name: string, report: HostState, at: string, takenAt: string = at): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO compute_hosts (name, report, updated_at, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET report = excluded.report, updated_at = excluded.updated_at`,
        )
        .run(name, JSON.stringify(report), at, at);
      this.writeInventory(name, report.containers, takenAt);
    })();
  }

  async saveInventory(host: string, containers: ContainerSummary[], takenAt: string): Promise<void> {
    this.writeInventory(host, containers, takenAt);
  }

  private writeInventory(host: string, containers: ContainerSummary[], takenAt: string): void {
    this.db.transaction(() => {
      // Whatever the host knew of before the inventory was taken and did not list is gone;
      // what changed after it (a newer event) stays as that event left it.
      const listed = new Set(containers.map((c) => c.id));
      const known = this.db.prepare('SELECT id, updated_at FROM containers WHERE host = ?').all(host) as { id: string; updated_at: string }[];
      const del = this.db.prepare('DELETE FROM containers WHERE id = ?');
      for (const k of known) if (!listed.has(k.id) && k.updated_at <= takenAt) del.run(k.id);
      const ins = this.db.prepare(
        `INSERT INTO containers (id, name, host, image, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, host = excluded.host, image = excluded.image,
           status = excluded.status, updated_at = excluded.updated_at
         WHERE containers.updated_at <= excluded.updated_at`,
      );
      for (const c of containers) ins.run(c.id, c.name, host, c.image, c.status, takenAt);
    })();
  }

  async applyContainerChange(host: string, change: ContainerChange): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.prepare('SELECT * FROM containers WHERE id = ?').get(change.id) as ContainerRecord | undefined;
      // Events of one host arrive in order; a record newer than the event came from a later inventory.
      if (cur && cur.updated_at > change.at) return false;
      const name = (change.name ?? cur?.name ?? change.id.slice(0, 12)).replace(/^\//, '');
      this.db
        .prepare(
          `INSERT INTO containers (id, name, host, image, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET name = excluded.name, host = excluded.host, image = excluded.image,
             status = excluded.status, updated_at = excluded.updated_at`,
        )
        .run(change.id, name, host, change.image ?? cur?.image ?? '', change.status ?? cur?.status ?? 'unknown', change.at);
      return true;
    })();
  }

  async listHostRecords(): Promise<HostRecord[]> {
    return (this.db.prepare(`SELECT ${HOST_COLUMNS} FROM compute_hosts ORDER BY name`).all() as HostRow[]).map(hostRecord);
  }

  async getHostRecord(name: string): Promise<HostRecord | null> {
    const row = this.db.prepare(`SELECT ${HOST_COLUMNS} FROM compute_hosts WHERE name = ?`).get(name) as HostRow | undefined;
    return row ? hostRecord(row) : null;
  }

  async listContainers(page: PageRequest = {}): Promise<ContainerRecord[]> {
    const where = ['status != @removed'];
    const args: Record<string, unknown> = { removed: REMOVED };
    if (page.marker !== undefined) {
      // A removed container still marks its place in the order for a while.
      const mk = this.db.prepare('SELECT host, name, id FROM containers WHERE id = ?').get(page.marker) as
        | { host: string; name: string; id: string }
        | undefined;
      if (!mk) throw new InvalidInput(`marker "${page.marker}" could not be found`, { marker: page.marker });
      where.push('(host > @mh OR (host = @mh AND (name > @mn OR (name = @mn AND id > @mi))))');
      Object.assign(args, { mh: mk.host, mn: mk.name, mi: mk.id });
    }
    let sql = `SELECT * FROM containers WHERE ${where.join(' AND ')} ORDER BY host, name, id`;
    if (page.limit !== undefined) {
      sql += ' LIMIT @limit';
      args.limit = page.limit;
    }
    return this.db.prepare(sql).all(args) as ContainerRecord[];
  }

  async containerCounts(): Promise<Map<string, number>> {
    const rows = this.db.prepare('SELECT host, COUNT(*) AS n FROM containers WHERE status != ? GROUP BY host').all(REMOVED) as { host: string; n: number }[];
    return new Map(rows.map((r) => [r.host, r.n]));
  }

  async setContainerHost(id: string, host: string, newId?: string): Promise<void> {
    this.db.transaction(() => {
      if (newId && newId !== id) {
        // The target's events or inventory may already have reported the new container: that record is the newer truth.
        const known = this.db.prepare('SELECT id FROM containers WHERE id = ? AND status != ?').get(newId, REMOVED);
        if (known) {
          this.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
          return;
        }
        this.db.prepare('DELETE FROM containers WHERE id = ?').run(newId);
      }
      this.db.prepare('UPDATE containers SET host = ?, id = ?, status = ? WHERE id = ?').run(host, newId ?? id, 'running', id);
    })();
  }

  async setHostStatus(name: string, status: HostStatus, reason: string | null): Promise<HostRecord | null> {
    this.db.prepare('UPDATE compute_hosts SET status = ?, disabled_reason = ? WHERE name = ?').run(status, reason, name);
    return await this.getHostRecord(name);
  }

  async createEvacuation(e: EvacuationRecord): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO evacuations (uuid, host, target_host, max_parallel, post_copy, status, host_disabled, error, request_id, user_id, project_id, created_at, updated_at)
           VALUES (@uuid, @host, @target_host, @max_parallel, @post_copy, @status, @host_disabled, @error, @request_id, @user_id, @project_id, @created_at, @updated_at)`,
        )
        .run({
          uuid: e.uuid, host: e.host, target_host: e.target_host, max_parallel: e.max_parallel, post_copy: toDb(e.post_copy), status: e.status,
          host_disabled: toDb(e.host_disabled), error: e.error, request_id: e.request_id, user_id: e.user_id, project_id: e.project_id,
          created_at: e.created_at, updated_at: e.updated_at,
        });
      const ins = this.db.prepare(
        `INSERT INTO evacuation_containers (evacuation_uuid, position, container_id, container_name, container_status, status, migration_uuid, dest_host, reason, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      e.containers.forEach((c, i) =>
        ins.run(e.uuid, i, c.container_id, c.container_name, c.container_status, c.status, c.migration_uuid, c.dest_host, c.reason, c.updated_at),
      );
    })();
  }

  private evacuationContainers(uuid: string): EvacuationContainer[] {
    return this.db
      .prepare(
        `SELECT container_id, container_name, container_status, status, migration_uuid, dest_host, reason, updated_at
         FROM evacuation_containers WHERE evacuation_uuid = ? ORDER BY position`,
      )
      .all(uuid) as EvacuationContainer[];
  }

  async getEvacuation(uuid: string): Promise<Evacuation | null> {
    const row = this.db.prepare('SELECT * FROM evacuations WHERE uuid = ?').get(uuid) as Record<string, unknown> | undefined;
    return row ? rowToEvacuation(row, this.evacuationContainers(uuid)) : null;
  }

  async listEvacuations(filters: { host?: string; limit?: number } = {}): Promise<Evacuation[]> {
    const where = filters.host !== undefined ? 'WHERE host = @host' : '';
    const limit = filters.limit !== undefined ? 'LIMIT @limit' : '';
    const rows = this.db.prepare(`SELECT * FROM evacuations ${where} ORDER BY created_at DESC, rowid DESC ${limit}`).all({
      ...(filters.host !== undefined ? { host: filters.host } : {}),
      ...(filters.limit !== undefined ? { limit: filters.limit } : {}),
    }) as Record<string, unknown>[];
    return rows.map((r) => rowToEvacuation(r, this.evacuationContainers(r.uuid as string)));
  }

  async updateEvacuation(uuid: string, patch: EvacuationPatch): Promise<Evacuation> {
    const fields = { ...patch, updated_at: patch.updated_at ?? new Date().toISOString() } as Record<string, unknown>;
    const cols = Object.keys(fields);
    this.db
      .prepare(`UPDATE evacuations SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE uuid = @uuid`)
      .run({ ...Object.fromEntries(cols.map((c) => [c, toDb(fields[c])])), uuid });
    const e = await this.getEvacuation(uuid);
    if (!e) throw new Error(`evacuation ${uuid} vanished from the database`);
    return e;
  }

  async updateEvacuationContainer(uuid: string, containerId: string, patch: EvacuationContainerPatch): Promise<void> {
    const fields = { ...patch, updated_at: new Date().toISOString() } as Record<string, unknown>;
    const cols = Object.keys(fields);
    this.db
      .prepare(`UPDATE evacuation_containers SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE evacuation_uuid = @uuid AND container_id = @container_id`)
      .run({ ...fields, uuid, container_id: containerId });
  }

  async unfinishedEvacuations(): Promise<Evacuation[]> {
    const rows = this.db.prepare("SELECT * FROM evacuations WHERE status = 'running' ORDER BY created_at, rowid").all() as Record<string, unknown>[];
    return rows.map((r) => rowToEvacuation(r, this.evacuationContainers(r.uuid as string)));
  }
}
