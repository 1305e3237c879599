/**
 * What `[upgrade_levels]` means for one call (Nova's rpcapi with `can_send_version`): a method
 * needs a version; a client capped below it refuses the call with RPCVersionCapped instead of
 * sending something an older peer would misread or refuse.
 */
import { RPCVersionCapped } from '../common/errors.js';
import { versionIsCompatible } from './version.js';

/** Throws RPCVersionCapped when `needed` is above `cap` (no cap: anything goes). */
export function requireSendable(topic: string, method: string, needed: string, cap: string | undefined): void {
  if (cap === undefined || versionIsCompatible(cap, needed)) return;
  throw new RPCVersionCapped(
    `${topic} method ${method} needs RPC version ${needed}, but this service may send at most ${cap} ([upgrade_levels] ${topic.replace(/^ferry-/, '')}); upgrade the remaining ${topic} services, then set it to auto`,
    { topic, method, needed, cap },
  );
}
