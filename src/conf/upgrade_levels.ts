/**
 * [upgrade_levels] options (Nova's): the highest RPC API version a service sends to each topic
 * during a rolling upgrade, so that new services keep talking to the old ones not yet upgraded.
 */
import { ConfigError } from '../common/errors.js';
import type { Opt } from './opts.js';

/** `auto` or a `major.minor` version. */
export const AUTO = 'auto';

function versionCapOpt(help: string): Opt<string> {
  return {
    type: 'str',
    default: AUTO,
    help,
    parse(raw, where) {
      const v = raw.trim();
      if (v === '' || v.toLowerCase() === AUTO) return AUTO;
      if (!/^\d+\.\d+$/.test(v)) throw new ConfigError(`${where}: "${raw}" is neither auto nor a version such as 1.2`);
      return v;
    },
  };
}

export const upgradeLevelsOpts = {
  compute: versionCapOpt(
    "Highest ferry-compute RPC version the conductor sends. auto: the lowest version the running compute agents report (an agent that reports none counts as the release before service versions); X.Y: at most that, e.g. the previous release's while its agents are upgraded. A call that needs more fails with RPCVersionCapped.",
  ),
  conductor: versionCapOpt(
    "Highest ferry-conductor RPC version ferry-api and ferry-compute send. X.Y: at most that, while conductors of the previous release still run. auto: no cap in services without the database (conductors are upgraded first); ferry-status resolves it from the running conductors' records. A call that needs more fails with RPCVersionCapped.",
  ),
};
