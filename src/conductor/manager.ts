/**
 * Server side of the `ferry-conductor` topic: every method of methods.ts, its arguments
 * checked against their schema, then handed to ConductorService. Nothing else is public here.
 */
import type { MessageOrigin } from '../bus/rpc/server.js';
import type { RequestContext } from '../common/context.js';
import { InvalidInput } from '../common/errors.js';
import { CONDUCTOR_METHODS, CONDUCTOR_RPC_VERSION, isConductorMethod, type ConductorArgs, type ConductorMethod, type ConductorResult } from './methods.js';
import type { ConductorService } from './service.js';

export { CONDUCTOR_RPC_VERSION, CONDUCTOR_TOPIC } from './methods.js';

type Handlers = {
  [M in ConductorMethod]: (ctx: RequestContext, args: ConductorArgs<M>, origin?: MessageOrigin) => ConductorResult<M> | Promise<ConductorResult<M>>;
};

export class ConductorManager {
  readonly target = { version: CONDUCTOR_RPC_VERSION };
  readonly #handlers: Handlers;

  constructor(svc: ConductorService) {
    this.#handlers = {
      migrate_container: (ctx, a) => svc.migrateOnLiveState(ctx, a.container, a.host ?? null, { post_copy: a.post_copy, project_id: a.project_id }),
      abort_migration: (ctx, a) => svc.abort(ctx, a.migration_id),
      force_complete_migration: (ctx, a) => svc.forceComplete(ctx, a.migration_id),
      get_migration: (_ctx, a) => svc.getMigration(a.migration_id),
      list_migrations: (_ctx, a) => svc.listMigrations(a),
      list_hosts: () => svc.listHosts(),
      list_containers: (_ctx, a) => svc.listContainers(a),
      report_state: async (_ctx, a, origin) => {
        // The schema checked the state whole; the service checks who sent it.
        await svc.reportState(a.host, a.state, a.taken_at ?? null, origin?.sender ?? null);
        return null;
      },
      /** A cast from a compute host: one container changed (created, started, died, removed, renamed...). */
      container_event: async (_ctx, a, origin) => {
        await svc.containerEvent(a.host, a.event, origin?.sender ?? null);
        return null;
      },
      set_host_status: (_ctx, a) => svc.setHostStatus(a.host, a.status, a.disabled_reason ?? null),
      evacuate_host: (ctx, a) => svc.evacuate(ctx, a.host, { target_host: a.target_host, max_parallel: a.max_parallel, post_copy: a.post_copy }),
      get_evacuation: (_ctx, a) => svc.getEvacuation(a.evacuation_id),
      list_evacuations: (_ctx, a) => svc.listEvacuations(a),
    };
    // The RPC server finds methods by name on the endpoint: one per method of the contract.
    for (const name of Object.keys(CONDUCTOR_METHODS) as ConductorMethod[]) {
      Object.defineProperty(this, name, {
        value: (ctx: RequestContext, args: unknown, origin?: MessageOrigin) => this.dispatch(ctx, name, args, origin),
        enumerable: true,
      });
    }
  }

  /** Check the arguments, then run the method. `origin`: what the bus says of the sender (none in process). */
  dispatch<M extends ConductorMethod>(ctx: RequestContext, method: M, raw: unknown, origin?: MessageOrigin): ConductorResult<M> | Promise<ConductorResult<M>> {
    if (!isConductorMethod(method)) throw new InvalidInput(`no conductor method ${String(method)}`);
    const parsed = CONDUCTOR_METHODS[method].args.safeParse(raw ?? {});
    if (!parsed.success) throw new InvalidInput(parsed.error.issues[0]?.message ?? `bad arguments for ${method}`, { method });
    const run = this.#handlers[method] as (c: RequestContext, a: ConductorArgs<M>, o?: MessageOrigin) => ConductorResult<M> | Promise<ConductorResult<M>>;
    return run(ctx, parsed.data as ConductorArgs<M>, origin);
  }
}
