/** The evacuations aggregate: each evacuation and its containers' entries, in their order. */
import { countByStatus, type Evacuation, type EvacuationContainer } from '../../objects/evacuation.js';
import { SqlStore, toDb } from './sql.js';

/** An evacuation as stored: the record without its derived counts. */
export type EvacuationRecord = Omit<Evacuation, 'counts'>;
export type EvacuationPatch = Partial<Pick<Evacuation, 'status' | 'error' | 'host_disabled' | 'updated_at'>>;
export type EvacuationContainerPatch = Partial<Pick<EvacuationContainer, 'status' | 'migration_uuid' | 'dest_host' | 'reason'>>;

const EVACUATION_CONTAINER_COLUMNS = 'container_id, container_name, container_status, status, migration_uuid, dest_host, reason, updated_at';

function rowToEvacuation(row: Record<string, unknown>, containers: EvacuationContainer[]): Evacuation {
  const e = {
    ...row,
    max_parallel: Number(row.max_parallel),
    post_copy: Boolean(Number(row.post_copy)),
    host_disabled: Boolean(Number(row.host_disabled)),
  } as Record<string, unknown>;
  delete e.seq;
  return { ...(e as unknown as EvacuationRecord), containers, counts: countByStatus(containers) };
}

export interface EvacuationStore {
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

export class SqlEvacuations extends SqlStore implements EvacuationStore {
  async createEvacuation(e: EvacuationRecord): Promise<void> {
    await this.driver.transaction(async (tx) => {
      await tx.exec(
        `INSERT INTO evacuations (uuid, host, target_host, max_parallel, post_copy, status, host_disabled, error, request_id, user_id, project_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          e.uuid,
          e.host,
          e.target_host,
          e.max_parallel,
          toDb(e.post_copy),
          e.status,
          toDb(e.host_disabled),
          e.error,
          e.request_id,
          e.user_id,
          e.project_id,
          e.created_at,
          e.updated_at,
        ],
      );
      for (const [i, c] of e.containers.entries()) {
        await tx.exec(`INSERT INTO evacuation_containers (evacuation_uuid, position, ${EVACUATION_CONTAINER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          e.uuid,
          i,
          c.container_id,
          c.container_name,
          c.container_status,
          c.status,
          c.migration_uuid,
          c.dest_host,
          c.reason,
          c.updated_at,
        ]);
      }
    });
  }

  private evacuationContainers(uuid: string): Promise<EvacuationContainer[]> {
    return this.driver.query<EvacuationContainer>(
      `SELECT ${EVACUATION_CONTAINER_COLUMNS} FROM evacuation_containers WHERE evacuation_uuid = ? ORDER BY position`,
      [uuid],
    );
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
}
