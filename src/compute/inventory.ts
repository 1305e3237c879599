/**
 * A host's container inventory on demand, over the bus: the conductor asks the source host
 * live before it decides on a container's state. It is an extra endpoint on the host's
 * `ferry-compute` server in its own namespace (`container_inventory`, version 1.0; oslo's
 * way of adding an API beside another, as Nova's `baseapi`), so the migration steps' API is
 * unchanged. InventoryEndpoint is the server side, InventoryRPCAPI the client side.
 */
import type { RequestContext } from '../common/context.js';
import { RPCClient } from '../bus/rpc/client.js';
import type { Transport } from '../bus/transport.js';
import type { ContainerSummary } from '../objects/host.js';
import { COMPUTE_TOPIC } from './rpcapi.js';

export const INVENTORY_NAMESPACE = 'container_inventory';
export const INVENTORY_RPC_VERSION = '1.0';

/** Every container one host's engine has, and when the list was taken (the host's clock). */
export interface Inventory {
  host: string;
  /** ISO 8601 UTC, read just before the engine was asked. */
  taken_at: string;
  containers: ContainerSummary[];
}

/** Takes an inventory now: the time first, then the engine's list (so the list is at least as new as the time). */
export async function takeInventory(host: string, list: () => Promise<ContainerSummary[]>): Promise<Inventory> {
  const taken_at = new Date().toISOString();
  return { host, taken_at, containers: await list() };
}

/** Server side, on the compute host (registered beside ComputeManager on the same RPC server). */
export class InventoryEndpoint {
  readonly target = { namespace: INVENTORY_NAMESPACE, version: INVENTORY_RPC_VERSION };
  readonly #host: string;
  readonly #list: () => Promise<ContainerSummary[]>;

  constructor(host: string, list: () => Promise<ContainerSummary[]>) {
    this.#host = host;
    this.#list = list;
  }

  list_containers(): Promise<Inventory> {
    return takeInventory(this.#host, this.#list);
  }
}

/** What the conductor needs to ask a host live; tests may implement it in memory. */
export interface InventoryAPI {
  inventory(ctx: RequestContext, host: string): Promise<Inventory>;
}

export class InventoryRPCAPI implements InventoryAPI {
  private readonly client: RPCClient;

  /** `timeoutSeconds`: how long a live check waits for the host (short: the caller is waiting). */
  constructor(transport: Transport, timeoutSeconds: number) {
    this.client = new RPCClient(
      transport,
      { topic: COMPUTE_TOPIC, namespace: INVENTORY_NAMESPACE, version: INVENTORY_RPC_VERSION },
      { timeoutSeconds, versionCap: INVENTORY_RPC_VERSION },
    );
  }

  inventory(ctx: RequestContext, host: string): Promise<Inventory> {
    return this.client.prepare({ server: host }).call<Inventory>(ctx.withoutCredentials(), 'list_containers', {});
  }
}
