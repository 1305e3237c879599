/** The hosts aggregate: each compute host's last report, its facts and its enabled/disabled status. */
import type { SqlDriver } from '../../db/driver.js';
import type { HostFacts, HostState, HostStatus } from '../../objects/host.js';
import type { SqlContainers } from './containers.js';
import { SqlStore, type Fence } from './sql.js';

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

interface HostRow {
  name: string;
  facts: string | null;
  container_count: unknown;
  updated_at: string;
  status: HostStatus;
  disabled_reason: string | null;
}

const HOST_COLUMNS = 'name, facts, container_count, updated_at, status, disabled_reason';

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

export interface HostStore {
  /**
   * A heartbeat: the host's facts and its full container inventory, taken at `takenAt`
   * (default `at`). Containers a newer event already changed keep that change.
   */
  saveHostReport(name: string, report: HostState, at: string, takenAt?: string): Promise<void>;
  listHostRecords(): Promise<HostRecord[]>;
  getHostRecord(name: string): Promise<HostRecord | null>;
  /** Enable or disable a known host; null when no host of that name ever reported. */
  setHostStatus(name: string, status: HostStatus, reason: string | null): Promise<HostRecord | null>;
}

export class SqlHosts extends SqlStore implements HostStore {
  constructor(
    driver: SqlDriver,
    fence: Fence | undefined,
    /** A heartbeat's inventory is written with its host's row, in one transaction. */
    private readonly containers: SqlContainers,
  ) {
    super(driver, fence);
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
      await this.containers.writeInventory(tx, name, report.containers, takenAt);
    });
  }

  async listHostRecords(): Promise<HostRecord[]> {
    return (await this.driver.query<HostRow>(`SELECT ${HOST_COLUMNS} FROM compute_hosts ORDER BY name`)).map(hostRecord);
  }

  async getHostRecord(name: string): Promise<HostRecord | null> {
    const rows = await this.driver.query<HostRow>(`SELECT ${HOST_COLUMNS} FROM compute_hosts WHERE name = ?`, [name]);
    return rows.length ? hostRecord(rows[0]) : null;
  }

  async setHostStatus(name: string, status: HostStatus, reason: string | null): Promise<HostRecord | null> {
    await this.driver.exec('UPDATE compute_hosts SET status = ?, disabled_reason = ? WHERE name = ?', [status, reason, name]);
    return await this.getHostRecord(name);
  }
}
