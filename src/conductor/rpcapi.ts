/** Client side of the `ferry-conductor` topic (what ferry-api and ferry-compute use). */
import type { RequestContext } from '../bus/context.js';
import { RPCClient } from '../bus/rpc/client.js';
import type { Transport } from '../bus/transport.js';
import type { ComputeHost, Container, HostState } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import type { ConductorAPI, MigrationFilters } from './interface.js';
import { CONDUCTOR_RPC_VERSION, CONDUCTOR_TOPIC } from './manager.js';

export class ConductorRPCAPI implements ConductorAPI {
  private readonly client: RPCClient;

  constructor(transport: Transport, timeoutSeconds = 60) {
    this.client = new RPCClient(
      transport,
      { topic: CONDUCTOR_TOPIC, version: CONDUCTOR_RPC_VERSION },
      { timeoutSeconds, versionCap: CONDUCTOR_RPC_VERSION },
    );
  }

  migrateContainer(ctx: RequestContext, container: string, host?: string | null): Promise<Migration> {
    return this.client.call<Migration>(ctx, 'migrate_container', { container, host: host ?? null });
  }
  abortMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.client.call<Migration>(ctx, 'abort_migration', { migration_id: migrationId });
  }
  getMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.client.call<Migration>(ctx, 'get_migration', { migration_id: migrationId });
  }
  listMigrations(ctx: RequestContext, filters: MigrationFilters): Promise<Migration[]> {
    return this.client.call<Migration[]>(ctx, 'list_migrations', { ...filters });
  }
  listHosts(ctx: RequestContext): Promise<ComputeHost[]> {
    return this.client.call<ComputeHost[]>(ctx, 'list_hosts', {});
  }
  listContainers(ctx: RequestContext): Promise<Container[]> {
    return this.client.call<Container[]>(ctx, 'list_containers', {});
  }
  /** The heartbeat: a cast, as in Nova's servicegroup. */
  reportState(ctx: RequestContext, host: string, state: HostState): Promise<void> {
    return this.client.cast(ctx, 'report_state', { host, state });
  }
}
