/** Client side of the `ferry-conductor` topic (what ferry-api and ferry-compute use). */
import type { RequestContext } from '../common/context.js';
import { RPCClient } from '../bus/rpc/client.js';
import type { Transport } from '../bus/transport.js';
import type { ContainerEvent } from '../compute/events.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ComputeHost, Container, HostState, HostStatus } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import type {
  ConductorAPI,
  ContainerListRequest,
  EvacuateOptions,
  EvacuationFilters,
  MigrateRequestOptions,
  MigrationFilters,
  PageRequest,
} from './interface.js';
import { requireSendable } from '../bus/upgrade.js';
import { CONDUCTOR_RPC_VERSION, CONDUCTOR_TOPIC, type ConductorMethod } from './methods.js';

/** The version the first API's calls are sent with (any conductor answers them). */
const V1_0 = '1.0';

function pageArgs(page: PageRequest | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (page?.limit !== undefined) out.limit = page.limit;
  if (page?.marker !== undefined) out.marker = page.marker;
  return out;
}

export class ConductorRPCAPI implements ConductorAPI {
  private readonly client: RPCClient;

  /**
   * `versionCap`: `[upgrade_levels] conductor` when pinned to a version; a call that needs more
   * fails with RPCVersionCapped (before anything is sent). Undefined: no cap beyond this code's version.
   */
  constructor(
    transport: Transport,
    timeoutSeconds = 60,
    private readonly versionCap?: string,
  ) {
    this.client = new RPCClient(transport, { topic: CONDUCTOR_TOPIC, version: V1_0 }, { timeoutSeconds, versionCap: CONDUCTOR_RPC_VERSION });
  }

  /**
   * The client for `method` at `version`, as Nova's rpcapi bumps only the calls that need it:
   * 1.0 for the first API (any conductor answers), 1.1 for what it did not have, 1.2 for host
   * maintenance, 1.3 for post-copy, 1.4 for a project scope.
   */
  private at(version: string, method: ConductorMethod): RPCClient {
    requireSendable(CONDUCTOR_TOPIC, method, version, this.versionCap);
    return version === V1_0 ? this.client : this.client.prepare({ version });
  }

  async migrateContainer(ctx: RequestContext, container: string, host?: string | null, opts: MigrateRequestOptions = {}): Promise<Migration> {
    // A plain request stays 1.0 (any conductor answers it); post-copy needs a 1.3 conductor, a project scope 1.4
    // (an older conductor refuses the version rather than ignore the scope).
    if (opts.project_id !== undefined) {
      return this.at('1.4', 'migrate_container').call<Migration>(ctx, 'migrate_container', {
        container,
        host: host ?? null,
        post_copy: opts.post_copy ?? null,
        project_id: opts.project_id,
      });
    }
    if (opts.post_copy)
      return this.at('1.3', 'migrate_container').call<Migration>(ctx, 'migrate_container', { container, host: host ?? null, post_copy: true });
    return this.at(V1_0, 'migrate_container').call<Migration>(ctx, 'migrate_container', { container, host: host ?? null });
  }
  async forceCompleteMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.at('1.3', 'force_complete_migration').call<Migration>(ctx, 'force_complete_migration', { migration_id: migrationId });
  }
  async abortMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.at(V1_0, 'abort_migration').call<Migration>(ctx, 'abort_migration', { migration_id: migrationId });
  }
  async getMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.at(V1_0, 'get_migration').call<Migration>(ctx, 'get_migration', { migration_id: migrationId });
  }
  async listMigrations(ctx: RequestContext, filters: MigrationFilters): Promise<Migration[]> {
    const args = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
    const old = ['container', 'status', 'source_host', 'dest_host'];
    const client = this.at(Object.keys(args).every((k) => old.includes(k)) ? V1_0 : '1.1', 'list_migrations');
    return client.call<Migration[]>(ctx, 'list_migrations', args);
  }
  async listHosts(ctx: RequestContext): Promise<ComputeHost[]> {
    return this.at(V1_0, 'list_hosts').call<ComputeHost[]>(ctx, 'list_hosts', {});
  }
  async listContainers(ctx: RequestContext, page?: ContainerListRequest): Promise<Container[]> {
    const args = pageArgs(page);
    if (page?.project_id !== undefined)
      return this.at('1.4', 'list_containers').call<Container[]>(ctx, 'list_containers', { ...args, project_id: page.project_id });
    return this.at(Object.keys(args).length ? '1.1' : V1_0, 'list_containers').call<Container[]>(ctx, 'list_containers', args);
  }
  /** The heartbeat: a cast, as in Nova's servicegroup. `takenAt`: when the inventory in it was taken. */
  async reportState(ctx: RequestContext, host: string, state: HostState, takenAt?: string): Promise<void> {
    if (takenAt === undefined) return this.at(V1_0, 'report_state').cast(ctx, 'report_state', { host, state });
    return this.at('1.1', 'report_state').cast(ctx, 'report_state', { host, state, taken_at: takenAt });
  }
  /** One container changed on `host`: a cast, sent as the engine reports it. */
  async containerEvent(ctx: RequestContext, host: string, event: ContainerEvent): Promise<void> {
    return this.at('1.1', 'container_event').cast(ctx, 'container_event', { host, event });
  }

  async setHostStatus(ctx: RequestContext, host: string, status: HostStatus, disabledReason?: string | null): Promise<ComputeHost> {
    return this.at('1.2', 'set_host_status').call<ComputeHost>(ctx, 'set_host_status', { host, status, disabled_reason: disabledReason ?? null });
  }
  async evacuateHost(ctx: RequestContext, host: string, opts: EvacuateOptions): Promise<Evacuation> {
    return this.at('1.2', 'evacuate_host').call<Evacuation>(ctx, 'evacuate_host', {
      host,
      target_host: opts.target_host ?? null,
      max_parallel: opts.max_parallel ?? null,
      post_copy: opts.post_copy ?? null,
    });
  }
  async getEvacuation(ctx: RequestContext, evacuationId: string): Promise<Evacuation> {
    return this.at('1.2', 'get_evacuation').call<Evacuation>(ctx, 'get_evacuation', { evacuation_id: evacuationId });
  }
  async listEvacuations(ctx: RequestContext, filters: EvacuationFilters = {}): Promise<Evacuation[]> {
    const args = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
    return this.at('1.2', 'list_evacuations').call<Evacuation[]>(ctx, 'list_evacuations', args);
  }
}
