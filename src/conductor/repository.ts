/**
 * Persistence of migrations, hosts, containers, evacuations and the conductors' claims. The
 * conductor talks to the Repository interface only (asynchronous, so that a networked database
 * fits behind it); SqlRepository is written once over the SQL driver (src/db/driver.ts) and
 * runs on the embedded SQLite and on MariaDB/MySQL alike.
 */
import { ClaimLost, InvalidInput } from '../common/errors.js';
import type { SqlDriver, SqlExecutor } from '../db/driver.js';
import { SqliteDriver, type Db } from '../db/sqlite.js';
import { countByStatus, type Evacuation, type EvacuationContainer } from '../objects/evacuation.js';
import { projectOf, type ContainerSummary, type HostFacts, type HostState, type HostStatus } from '../objects/host.js';
import { FINAL_STATUSES, MIGRATION_STATUSES, type Migration, type MigrationStatus } from '../objects/migration.js';
import type { ContainerListRequest, MigrationFilters, MigrationSortKey } from './interface.js';

/** A host as the scheduler and the host list see it: its last report's facts, not its container list. */
export interface HostRecord {
  name: string;
  /** What its last heartbeat said of the host itself (versions, CRIU, memory, modes). */
  facts: HostFacts;
  /** Containers recorded on it now (heartbeats, events, live checks, moves), removed ones left out. */
  containers: number;
  updated_at: string;
  status: HostStatus;
  disabled_reason: string | null;
}

/** One running service as it last recorded itself (Nova's services table): who it is and which versions it speaks. */
export interface ServiceRecord {
  /** The program: ferry-conductor, ferry-compute. */
  binary: string;
  host: string;
  /** The RPC topic it serves. */
  topic: string;
  /** Its service version (src/common/service-version.ts). */
  service_version: number;
  /** The RPC API version it serves on `topic`; null when it did not say. */
  rpc_version: string | null;
  updated_at: string;
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
  /** The container's project label; null keeps what is recorded (labels never change on a container). */
  project_id?: string | null;
  /** When the host observed it, ISO 8601 UTC. */
  at: string;
}

/** The compute agent's program name and RPC topic, as its service record names it. */
const COMPUTE_BINARY = 'ferry-compute';

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
  /** The newest non-final migration of a container (by its exact id), if any. */
  unfinishedMigrationOf(containerId: string): Promise<Migration | null>;
  /** How many non-final migrations are on their way to each target host. */
  incomingCounts(): Promise<Map<string, number>>;
  /** The status and abort flag of each of these migrations that exists (a queue's look at them). */
  migrationStates(uuids: readonly string[]): Promise<Map<string, MigrationState>>;
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
  /** Record (or refresh) a running service's versions (a conductor's; an agent's come with its heartbeat); `at` becomes its updated_at. */
  saveService(rec: Omit<ServiceRecord, 'updated_at'>, at: string): Promise<void>;
  /** Every service record: the services' own and the compute agents' from their last heartbeats; by binary then host. */
  listServices(): Promise<ServiceRecord[]>;
  getHostRecord(name: string): Promise<HostRecord | null>;
  /** Containers that exist (not removed), by host, name, id; paged when `page.limit` is set. */
  listContainers(page?: ContainerListRequest): Promise<ContainerRecord[]>;
  /** Containers that exist whose id is `id` or whose name is one of `names` (exact, indexed), by host, name, id. */
  findContainers(id: string, names: readonly string[]): Promise<ContainerRecord[]>;
  /** Containers that exist whose id starts with `prefix` (taken literally, indexed), by host, name, id. */
  containersByIdPrefix(prefix: string): Promise<ContainerRecord[]>;
  /** The containers that exist on one host, by name, id. */
  hostContainers(host: string): Promise<ContainerRecord[]>;
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

  // ---- claims: which conductor drives a migration or an evacuation (several conductors at once) ----
  /**
   * Take the claim of one record for `leaseMs`: succeeds when nobody holds it, its lease has
   * run out, or `owner` holds it already (then the lease is renewed). Atomic: of conductors
   * asking at once, exactly one gets it.
   */
  claim(kind: ClaimKind, id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Extend every lease `owner` holds; returns how many it holds. */
  renewClaims(owner: string, leaseMs: number): Promise<number>;
  /** Let a claim go (the record reached its end); only its owner can. */
  releaseClaim(kind: ClaimKind, id: string, owner: string): Promise<void>;
  /** End the leases of owners whose name starts with `ownerPrefix` ('' for all), except `keep`'s. */
  expireClaims(ownerPrefix: string, keep: string): Promise<number>;
  /** Unfinished migrations (or running evacuations) nobody holds a live claim of, oldest first. */
  claimable(kind: ClaimKind): Promise<string[]>;
  getClaim(kind: ClaimKind, id: string): Promise<Claim | null>;
  /**
   * Let a migration `owner` holds take its slots on `hosts` when none of them runs
   * `maxPerHost` migrations already (counted over every conductor: migrations past `accepted`
   * and admitted ones). Atomic across conductors. Returns whether it was admitted.
   */
  admit(uuid: string, owner: string, hosts: readonly string[], maxPerHost: number): Promise<boolean>;
  /**
   * This repository as seen by the holder of one claim: its writes to that record (status,
   * steps, the container's new host; an evacuation's record and entries) happen only while
   * `owner` still holds the claim, else they throw ClaimLost and change nothing.
   */
  fenced(kind: ClaimKind, id: string, owner: string): Repository;
}

