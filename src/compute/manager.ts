/**
 * Server side of the `ferry-compute` topic on one host (`ferry-compute.<host>`): each RPC
 * method is one migration step of MigrationAgent. Also the heartbeat that tells the
 * conductor this host is up, with its versions and containers.
 */
import type { RequestContext } from '../bus/context.js';
import type { Logger } from '../common/log.js';
import type { HostState } from '../objects/host.js';
import type { MigrationAgent } from './agent.js';
import { COMPUTE_RPC_VERSION } from './rpcapi.js';
import type {
  CheckDestinationRequest,
  CheckSourceRequest,
  CleanupSourceRequest,
  LiveMigrationRequest,
  PostMigrationRequest,
  PreMigrationRequest,
  RollbackDestinationRequest,
  RollbackSourceRequest,
} from './steps.js';

export class ComputeManager {
  readonly target = { version: COMPUTE_RPC_VERSION };
  readonly #agent: MigrationAgent;
  /**
   * Steps in progress, by method and migration: a conductor that restarted mid-step calls
   * the same step again, and must get the outcome of the one already running, not a second run.
   */
  readonly #inflight = new Map<string, Promise<unknown>>();

  constructor(agent: MigrationAgent) {
    this.#agent = agent;
  }

  #once<T>(method: string, args: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
    const key = `${method}:${String(args.migration_id)}`;
    const running = this.#inflight.get(key);
    if (running) return running as Promise<T>;
    const p = run().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  check_can_migrate_destination(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#agent.checkCanMigrateDestination(args as unknown as CheckDestinationRequest);
  }
  check_can_migrate_source(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#agent.checkCanMigrateSource(args as unknown as CheckSourceRequest);
  }
  pre_migration(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#once('pre_migration', args, () => this.#agent.preMigration(args as unknown as PreMigrationRequest));
  }
  live_migration(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#once('live_migration', args, () => this.#agent.liveMigration(args as unknown as LiveMigrationRequest));
  }
  post_migration_at_destination(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#once('post_migration_at_destination', args, () =>
      this.#agent.postMigrationAtDestination(args as unknown as PostMigrationRequest),
    );
  }
  cleanup_source(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#once('cleanup_source', args, () => this.#agent.cleanupSource(args as unknown as CleanupSourceRequest));
  }
  rollback_at_destination(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#once('rollback_at_destination', args, () =>
      this.#agent.rollbackAtDestination(args as unknown as RollbackDestinationRequest),
    );
  }
  rollback_at_source(_ctx: RequestContext, args: Record<string, unknown>) {
    return this.#once('rollback_at_source', args, () => this.#agent.rollbackAtSource(args as unknown as RollbackSourceRequest));
  }
}

/** What the heartbeat reports: the host's facts and the containers its engine has. */
export async function hostState(agent: MigrationAgent): Promise<HostState> {
  const [facts, containers] = await Promise.all([agent.hostFacts(), agent.driver.listContainers()]);
  return {
    docker_version: facts.engine_version,
    api_version: facts.api_version,
    criu_version: facts.criu_version,
    criu_ok: facts.criu_ok && facts.experimental,
    architecture: facts.architecture,
    migration_address: facts.migration_address,
    containers,
  };
}

/** Sends report_state every `intervalS` seconds until stopped; a failed report is logged, never fatal. */
export function startHeartbeat(report: () => Promise<void>, intervalS: number, log: Logger): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    try {
      await report();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'heartbeat failed');
    }
    if (!stopped) timer = setTimeout(beat, intervalS * 1000);
  };
  void beat();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
