/**
 * Client side of the `ferry-compute` topic: one method per migration step, sent to the
 * agent of one host (`ferry-compute.<host>`). RPC API version 1.0, sent and checked.
 */
import type { RequestContext } from '../bus/context.js';
import { RPCClient } from '../bus/rpc/client.js';
import type { Transport } from '../bus/transport.js';
import type {
  CheckDestinationRequest,
  CheckDestinationResult,
  CheckSourceRequest,
  CheckSourceResult,
  CleanupSourceRequest,
  CleanupSourceResult,
  LiveMigrationRequest,
  LiveMigrationResult,
  PostMigrationRequest,
  PostMigrationResult,
  PreMigrationRequest,
  PreMigrationResult,
  RollbackDestinationRequest,
  RollbackDestinationResult,
  RollbackSourceRequest,
  RollbackSourceResult,
} from './steps.js';

export const COMPUTE_TOPIC = 'ferry-compute';
export const COMPUTE_RPC_VERSION = '1.0';

/** What the conductor needs from compute agents; tests may implement it in memory. */
export interface ComputeAPI {
  checkCanMigrateDestination(ctx: RequestContext, host: string, req: CheckDestinationRequest): Promise<CheckDestinationResult>;
  checkCanMigrateSource(ctx: RequestContext, host: string, req: CheckSourceRequest): Promise<CheckSourceResult>;
  preMigration(ctx: RequestContext, host: string, req: PreMigrationRequest): Promise<PreMigrationResult>;
  liveMigration(ctx: RequestContext, host: string, req: LiveMigrationRequest): Promise<LiveMigrationResult>;
  postMigrationAtDestination(ctx: RequestContext, host: string, req: PostMigrationRequest): Promise<PostMigrationResult>;
  cleanupSource(ctx: RequestContext, host: string, req: CleanupSourceRequest): Promise<CleanupSourceResult>;
  rollbackAtDestination(ctx: RequestContext, host: string, req: RollbackDestinationRequest): Promise<RollbackDestinationResult>;
  rollbackAtSource(ctx: RequestContext, host: string, req: RollbackSourceRequest): Promise<RollbackSourceResult>;
}

export interface ComputeRPCOptions {
  /** Seconds a quick step (checks, cleanup) may take. */
  shortTimeout: number;
  /** Seconds a long step (image transfer, checkpoint + transfer, restore, rollback) may take. */
  longTimeout: number;
}

export class ComputeRPCAPI implements ComputeAPI {
  private readonly client: RPCClient;

  constructor(
    transport: Transport,
    private readonly opts: ComputeRPCOptions,
  ) {
    this.client = new RPCClient(transport, { topic: COMPUTE_TOPIC, version: COMPUTE_RPC_VERSION }, { versionCap: COMPUTE_RPC_VERSION });
  }

  private call<T>(ctx: RequestContext, host: string, method: string, req: object, long: boolean): Promise<T> {
    const timeout = long ? this.opts.longTimeout : this.opts.shortTimeout;
    // The agent sends heartbeat replies while it works, so a dead agent is noticed in 30 s, not at the end of a long timeout.
    return this.client.prepare({ server: host, timeout, callMonitorTimeout: long ? 30 : undefined }).call<T>(ctx, method, { ...req });
  }

  checkCanMigrateDestination(ctx: RequestContext, host: string, req: CheckDestinationRequest) {
    return this.call<CheckDestinationResult>(ctx, host, 'check_can_migrate_destination', req, false);
  }
  checkCanMigrateSource(ctx: RequestContext, host: string, req: CheckSourceRequest) {
    return this.call<CheckSourceResult>(ctx, host, 'check_can_migrate_source', req, false);
  }
  preMigration(ctx: RequestContext, host: string, req: PreMigrationRequest) {
    return this.call<PreMigrationResult>(ctx, host, 'pre_migration', req, true);
  }
  liveMigration(ctx: RequestContext, host: string, req: LiveMigrationRequest) {
    return this.call<LiveMigrationResult>(ctx, host, 'live_migration', req, true);
  }
  postMigrationAtDestination(ctx: RequestContext, host: string, req: PostMigrationRequest) {
    return this.call<PostMigrationResult>(ctx, host, 'post_migration_at_destination', req, true);
  }
  cleanupSource(ctx: RequestContext, host: string, req: CleanupSourceRequest) {
    return this.call<CleanupSourceResult>(ctx, host, 'cleanup_source', req, true);
  }
  rollbackAtDestination(ctx: RequestContext, host: string, req: RollbackDestinationRequest) {
    return this.call<RollbackDestinationResult>(ctx, host, 'rollback_at_destination', req, true);
  }
  rollbackAtSource(ctx: RequestContext, host: string, req: RollbackSourceRequest) {
    return this.call<RollbackSourceResult>(ctx, host, 'rollback_at_source', req, true);
  }
}
