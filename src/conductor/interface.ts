/**
 * What the conductor offers to its callers (ferry-api, other services). The RPC client
 * in rpcapi.ts implements it over the bus; tests may implement it in memory.
 */
import type { RequestContext } from '../common/context.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ComputeHost, Container, HostStatus } from '../objects/host.js';
import type { Migration, MigrationStatus } from '../objects/migration.js';

/** The keys a migration list may be sorted by (ties are broken by creation order). */
export const MIGRATION_SORT_KEYS = ['created_at', 'updated_at', 'status', 'container_name', 'container_id', 'source_host', 'dest_host', 'uuid'] as const;
export type MigrationSortKey = (typeof MIGRATION_SORT_KEYS)[number];
export const SORT_DIRS = ['asc', 'desc'] as const;
export type SortDir = (typeof SORT_DIRS)[number];

/** One page of a list: at most `limit` items after the item `marker` (exclusive), as in Nova. */
export interface PageRequest {
  limit?: number;
  /** A migration's uuid or a container's id; unknown -> InvalidInput. */
  marker?: string;
}

/** A page of containers, of one project only when `project_id` is given (its label; unlabelled ones are no project's). */
export interface ContainerListRequest extends PageRequest {
  project_id?: string;
}

export interface MigrationFilters extends PageRequest {
  container?: string; // id, id prefix or name
  status?: MigrationStatus;
  source_host?: string;
  dest_host?: string;
  user_id?: string;
  project_id?: string;
  /** ISO 8601 (UTC, toISOString form): only migrations updated at or after it. */
  changes_since?: string;
  /** ISO 8601 (UTC, toISOString form): only migrations updated at or before it. */
  changes_before?: string;
  /** Default created_at, desc (newest first). */
  sort_key?: MigrationSortKey;
  sort_dir?: SortDir;
}

/** A migrate request's options beyond the container and the target. */
export interface MigrateRequestOptions {
  post_copy?: boolean;
  /** Only a container labelled with this project may be named (others are "not found"); absent: any. */
  project_id?: string;
}

export interface ConductorAPI {
  /** Validates and records the request (status `accepted`), then drives it in the background. */
  migrateContainer(ctx: RequestContext, container: string, host?: string | null, opts?: MigrateRequestOptions): Promise<Migration>;
  abortMigration(ctx: RequestContext, migrationId: string): Promise<Migration>;
  /** Nova's force-complete: switch to post-copy (before the freeze). */
  forceCompleteMigration(ctx: RequestContext, migrationId: string): Promise<Migration>;
  getMigration(ctx: RequestContext, migrationId: string): Promise<Migration>;
  /** Paged when `filters.limit` is set (a caller asks limit + 1 to learn whether a next page exists). */
  listMigrations(ctx: RequestContext, filters: MigrationFilters): Promise<Migration[]>;
  listHosts(ctx: RequestContext): Promise<ComputeHost[]>;
  /** Ordered by host, name, id; paged when `page.limit` is set. */
  listContainers(ctx: RequestContext, page?: ContainerListRequest): Promise<Container[]>;

  // ---- host maintenance (RPC 1.2) ----
  /** Enable or disable a host for the scheduler; returns the host as listed. */
  setHostStatus(ctx: RequestContext, host: string, status: HostStatus, disabledReason?: string | null): Promise<ComputeHost>;
  /** Start emptying `host` (its evacuation runs in the background); returns the new record. */
  evacuateHost(ctx: RequestContext, host: string, opts: EvacuateOptions): Promise<Evacuation>;
  getEvacuation(ctx: RequestContext, evacuationId: string): Promise<Evacuation>;
  /** Newest first. */
  listEvacuations(ctx: RequestContext, filters?: EvacuationFilters): Promise<Evacuation[]>;
}

export interface EvacuateOptions {
  target_host?: string | null;
  max_parallel?: number | null;
  post_copy?: boolean | null;
}

export interface EvacuationFilters {
  host?: string;
  limit?: number;
}
