/**
 * What the conductor offers to its callers (ferry-api, other services). The RPC client
 * in rpcapi.ts implements it over the bus; tests may implement it in memory.
 */
import type { RequestContext } from '../bus/context.js';
import type { ComputeHost, Container } from '../objects/host.js';
import type { Migration, MigrationStatus } from '../objects/migration.js';

export interface MigrationFilters {
  container?: string; // id, id prefix or name
  status?: MigrationStatus;
  source_host?: string;
  dest_host?: string;
}

export interface ConductorAPI {
  /** Validates and records the request (status `accepted`), then drives it in the background. */
  migrateContainer(ctx: RequestContext, container: string, host?: string | null): Promise<Migration>;
  abortMigration(ctx: RequestContext, migrationId: string): Promise<Migration>;
  getMigration(ctx: RequestContext, migrationId: string): Promise<Migration>;
  listMigrations(ctx: RequestContext, filters: MigrationFilters): Promise<Migration[]>;
  listHosts(ctx: RequestContext): Promise<ComputeHost[]>;
  listContainers(ctx: RequestContext): Promise<Container[]>;
}
