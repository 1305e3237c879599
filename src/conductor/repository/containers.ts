/** The containers aggregate: where each container is, as heartbeats, events, live checks and moves said. */
import { InvalidInput } from '../../common/errors.js';
import type { SqlExecutor } from '../../db/driver.js';
import { projectOf, type ContainerSummary } from '../../objects/host.js';
import type { ContainerListRequest } from '../interface.js';
import { chunks, likePrefix, marks, prefixEnd, REMOVED, SqlStore } from './sql.js';

export { REMOVED } from './sql.js';

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

export const CONTAINER_COLUMNS = 'id, name, host, image, status, project_id, updated_at';

export interface ContainerStore {
  /** A full container inventory of one host taken at `takenAt` (a live check); the host's facts are untouched. */
  saveInventory(host: string, containers: ContainerSummary[], takenAt: string): Promise<void>;
  /** One container event; ignored when the record is newer. Returns whether it changed the record. */
  applyContainerChange(host: string, change: ContainerChange): Promise<boolean>;
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
}

export class SqlContainers extends SqlStore implements ContainerStore {
  async saveInventory(host: string, containers: ContainerSummary[], takenAt: string): Promise<void> {
    await this.driver.transaction(async (tx) => {
      await this.lockHosts(tx, [host]);
      await this.writeInventory(tx, host, containers, takenAt);
    });
  }

  /** Write one host's full inventory (a heartbeat's or a live check's), within `tx`. */
  async writeInventory(tx: SqlExecutor, host: string, containers: ContainerSummary[], takenAt: string): Promise<void> {
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

  async findContainers(id: string, names: readonly string[]): Promise<ContainerRecord[]> {
    // Two indexed lookups (id, name) in one statement; UNION keeps a container matched by both once.
    const byName = names.length ? ` UNION SELECT ${CONTAINER_COLUMNS} FROM containers WHERE name IN (${marks(names.length)}) AND status != ?` : '';
    return this.driver.query<ContainerRecord>(`SELECT ${CONTAINER_COLUMNS} FROM containers WHERE id = ? AND status != ?${byName} ORDER BY host, name, id`, [
      id,
      REMOVED,
      ...(names.length ? [...names, REMOVED] : []),
    ]);
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
      const mk = (
        await this.driver.query<{ host: string; name: string; id: string }>(`SELECT host, name, id FROM containers WHERE id = ?${scope}`, [
          page.marker,
          ...scopeArgs,
        ])
      )[0];
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
}