export type ClaimKind = 'migration' | 'evacuation';

export interface MigrationState {
  status: MigrationStatus;
  abort_requested: boolean;
}

export interface Claim {
  kind: ClaimKind;
  id: string;
  owner: string;
  /** ms since the epoch (the claimants' clocks: keep them in step, as for service_down_time). */
  expires_at: number;
  admitted: boolean;
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
  facts: string | null;
  container_count: unknown;
  updated_at: string;
  status: HostStatus;
  disabled_reason: string | null;
}

const HOST_COLUMNS = 'name, facts, container_count, updated_at, status, disabled_reason';
const CONTAINER_COLUMNS = 'id, name, host, image, status, project_id, updated_at';
const EVACUATION_CONTAINER_COLUMNS = 'container_id, container_name, container_status, status, migration_uuid, dest_host, reason, updated_at';
/** Statuses of a migration that may still change, as a list an index on status can look up (NOT IN of the final ones reads every migration ever recorded). */
const UNFINISHED_SQL = `(${MIGRATION_STATUSES.filter((s) => !FINAL_STATUSES.includes(s))
  .map((s) => `'${s}'`)
  .join(', ')})`;
/** Rows per multi-row statement (inventories, deletes, IN lists): well under either engine's placeholder limit. */
const CHUNK = 200;

