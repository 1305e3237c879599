/**
 * Server side of the `ferry-conductor` topic: translates RPC calls into ConductorService
 * calls. Methods are the RPC API (version 1.0); nothing else may be public on this class.
 */
import type { RequestContext } from '../bus/context.js';
import { InvalidInput } from '../common/errors.js';
import type { HostState } from '../objects/host.js';
import type { MigrationStatus } from '../objects/migration.js';
import type { MigrationFilters } from './interface.js';
import type { ConductorService } from './service.js';

export const CONDUCTOR_TOPIC = 'ferry-conductor';
export const CONDUCTOR_RPC_VERSION = '1.0';

function str(args: Record<string, unknown>, key: string, required = true): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) {
    if (required) throw new InvalidInput(`argument "${key}" is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new InvalidInput(`argument "${key}" must be a string`);
  return v;
}

export class ConductorManager {
  readonly target = { version: CONDUCTOR_RPC_VERSION };
  readonly #svc: ConductorService;

  constructor(svc: ConductorService) {
    this.#svc = svc;
  }

  migrate_container(ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.migrate(ctx, str(args, 'container') as string, str(args, 'host', false) ?? null);
  }

  abort_migration(ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.abort(ctx, str(args, 'migration_id') as string);
  }

  get_migration(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#svc.getMigration(str(args, 'migration_id') as string);
  }

  list_migrations(_ctx: RequestContext, args: Record<string, unknown>) {
    const filters: MigrationFilters = {};
    for (const k of ['container', 'source_host', 'dest_host'] as const) {
      const v = str(args, k, false);
      if (v) filters[k] = v;
    }
    const status = str(args, 'status', false);
    if (status) filters.status = status as MigrationStatus;
    return this.#svc.listMigrations(filters);
  }

  list_hosts() {
    return this.#svc.listHosts();
  }

  list_containers() {
    return this.#svc.listContainers();
  }

  report_state(_ctx: RequestContext, args: Record<string, unknown>) {
    this.#svc.reportState(str(args, 'host') as string, args.state as HostState);
    return null;
  }
}
