/** Client side of the `ferry-conductor` topic (what ferry-api and ferry-compute use). */
import type { RequestContext } from '../common/context.js';
import { RPCClient } from '../bus/rpc/client.js';
import type { Transport } from '../bus/transport.js';
import type { ContainerEvent } from '../compute/events.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ComputeHost, Container, HostState, HostStatus } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import type { ConductorAPI, ContainerListRequest, EvacuateOptions, EvacuationFilters, MigrateRequestOptions, MigrationFilters, PageRequest } from './interface.js';
import { CONDUCTOR_RPC_VERSION, CONDUCTOR_TOPIC } from './methods.js';

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

  constructor(transport: Transport, timeoutSeconds = 60) {
    this.client = new RPCClient(
      transport,
      { topic: CONDUCTOR_TOPIC, version: V1_0 },
      { timeoutSeconds, versionCap: CONDUCTOR_RPC_VERSION },
    );
  }

  /** 1.1 for what the first API did not have, as Nova's rpcapi bumps only the calls that need it. */
  private v1_1(): RPCClient {
    return this.client.prepare({ version: '1.1' });
  }

  /** 1.2 for host maintenance, which 1.1 conductors do not have; every other call keeps its version. */
  private v1_2(): RPCClient {
    return this.client.prepare({ version: '1.2' });
  }

  /** 1.3 for post-copy (migrate with post_copy, force complete). */
  private v1_3(): RPCClient {
    return this.client.prepare({ version: '1.3' });
  }

  migrateContainer(ctx: RequestContext, container: string, host?: string | null, opts: MigrateRequestOptions = {}): Promise<Migration> {
    // A plain request stays 1.0 (any conductor answers it); post-copy needs a 1.3 conductor, a project scope 1.4
    // (an older conductor refuses the version rather than ignore the scope).
    if (opts.project_id !== undefined) {
      return this.client
        .prepare({ version: '1.4' })
        .call<Migration>(ctx, 'migrate_container', { container, host: host ?? null, post_copy: opts.post_copy ?? null, project_id: opts.project_id });
    }
    if (opts.post_copy) return this.v1_3().call<Migration>(ctx, 'migrate_container', { container, host: host ?? null, post_copy: true });
    return this.client.call<Migration>(ctx, 'migrate_container', { container, host: host ?? null });
  }
  forceCompleteMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.v1_3().call<Migration>(ctx, 'force_complete_migration', { migration_id: migrationId });
  }
  abortMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.client.call<Migration>(ctx, 'abort_migration', { migration_id: migrationId });
  }
  getMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    return this.client.call<Migration>(ctx, 'get_migration', { migration_id: migrationId });
  }
  listMigrations(ctx: RequestContext, filters: MigrationFilters): Promise<Migration[]> {
    const args = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
    const old = ['container', 'status', 'source_host', 'dest_host'];
    const client = Object.keys(args).every((k) => old.includes(k)) ? this.client : this.v1_1();
    return client.call<Migration[]>(ctx, 'list_migrations', args);
  }
  listHosts(ctx: RequestContext): Promise<ComputeHost[]> {
    return this.client.call<ComputeHost[]>(ctx, 'list_hosts', {});
  }
  listContainers(ctx: RequestContext, page?: ContainerListRequest): Promise<Container[]> {
    const args = pageArgs(page);
    if (page?.project_id !== undefined) return this.client.prepare({ version: '1.4' }).call<Container[]>(ctx, 'list_containers', { ...args, project_id: page.project_id });
    return (Object.keys(args).length ? this.v1_1() : this.client).call<Container[]>(ctx, 'list_containers', args);
  }
  /** The heartbeat: a cast, as in Nova's servicegroup. `takenAt`: when the inventory in it was taken. */
  reportState(ctx: RequestContext, host: string, state: HostState, takenAt?: string): Promise<void> {
    if (takenAt === undefined) return this.client.cast(ctx, 'report_state', { host, state });
    return this.v1_1().cast(ctx, 'report_state', { host, state, taken_at: takenAt });
  }
  /** One container changed on `host`: a cast, sent as the engine reports it. */
  containerEvent(ctx: RequestContext, host: string, event: ContainerEvent): Promise<void> {
    return this.v1_1().cast(ctx, 'container_event', { host, event });
  }

  setHostStatus(ctx: RequestContext, host: string, status: HostStatus, disabledReason?: string | null): Promise<ComputeHost> {
    return this.v1_2().call<ComputeHost>(ctx, 'set_host_status', { host, status, disabled_reason: disabledReason ?? null });
  }
  evacuateHost(ctx: RequestContext, host: string, opts: EvacuateOptions): Promise<Evacuation> {
    return this.v1_2().call<Evacuation>(ctx, 'evacuate_host', {
      host,
      target_host: opts.target_host ?? null,
      max_parallel: opts.max_parallel ?? null,
      post_copy: opts.post_copy ?? null,
    });
  }
  getEvacuation(ctx: RequestContext, evacuationId: string): Promise<Evacuation> {
    return this.v1_2().call<Evacuation>(ctx, 'get_evacuation', { evacuation_id: evacuationId });
  }
  listEvacuations(ctx: RequestContext, filters: EvacuationFilters = {}): Promise<Evacuation[]> {
    const args = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
    return this.v1_2().call<Evacuation[]>(ctx, 'list_evacuations', args);
  }
}
