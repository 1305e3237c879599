/**
 * Server side of the `ferry-compute` topic on one host (`ferry-compute.<host>`): every method
 * of methods.ts, its arguments checked against their schema, then run as one step of
 * MigrationAgent (one step per migration at a time). Also the heartbeat that tells the
 * conductor this host is up, with its versions and containers.
 */
import type { RequestContext } from '../common/context.js';
import { InvalidInput } from '../common/errors.js';
import { SERVICE_VERSION } from '../common/service-version.js';
import type { Logger } from '../common/log.js';
import type { HostState } from '../objects/host.js';
import type { MigrationAgent } from './agent.js';
import type { MemoryUse } from './driver.js';
import { COMPUTE_METHODS, COMPUTE_RPC_VERSION, isComputeMethod, type ComputeArgs, type ComputeMethod, type ComputeResult } from './methods.js';

type Handlers = { [M in ComputeMethod]: (args: ComputeArgs<M>) => Promise<ComputeResult<M>> };

export class ComputeManager {
  readonly target = { version: COMPUTE_RPC_VERSION };
  readonly #agent: MigrationAgent;
  readonly #handlers: Handlers;

  constructor(agent: MigrationAgent) {
    this.#agent = agent;
    this.#handlers = {
      check_can_migrate_destination: (a) => agent.checkCanMigrateDestination(a),
      check_can_migrate_source: (a) => agent.checkCanMigrateSource(a),
      pre_migration: (a) => agent.preMigration(a),
      live_migration: (a) => agent.liveMigration(a),
      post_migration_at_destination: (a) => agent.postMigrationAtDestination(a),
      post_copy_status: (a) => agent.memoryArrival(a),
      cleanup_source: (a) => agent.cleanupSource(a),
      rollback_at_destination: (a) => agent.rollbackAtDestination(a),
      rollback_at_source: (a) => agent.rollbackAtSource(a),
    };
    // The RPC server finds methods by name on the endpoint: one per method of the contract.
    for (const name of Object.keys(COMPUTE_METHODS) as ComputeMethod[]) {
      Object.defineProperty(this, name, { value: (_ctx: RequestContext, args: unknown) => this.dispatch(name, args), enumerable: true });
    }
  }

  /** Check the arguments, then run the step (joining the same step already running for that migration). */
  dispatch<M extends ComputeMethod>(method: M, raw: unknown): Promise<ComputeResult<M>> {
    if (!isComputeMethod(method)) return Promise.reject(new InvalidInput(`no compute method ${String(method)}`));
    const parsed = COMPUTE_METHODS[method].args.safeParse(raw ?? {});
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; ');
      return Promise.reject(new InvalidInput(`bad arguments for ${method}: ${why}`, { method }));
    }
    const args = parsed.data as ComputeArgs<M>;
    const run = this.#handlers[method] as (a: ComputeArgs<M>) => Promise<ComputeResult<M>>;
    return this.#agent.serialize(args.migration_id, method, () => run(args));
  }
}

/** What the heartbeat reports: the host's facts, the containers its engine has, and their memory (when the driver tells). */
export async function hostState(agent: MigrationAgent): Promise<HostState> {
  const [facts, containers, memory] = await Promise.all([agent.hostFacts(), agent.driver.listContainers(), memoryOf(agent)]);
  return {
    docker_version: facts.engine_version,
    api_version: facts.api_version,
    criu_version: facts.criu_version,
    criu_ok: facts.criu_ok && facts.experimental,
    architecture: facts.architecture,
    migration_address: facts.migration_address,
    containers,
    memory_used_bytes: memory.used_bytes,
    memory_total_bytes: memory.total_bytes,
    modes: facts.modes ?? null,
    // The conductor records which release each agent runs (rolling upgrades, `[upgrade_levels] compute = auto`).
    service_version: SERVICE_VERSION,
    rpc_version: COMPUTE_RPC_VERSION,
  };
}

/** Memory is a scheduling hint: a driver without it, or one that fails, leaves it null rather than failing the heartbeat. */
async function memoryOf(agent: MigrationAgent): Promise<MemoryUse> {
  try {
    return (await agent.driver.memoryUse?.()) ?? { used_bytes: null, total_bytes: null };
  } catch {
    return { used_bytes: null, total_bytes: null };
  }
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
