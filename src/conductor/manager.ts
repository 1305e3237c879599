/**
 * Server side of the `ferry-conductor` topic: translates RPC calls into ConductorService
 * calls. Methods are the RPC API; nothing else may be public on this class.
 * 1.0: the first API. 1.1: `container_event` (cast), `report_state(taken_at)`, paging and
 * more filters on `list_migrations` and `list_containers`.
 */
import type { RequestContext } from '../common/context.js';
import { InvalidInput } from '../common/errors.js';
import type { ContainerEvent } from '../compute/events.js';
import type { HostState } from '../objects/host.js';
import { MIGRATION_STATUSES, type MigrationStatus } from '../objects/migration.js';
import { MIGRATION_SORT_KEYS, SORT_DIRS, type MigrationFilters, type MigrationSortKey, type PageRequest, type SortDir } from './interface.js';
import type { ConductorService } from './service.js';

export const CONDUCTOR_TOPIC = 'ferry-conductor';
export const CONDUCTOR_RPC_VERSION = '1.1';

/** The longest string argument (container names and refs, host names, ids, filters). */
const MAX_ARG_LENGTH = 255;

function str(args: Record<string, unknown>, key: string, required = true): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) {
    if (required) throw new InvalidInput(`argument "${key}" is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new InvalidInput(`argument "${key}" must be a string`);
  // Names, ids and filters are short; a huge one is a bad caller, not something to look up or echo back.
  if (v.length > MAX_ARG_LENGTH) throw new InvalidInput(`argument "${key}" must be at most ${MAX_ARG_LENGTH} characters`);
  return v;
}

function oneOf<T extends string>(args: Record<string, unknown>, key: string, allowed: readonly T[]): T | undefined {
  const v = str(args, key, false);
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new InvalidInput(`argument "${key}" must be one of ${allowed.join(', ')}`);
  return v as T;
}

function page(args: Record<string, unknown>): PageRequest {
  const out: PageRequest = {};
  const limit = args.limit;
  if (limit !== undefined && limit !== null) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) throw new InvalidInput('argument "limit" must be an integer >= 0');
    out.limit = limit;
  }
  const marker = str(args, 'marker', false);
  if (marker !== undefined) out.marker = marker;
  return out;
}

function isoTime(args: Record<string, unknown>, key: string): string | undefined {
  const v = str(args, key, false);
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidInput(`argument "${key}" must be an ISO 8601 time`);
  return new Date(t).toISOString();
}

export class ConductorManager {
  readonly target = { version: CONDUCTOR_RPC_VERSION };
  readonly #svc: ConductorService;

  constructor(svc: ConductorService) {
    this.#svc = svc;
  }

  migrate_container(ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.migrateOnLiveState(ctx, str(args, 'container') as string, str(args, 'host', false) ?? null);
  }

  abort_migration(ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.abort(ctx, str(args, 'migration_id') as string);
  }

  get_migration(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.getMigration(str(args, 'migration_id') as string);
  }

  list_migrations(_ctx: RequestContext, args: Record<string, unknown>) {
    const filters: MigrationFilters = page(args);
    for (const k of ['container', 'source_host', 'dest_host', 'user_id', 'project_id'] as const) {
      const v = str(args, k, false);
      if (v) filters[k] = v;
    }
    const status = oneOf<MigrationStatus>(args, 'status', MIGRATION_STATUSES);
    if (status) filters.status = status;
    const since = isoTime(args, 'changes_since');
    if (since) filters.changes_since = since;
    const before = isoTime(args, 'changes_before');
    if (before) filters.changes_before = before;
    const sortKey = oneOf<MigrationSortKey>(args, 'sort_key', MIGRATION_SORT_KEYS);
    if (sortKey) filters.sort_key = sortKey;
    const sortDir = oneOf<SortDir>(args, 'sort_dir', SORT_DIRS);
    if (sortDir) filters.sort_dir = sortDir;
    return this.#svc.listMigrations(filters);
  }

  list_hosts() {
    return this.#svc.listHosts();
  }

  list_containers(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.listContainers(page(args ?? {}));
  }

  report_state(_ctx: RequestContext, args: Record<string, unknown>) {
    this.#svc.reportState(str(args, 'host') as string, args.state as HostState, str(args, 'taken_at', false) ?? null);
    return null;
  }

  /** A cast from a compute host: one container changed (created, started, died, removed, renamed...). */
  container_event(_ctx: RequestContext, args: Record<string, unknown>) {
    this.#svc.containerEvent(str(args, 'host') as string, args.event as ContainerEvent);
    return null;
  }
}