function chunks<T>(xs: readonly T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

function marks(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** A LIKE pattern matching what starts with `prefix`, its wildcards taken literally ('!' escapes the same in both dialects). */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[%_!]/g, (ch) => `!${ch}`)}%`;
}

/**
 * The least string greater than every string that starts with `prefix` (its last code point
 * plus one), or null when there is none: with `prefix` as the lower bound, a range an index
 * can be searched by in both engines (SQLite's LIKE uses no index on a case-sensitive column).
 */
function prefixEnd(prefix: string): string | null {
  const cps = Array.from(prefix);
  while (cps.length) {
    let next = (cps.pop() as string).codePointAt(0) as number;
    next += 1;
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
    if (next <= 0x10ffff) return cps.join('') + String.fromCodePoint(next);
  }
  return null;
}

/** The host's facts: its report without the container list. */
export function factsOf(report: HostState): HostFacts {
  const { containers: _containers, ...facts } = report;
  return facts;
}

function hostRecord(r: HostRow): HostRecord {
  return {
    name: r.name,
    facts: (r.facts === null ? {} : JSON.parse(r.facts)) as HostFacts,
    containers: Number(r.container_count),
    updated_at: r.updated_at,
    status: r.status,
    disabled_reason: r.disabled_reason,
  };
}

/** Integers as numbers (MySQL hands BIGINT columns over as numbers or strings). */
function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function rowToEvacuation(row: Record<string, unknown>, containers: EvacuationContainer[]): Evacuation {
  const e = { ...row, max_parallel: Number(row.max_parallel), post_copy: Boolean(Number(row.post_copy)), host_disabled: Boolean(Number(row.host_disabled)) } as Record<string, unknown>;
  delete e.seq;
  return { ...(e as unknown as EvacuationRecord), containers, counts: countByStatus(containers) };
}

const BOOL_FIELDS = new Set(['connections_preserved', 'abort_requested']);
/** Columns that are not integers; every other non-null column of a migration is one. */
const STRING_FIELDS = new Set([
  'uuid', 'mode', 'container_id', 'container_name', 'source_host', 'dest_host', 'status', 'phase', 'error', 'request_id', 'user_id', 'project_id',
  'created_at', 'updated_at',
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

function toDb(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

interface Fence {
  kind: ClaimKind;
  id: string;
  owner: string;
}

/** The repository over any SQL driver (SQLite, MariaDB/MySQL). */
export class SqlRepository implements Repository {
  constructor(
    protected readonly driver: SqlDriver,
    /** Set on a fenced view (fenced()): writes to this record need the claim. */
    private readonly fence?: Fence,
  ) {}

  private get d() {
    return this.driver.dialect;
  }

  /** The condition that `fence` still holds its claim (to AND into a write's WHERE), and its parameters. */
  private fenceOf(kind: ClaimKind, id: string): { sql: string; args: unknown[] } {
    const f = this.fence;
    if (!f || f.kind !== kind || f.id !== id) return { sql: '', args: [] };
    return { sql: ' AND EXISTS (SELECT 1 FROM claims WHERE kind = ? AND id = ? AND owner = ?)', args: [f.kind, f.id, f.owner] };
  }

  private async checkFence(x: SqlExecutor, kind: ClaimKind, id: string): Promise<void> {
    const f = this.fenceOf(kind, id);
    if (!f.sql) return;
    const held = await x.query(`SELECT owner FROM claims WHERE kind = ? AND id = ? AND owner = ?${this.d.forUpdate}`, f.args);
    if (held.length === 0) throw this.lost(kind, id);
  }

  private lost(kind: ClaimKind, id: string): Error {
    return new ClaimLost(`this conductor (${this.fence?.owner}) no longer holds the claim of ${kind} ${id}: another conductor took it over`, { kind, id });
  }

  async createMigration(m: Migration): Promise<void> {
    const cols = Object.keys(m);
    await this.driver.exec(
      `INSERT INTO migrations (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
      cols.map((c) => toDb((m as unknown as Record<string, unknown>)[c])),
    );
  }

  async updateMigration(uuid: string, patch: Partial<Migration>): Promise<Migration> {
    const fields = { ...patch, updated_at: patch.updated_at ?? new Date().toISOString() } as Record<string, unknown>;
    delete fields.uuid;
    // A field given as undefined is not given (a partial patch), never a NULL.
    const cols = Object.keys(fields).filter((c) => fields[c] !== undefined);
    const f = this.fenceOf('migration', uuid);
    const r = await this.driver.exec(`UPDATE migrations SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE uuid = ?${f.sql}`, [
      ...cols.map((c) => toDb(fields[c])),
      uuid,
      ...f.args,
    ]);
    const m = await this.getMigration(uuid);
    if (!m) throw new Error(`migration ${uuid} vanished from the database`);
    if (r.changes === 0 && f.sql) throw this.lost('migration', uuid);
    return m;
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

  async saveHostReport(name: string, report: HostState, at: string, takenAt: string = at): Promise<void> {
    await this.driver.transaction(async (tx) => {
      // Written first: the host's row is locked before its containers (the order every writer of them keeps).
      // The agent's versions ride on its host's row, in the same statement: an agent that sends
      // none (an older release, or one downgraded to it) leaves them null, so nobody takes it for a current one.
      const cols = ['name', 'report', 'facts', 'service_version', 'rpc_version', 'updated_at', 'created_at'];
      await tx.exec(this.d.upsert('compute_hosts', cols, ['name'], ['report', 'facts', 'service_version', 'rpc_version', 'updated_at']), [
        name,
        JSON.stringify(report),
        JSON.stringify(factsOf(report)),
        typeof report.service_version === 'number' ? report.service_version : null,
        typeof report.service_version === 'number' ? (report.rpc_version ?? null) : null,
        at,
        at,
      ]);
      await this.writeInventory(tx, name, report.containers, takenAt);
    });
  }

  async saveInventory(host: string, containers: ContainerSummary[], takenAt: string): Promise<void> {
    await this.driver.transaction(async (tx) => {
      await this.lockHosts(tx, [host]);
      await this.writeInventory(tx, host, containers, takenAt);
    });
  }

  /**
   * Lock hosts' rows before changing their containers, so that each host's container_count is
   * recounted by one writer at a time, after the previous one committed (MariaDB reads committed
   * data statement by statement). SQLite has one writer already.
   */
  private async lockHosts(tx: SqlExecutor, hosts: Iterable<string>): Promise<void> {
    if (!this.d.forUpdate) return;
    const names = [...new Set(hosts)].sort();
    if (names.length) await tx.query(`SELECT name FROM compute_hosts WHERE name IN (${marks(names.length)}) ORDER BY name${this.d.forUpdate}`, names);
  }

  /** Set the hosts' container_count from their containers (within the transaction that changed them). */
  private async recount(tx: SqlExecutor, hosts: Iterable<string>): Promise<void> {
    const names = [...new Set(hosts)];
    if (!names.length) return;
    await tx.exec(
      `UPDATE compute_hosts SET container_count = (SELECT COUNT(*) FROM containers c WHERE c.host = compute_hosts.name AND c.status != ?) WHERE name IN (${marks(names.length)})`,
      [REMOVED, ...names],
    );
  }

  private async writeInventory(tx: SqlExecutor, host: string, containers: ContainerSummary[], takenAt: string): Promise<void> {
    // Whatever the host knew of before the inventory was taken and did not list is gone;
    // what changed after it (a newer event) stays as that event left it.
    const listed = new Set(containers.map((c) => c.id));
    const known = await tx.query<{ id: string; updated_at: string }>(`SELECT id, updated_at FROM containers WHERE host = ?${this.d.forUpdate}`, [host]);
    const gone = known.filter((k) => !listed.has(k.id) && k.updated_at <= takenAt).map((k) => k.id);
    for (const part of chunks(gone)) await tx.exec(`DELETE FROM containers WHERE id IN (${marks(part.length)})`, part);
    // A listed container recorded on another host (it moved with its id) leaves that host's count too.
    const knownIds = new Set(known.map((k) => k.id));
    const others: string[] = [];
    for (const part of chunks([...listed].filter((id) => !knownIds.has(id)))) {
      const rows = await tx.query<{ host: string }>(`SELECT DISTINCT host FROM containers WHERE id IN (${marks(part.length)}) AND host != ?`, [...part, host]);
      others.push(...rows.map((r) => r.host));
    }
    await this.lockHosts(tx, others);
    const cols = ['id', 'name', 'host', 'image', 'status', 'project_id', 'updated_at'];
    for (const part of chunks(containers)) {
      await tx.exec(
        this.d.upsert('containers', cols, ['id'], ['name', 'host', 'image', 'status', 'project_id', 'updated_at'], 'updated_at', part.length),
        part.flatMap((c) => [c.id, c.name, host, c.image, c.status, projectOf(c.project_id), takenAt]),
      );
    }
    await this.recount(tx, [host, ...others]);
  }

  async applyContainerChange(host: string, change: ContainerChange): Promise<boolean> {
    return this.driver.transaction(async (tx) => {
      await this.lockHosts(tx, [host]);
      const cur = (await tx.query<ContainerRecord>(`SELECT ${CONTAINER_COLUMNS} FROM containers WHERE id = ?${this.d.forUpdate}`, [change.id]))[0];
      // Events of one host arrive in order; a record newer than the event came from a later inventory.
      if (cur && cur.updated_at > change.at) return false;
      if (cur && cur.host !== host) await this.lockHosts(tx, [cur.host]);
      const name = (change.name ?? cur?.name ?? change.id.slice(0, 12)).replace(/^\//, '');
      const cols = ['id', 'name', 'host', 'image', 'status', 'project_id', 'updated_at'];
      await tx.exec(this.d.upsert('containers', cols, ['id'], cols.slice(1)), [
        change.id,
        name,
        host,
        change.image ?? cur?.image ?? '',
        change.status ?? cur?.status ?? 'unknown',
        projectOf(change.project_id) ?? cur?.project_id ?? null,
        change.at,
      ]);
      await this.recount(tx, cur ? [host, cur.host] : [host]);
      return true;
    });
  }

  async listHostRecords(): Promise<HostRecord[]> {
    return (await this.driver.query<HostRow>(`SELECT ${HOST_COLUMNS} FROM compute_hosts ORDER BY name`)).map(hostRecord);
  }

  async saveService(rec: Omit<ServiceRecord, 'updated_at'>, at: string): Promise<void> {
    const cols = ['binary_name', 'host', 'topic', 'service_version', 'rpc_version', 'created_at', 'updated_at'];
    await this.driver.exec(this.d.upsert('services', cols, ['binary_name', 'host'], ['topic', 'service_version', 'rpc_version', 'updated_at']), [
      rec.binary,
      rec.host,
      rec.topic,
      rec.service_version,
      rec.rpc_version,
      at,
      at,
    ]);
  }

  async listServices(): Promise<ServiceRecord[]> {
    // The compute agents' records are their hosts' rows (those whose heartbeat said a version).
    const rows = await this.driver.query<{ binary_name: string; host: string; topic: string; service_version: number | bigint; rpc_version: string | null; updated_at: string }>(
      `SELECT binary_name, host, topic, service_version, rpc_version, updated_at FROM services
       UNION ALL SELECT ?, name, ?, service_version, rpc_version, updated_at FROM compute_hosts WHERE service_version IS NOT NULL
       ORDER BY binary_name, host`,
      [COMPUTE_BINARY, COMPUTE_BINARY],
    );
    return rows.map((r) => ({
      binary: r.binary_name,
      host: r.host,
      topic: r.topic,
      service_version: Number(r.service_version),
      rpc_version: r.rpc_version,
      updated_at: r.updated_at,
    }));
  }

  async getHostRecord(name: string): Promise<HostRecord | null> {
    const rows = await this.driver.query<HostRow>(`SELECT ${HOST_COLUMNS} FROM compute_hosts WHERE name = ?`, [name]);
    return rows.length ? hostRecord(rows[0]) : null;
  }

  async findContainers(id: string, names: readonly string[]): Promise<ContainerRecord[]> {
    // Two indexed lookups (id, name) in one statement; UNION keeps a container matched by both once.
    const byName = names.length ? ` UNION SELECT ${CONTAINER_COLUMNS} FROM containers WHERE name IN (${marks(names.length)}) AND status != ?` : '';
    return this.driver.query<ContainerRecord>(
      `SELECT ${CONTAINER_COLUMNS} FROM containers WHERE id = ? AND status != ?${byName} ORDER BY host, name, id`,
      [id, REMOVED, ...(names.length ? [...names, REMOVED] : [])],
    );
  }

  async containersByIdPrefix(prefix: string): Promise<ContainerRecord[]> {
    const end = prefixEnd(prefix);
    return this.driver.query<ContainerRecord>(
      `SELECT ${CONTAINER_COLUMNS} FROM containers WHERE id >= ?${end === null ? '' : ' AND id < ?'} AND id LIKE ? ESCAPE '!' AND status != ? ORDER BY host, name, id`,
      [prefix, ...(end === null ? [] : [end]), likePrefix(prefix), REMOVED],
    );
  }

  async hostContainers(host: string): Promise<ContainerRecord[]> {
    return this.driver.query<ContainerRecord>(`SELECT ${CONTAINER_COLUMNS} FROM containers WHERE host = ? AND status != ? ORDER BY name, id`, [host, REMOVED]);
  }

  async listContainers(page: ContainerListRequest = {}): Promise<ContainerRecord[]> {
    const where = ['status != ?'];
    const args: unknown[] = [REMOVED];
    // Given is given: an empty project matches nothing.
    const scope = page.project_id !== undefined ? ' AND project_id = ?' : '';
    const scopeArgs = page.project_id !== undefined ? [page.project_id] : [];
    if (page.marker !== undefined) {
      // A removed container still marks its place in the order for a while. Looked up within the project, so a marker cannot reveal another project's container.
      const mk = (await this.driver.query<{ host: string; name: string; id: string }>(`SELECT host, name, id FROM containers WHERE id = ?${scope}`, [page.marker, ...scopeArgs]))[0];
      if (!mk) throw new InvalidInput(`marker "${page.marker}" could not be found`, { marker: page.marker });
      where.push('(host > ? OR (host = ? AND (name > ? OR (name = ? AND id > ?))))');
      args.push(mk.host, mk.host, mk.name, mk.name, mk.id);
    }
    if (scope) {
      where.push('project_id = ?');
      args.push(...scopeArgs);
    }
    let sql = `SELECT ${CONTAINER_COLUMNS} FROM containers WHERE ${where.join(' AND ')} ORDER BY host, name, id`;
    if (page.limit !== undefined) {
      sql += ' LIMIT ?';
      args.push(page.limit);
    }
    return this.driver.query<ContainerRecord>(sql, args);
  }

  async containerCounts(): Promise<Map<string, number>> {
    const rows = await this.driver.query<{ host: string; n: unknown }>('SELECT host, COUNT(*) AS n FROM containers WHERE status != ? GROUP BY host', [REMOVED]);
    return new Map(rows.map((r) => [r.host, Number(r.n)]));
  }

  async setContainerHost(id: string, host: string, newId?: string): Promise<void> {
    const fenceId = this.fence?.kind === 'migration' ? this.fence.id : null;
    await this.driver.transaction(async (tx) => {
      if (fenceId) await this.checkFence(tx, 'migration', fenceId);
      // Every host whose count this changes: the target, and where either record is now.
      const ids = newId && newId !== id ? [id, newId] : [id];
      const where = await tx.query<{ host: string }>(`SELECT host FROM containers WHERE id IN (${marks(ids.length)})`, ids);
      const hosts = [host, ...where.map((r) => r.host)];
      await this.lockHosts(tx, hosts);
      await this.moveContainer(tx, id, host, newId);
      await this.recount(tx, hosts);
    });
  }

  private async moveContainer(tx: SqlExecutor, id: string, host: string, newId?: string): Promise<void> {
    if (newId && newId !== id) {
      // The target's events or inventory may already have reported the new container: that record is the newer truth.
      const known = await tx.query(`SELECT id FROM containers WHERE id = ? AND status != ?${this.d.forUpdate}`, [newId, REMOVED]);
      if (known.length) {
        await tx.exec('DELETE FROM containers WHERE id = ?', [id]);
        return;
      }
      await tx.exec('DELETE FROM containers WHERE id = ?', [newId]);
    }
    await tx.exec('UPDATE containers SET host = ?, id = ?, status = ? WHERE id = ?', [host, newId ?? id, 'running', id]);
  }

  async setHostStatus(name: string, status: HostStatus, reason: string | null): Promise<HostRecord | null> {
    await this.driver.exec('UPDATE compute_hosts SET status = ?, disabled_reason = ? WHERE name = ?', [status, reason, name]);
    return await this.getHostRecord(name);
  }

  async createEvacuation(e: EvacuationRecord): Promise<void> {
    await this.driver.transaction(async (tx) => {
      await tx.exec(
        `INSERT INTO evacuations (uuid, host, target_host, max_parallel, post_copy, status, host_disabled, error, request_id, user_id, project_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          e.uuid, e.host, e.target_host, e.max_parallel, toDb(e.post_copy), e.status, toDb(e.host_disabled), e.error, e.request_id, e.user_id, e.project_id,
          e.created_at, e.updated_at,
        ],
      );
      for (const [i, c] of e.containers.entries()) {
        await tx.exec(
          `INSERT INTO evacuation_containers (evacuation_uuid, position, ${EVACUATION_CONTAINER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [e.uuid, i, c.container_id, c.container_name, c.container_status, c.status, c.migration_uuid, c.dest_host, c.reason, c.updated_at],
        );
      }
    });
  }

  private evacuationContainers(uuid: string): Promise<EvacuationContainer[]> {
    return this.driver.query<EvacuationContainer>(`SELECT ${EVACUATION_CONTAINER_COLUMNS} FROM evacuation_containers WHERE evacuation_uuid = ? ORDER BY position`, [uuid]);
  }

  private async withContainers(rows: Record<string, unknown>[]): Promise<Evacuation[]> {
    return Promise.all(rows.map(async (r) => rowToEvacuation(r, await this.evacuationContainers(r.uuid as string))));
  }

  async getEvacuation(uuid: string): Promise<Evacuation | null> {
    const rows = await this.driver.query('SELECT * FROM evacuations WHERE uuid = ?', [uuid]);
    return rows.length ? (await this.withContainers(rows))[0] : null;
  }

  async listEvacuations(filters: { host?: string; limit?: number } = {}): Promise<Evacuation[]> {
    const args: unknown[] = [];
    const where = filters.host !== undefined ? 'WHERE host = ?' : '';
    if (filters.host !== undefined) args.push(filters.host);
    const limit = filters.limit !== undefined ? 'LIMIT ?' : '';
    if (filters.limit !== undefined) args.push(filters.limit);
    const rows = await this.driver.query(`SELECT * FROM evacuations ${where} ORDER BY created_at DESC, ${this.d.seq} DESC ${limit}`, args);
    return this.withContainers(rows);
  }

  async updateEvacuation(uuid: string, patch: EvacuationPatch): Promise<Evacuation> {
    const fields = { ...patch, updated_at: patch.updated_at ?? new Date().toISOString() } as Record<string, unknown>;
    const cols = Object.keys(fields);
    const f = this.fenceOf('evacuation', uuid);
    const r = await this.driver.exec(`UPDATE evacuations SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE uuid = ?${f.sql}`, [
      ...cols.map((c) => toDb(fields[c])),
      uuid,
      ...f.args,
    ]);
    const e = await this.getEvacuation(uuid);
    if (!e) throw new Error(`evacuation ${uuid} vanished from the database`);
    if (r.changes === 0 && f.sql) throw this.lost('evacuation', uuid);
    return e;
  }

  async updateEvacuationContainer(uuid: string, containerId: string, patch: EvacuationContainerPatch): Promise<void> {
    const fields = { ...patch, updated_at: new Date().toISOString() } as Record<string, unknown>;
    const cols = Object.keys(fields);
    const f = this.fenceOf('evacuation', uuid);
    const r = await this.driver.exec(
      `UPDATE evacuation_containers SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE evacuation_uuid = ? AND container_id = ?${f.sql}`,
      [...cols.map((c) => fields[c]), uuid, containerId, ...f.args],
    );
    if (r.changes === 0 && f.sql) await this.checkFence(this.driver, 'evacuation', uuid);
  }

  async unfinishedEvacuations(): Promise<Evacuation[]> {
    return this.withContainers(await this.driver.query(`SELECT * FROM evacuations WHERE status = 'running' ORDER BY created_at, ${this.d.seq}`));
  }

  // ---- claims ----
  async claim(kind: ClaimKind, id: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    const ins = await this.driver.exec(`${this.d.insertIgnore} INTO claims (kind, id, owner, expires_at, admitted) VALUES (?, ?, ?, ?, 0)`, [kind, id, owner, now + leaseMs]);
    if (ins.changes === 1) return true;
    const upd = await this.driver.exec('UPDATE claims SET owner = ?, expires_at = ? WHERE kind = ? AND id = ? AND (owner = ? OR expires_at < ?)', [
      owner,
      now + leaseMs,
      kind,
      id,
      owner,
      now,
    ]);
    return upd.changes === 1;
  }

  async renewClaims(owner: string, leaseMs: number): Promise<number> {
    return (await this.driver.exec("UPDATE claims SET expires_at = ? WHERE owner = ? AND kind != 'lock'", [Date.now() + leaseMs, owner])).changes;
  }

  async releaseClaim(kind: ClaimKind, id: string, owner: string): Promise<void> {
    await this.driver.exec('DELETE FROM claims WHERE kind = ? AND id = ? AND owner = ?', [kind, id, owner]);
  }

  async expireClaims(ownerPrefix: string, keep: string): Promise<number> {
    return (await this.driver.exec("UPDATE claims SET expires_at = 0 WHERE kind != 'lock' AND owner LIKE ? ESCAPE '!' AND owner != ?", [likePrefix(ownerPrefix), keep])).changes;
  }

  async claimable(kind: ClaimKind): Promise<string[]> {
    const [table, key, unfinished] =
      kind === 'migration' ? ['migrations', 'uuid', `r.status IN ${UNFINISHED_SQL}`] : ['evacuations', 'uuid', "r.status = 'running'"];
    const rows = await this.driver.query<{ id: string }>(
      `SELECT r.${key} AS id FROM ${table} r LEFT JOIN claims c ON c.kind = ? AND c.id = r.${key}
       WHERE ${unfinished} AND (c.id IS NULL OR c.expires_at < ?) ORDER BY r.created_at, r.${this.d.seq}`,
      [kind, Date.now()],
    );
    return rows.map((r) => r.id);
  }

  async getClaim(kind: ClaimKind, id: string): Promise<Claim | null> {
    const rows = await this.driver.query<Record<string, unknown>>('SELECT kind, id, owner, expires_at, admitted FROM claims WHERE kind = ? AND id = ?', [kind, id]);
    if (!rows.length) return null;
    const r = rows[0];
    return { kind: r.kind as ClaimKind, id: r.id as string, owner: r.owner as string, expires_at: Number(r.expires_at), admitted: Boolean(Number(r.admitted)) };
  }

  async admit(uuid: string, owner: string, hosts: readonly string[], maxPerHost: number): Promise<boolean> {
    if (hosts.length === 0) return false;
    return this.driver.transaction(async (tx) => {
      const mine = await tx.query<{ admitted: unknown }>("SELECT admitted FROM claims WHERE kind = 'migration' AND id = ? AND owner = ?", [uuid, owner]);
      if (mine.length === 0) return false;
      // Admitted before (by this conductor, or by one it took the migration over from): the slots are its already.
      if (Number(mine[0].admitted) === 1) return true;
      // One admission at a time across conductors: the lock row is written first (MySQL row lock; SQLite's transaction is one writer).
      await tx.exec("UPDATE claims SET expires_at = expires_at + 1 WHERE kind = 'lock' AND id = 'admission'");
      const marks = hosts.map(() => '?').join(', ');
      const busy = await tx.query<{ source_host: string; dest_host: string | null }>(
        `SELECT m.source_host, m.dest_host FROM migrations m LEFT JOIN claims c ON c.kind = 'migration' AND c.id = m.uuid
         WHERE m.status IN ${UNFINISHED_SQL} AND m.uuid != ? AND (m.status != 'accepted' OR c.admitted = 1)
           AND (m.source_host IN (${marks}) OR m.dest_host IN (${marks}))`,
        [uuid, ...hosts, ...hosts],
      );
      const count = new Map<string, number>();
      for (const b of busy) for (const h of new Set([b.source_host, b.dest_host])) if (h) count.set(h, (count.get(h) ?? 0) + 1);
      if (hosts.some((h) => (count.get(h) ?? 0) >= maxPerHost)) return false;
      const r = await tx.exec("UPDATE claims SET admitted = 1 WHERE kind = 'migration' AND id = ? AND owner = ?", [uuid, owner]);
      return r.changes === 1;
    });
  }

  fenced(kind: ClaimKind, id: string, owner: string): Repository {
    return new SqlRepository(this.driver, { kind, id, owner });
  }

  /** The driver (for closing it, or for tools that need plain SQL). */
  get sql(): SqlDriver {
    return this.driver;
  }
}

/** The embedded backend over a better-sqlite3 handle (what callers that open the file themselves use). */
export class SqliteRepository extends SqlRepository {
  constructor(db: Db) {
    super(SqliteDriver.for(db));
  }
}
