/**
 * Client side of the `ferry-compute` topic: one typed `call` per migration step, sent to the
 * agent of one host (`ferry-compute.<host>`). Method names, argument and result types come
 * from methods.ts. Sent at COMPUTE_RPC_VERSION, or at `[upgrade_levels] compute` when that is lower.
 */
import type { RequestContext } from '../common/context.js';
import { RPCClient } from '../bus/rpc/client.js';
import type { Transport } from '../bus/transport.js';
import { requireSendable } from '../bus/upgrade.js';
import { versionIsCompatible } from '../bus/version.js';
import {
  COMPUTE_METHODS,
  COMPUTE_RPC_VERSION,
  COMPUTE_TOPIC,
  computeVersionNeeded,
  type ComputeArgs,
  type ComputeMethod,
  type ComputeResult,
} from './methods.js';

export { COMPUTE_RPC_VERSION, COMPUTE_TOPIC } from './methods.js';

/**
 * What the conductor needs from compute agents. The bus implements it (ComputeRPCAPI), and
 * so does InProcessComputeAPI for tests and the bench, so that both drive the same flow.
 */
export interface ComputeAPI {
  call<M extends ComputeMethod>(ctx: RequestContext, host: string, method: M, args: ComputeArgs<M>): Promise<ComputeResult<M>>;
}

export interface ComputeRPCOptions {
  /** Seconds a quick step (checks) may take. */
  shortTimeout: number;
  /** Seconds a long step (image transfer, checkpoint + transfer, restore, rollback) may take. */
  longTimeout: number;
  /** Seconds of silence (no call-monitor heartbeat) after which a long step's agent counts as gone (default 30). */
  callMonitorTimeout?: number;
  /**
   * `[upgrade_levels] compute` as resolved now (asked at every call, so that `auto` follows the
   * agents as they are upgraded); undefined: no cap, every call goes out at this code's version.
   */
  versionCap?: () => string | undefined;
}

/**
 * The version a compute call goes out with: this code's (as before `[upgrade_levels]`) when no
 * cap is set or the cap allows it, else the cap, once the method's arguments are known to fit in
 * it (RPCVersionCapped names the method and versions when they do not).
 */
export function sendVersion<M extends ComputeMethod>(method: M, args: ComputeArgs<M>, cap: string | undefined): string {
  if (cap === undefined || versionIsCompatible(cap, COMPUTE_RPC_VERSION)) return COMPUTE_RPC_VERSION;
  requireSendable(COMPUTE_TOPIC, method, computeVersionNeeded(method, args), cap);
  return cap;
}

export class ComputeRPCAPI implements ComputeAPI {
  private readonly client: RPCClient;

  constructor(
    transport: Transport,
    private readonly opts: ComputeRPCOptions,
  ) {
    this.client = new RPCClient(transport, { topic: COMPUTE_TOPIC, version: COMPUTE_RPC_VERSION }, { versionCap: COMPUTE_RPC_VERSION });
  }

  /** The caller's token stays with the conductor: no step on a host calls another service as the caller. */
  call<M extends ComputeMethod>(ctx: RequestContext, host: string, method: M, args: ComputeArgs<M>): Promise<ComputeResult<M>> {
    const long = COMPUTE_METHODS[method].long;
    const timeout = long ? this.opts.longTimeout : this.opts.shortTimeout;
    let version: string | undefined;
    try {
      version = sendVersion(method, args, this.opts.versionCap?.());
    } catch (e) {
      return Promise.reject(e as Error);
    }
    // The agent sends heartbeat replies while it works, so a dead agent is noticed within the monitor's limit, not at the end of a long timeout.
    return this.client
      .prepare({ server: host, timeout, callMonitorTimeout: long ? (this.opts.callMonitorTimeout ?? 30) : undefined, version, versionCap: version })
      .call<ComputeResult<M>>(ctx.withoutCredentials(), method, { ...(args as Record<string, unknown>) });
  }
}
