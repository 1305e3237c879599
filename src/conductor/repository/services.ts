/** The services aggregate: which versions each running service speaks (Nova's services table). */
import { SqlStore } from './sql.js';

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

/** The compute agent's program name and RPC topic, as its service record names it. */
const COMPUTE_BINARY = 'ferry-compute';

export interface ServiceStore {
  /** Record (or refresh) a running service's versions (a conductor's; an agent's come with its heartbeat); `at` becomes its updated_at. */
  saveService(rec: Omit<ServiceRecord, 'updated_at'>, at: string): Promise<void>;
  /** Every service record: the services' own and the compute agents' from their last heartbeats; by binary then host. */
  listServices(): Promise<ServiceRecord[]>;
}

export class SqlServices extends SqlStore implements ServiceStore {
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
    const rows = await this.driver.query<{
      binary_name: string;
      host: string;
      topic: string;
      service_version: number | bigint;
      rpc_version: string | null;
      updated_at: string;
    }>(
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
}
