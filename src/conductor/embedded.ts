/**
 * The conductor run inside another program: the benchmarks drive the production service,
 * repository and flow in their own process (no bus, no API), so that they measure exactly the
 * code ferry-conductor runs. Outside src/conductor/, this module, the RPC client (rpcapi.ts)
 * and the callers' types (interface.ts, methods.ts) are all that src/bench/ and src/devcloud/
 * may import (test/unit/shape/imports.test.ts): the conductor's internals can be split or
 * renamed behind it without touching them.
 */
import type { Logger } from 'pino';
import type { InventoryAPI } from '../compute/inventory.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import type { SqlDriver } from '../db/driver.js';
import { SqlRepository, type Repository } from './repository.js';
import { ConductorService, type ConductorOptions } from './service.js';

export { chooseTarget } from './hosts.js';
export { InProcessConductor, type InProcessOutcome } from './inprocess.js';
export type { ClaimOptions, ConductorOptions } from './service.js';

/** The conductor's database access, as ferry-conductor has it (a benchmark may wrap it to count calls). */
export type ConductorStore = Repository;

export function openConductorStore(driver: SqlDriver): ConductorStore {
  return new SqlRepository(driver);
}

/** The operations of a running conductor that an embedding program uses. */
export type EmbeddedConductor = Pick<ConductorService, 'reportState' | 'migrateOnLiveState' | 'listHosts' | 'listMigrations' | 'whenIdle' | 'stopClaims'>;

/**
 * A conductor built as ferry-conductor builds one, over `compute` for both the steps and the
 * live container checks, its notifications dropped (there is no bus). Like ferry-conductor at
 * start, it first resumes what its database left unfinished and takes up its claims.
 */
export async function startEmbeddedConductor(
  store: ConductorStore,
  compute: ComputeAPI & InventoryAPI,
  opts: ConductorOptions,
  log: Logger,
): Promise<EmbeddedConductor> {
  const svc = new ConductorService(store, compute, async () => undefined, opts, log, compute);
  await svc.recover();
  return svc;
}
