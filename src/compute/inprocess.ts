/**
 * ComputeAPI without a bus: the conductor's flow calls agents living in the same process
 * (tests and the bench). Arguments and results go through JSON as they would on the wire,
 * and through the same ComputeManager (schemas, one step per migration at a time), so a
 * migration driven this way follows exactly the production rules.
 */
import type { RequestContext } from '../common/context.js';
import { HostNotFound } from '../common/errors.js';
import type { MigrationAgent } from './agent.js';
import { ComputeManager } from './manager.js';
import type { ComputeArgs, ComputeMethod, ComputeResult } from './methods.js';
import type { ComputeAPI } from './rpcapi.js';

export class InProcessComputeAPI implements ComputeAPI {
  private readonly managers = new Map<string, ComputeManager>();

  constructor(agents: MigrationAgent[]) {
    for (const a of agents) this.managers.set(a.host, new ComputeManager(a));
  }

  async call<M extends ComputeMethod>(_ctx: RequestContext, host: string, method: M, args: ComputeArgs<M>): Promise<ComputeResult<M>> {
    const manager = this.managers.get(host);
    if (!manager) throw new HostNotFound(`no agent for host ${host} in this process`);
    const result = await manager.dispatch(method, JSON.parse(JSON.stringify(args)) as unknown);
    return JSON.parse(JSON.stringify(result)) as ComputeResult<M>;
  }
}
