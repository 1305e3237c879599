/**
 * Fault injection for tests: the faults, where they may be switched on, and the one place that
 * installs them around an agent's parts: the engine driver wrapped (faults/engine.ts), wrappers
 * at the data channel's two ends (faults/channel.ts). The production classes know nothing of it.
 * Honoured only when NODE_ENV is "test" (jest sets it) or FERRY_ENABLE_FAULTS=1; anywhere
 * else nothing is installed, and faults asked for are ignored with a warning. Faults come from
 * FERRY_FAULTS (JSON), e.g. FERRY_FAULTS='{"failRestore":true}', and from the test that builds
 * the agent, which may change them while it runs (FaultInjection.set).
 */
import type { EngineDriver } from './driver.js';
import { channelFaults } from './faults/channel.js';
import { withFaults } from './faults/engine.js';
import { effectiveFaults, faultsAllowed, type Faults } from './faults/settings.js';
import type { ChannelSettings } from './transfer.js';

export { withFaults } from './faults/engine.js';
export { effectiveFaults, faultsAllowed, parseFaults, type Faults } from './faults/settings.js';

/** The faults of one agent, changeable while it runs; what `install` wraps reads them on every use. */
export class FaultInjection {
  private current: Faults;

  constructor(given?: Faults) {
    this.current = effectiveFaults(given);
  }

  get faults(): Faults {
    return this.current;
  }

  /** Replace the faults (the wrappers already installed follow). */
  set(f: Faults): void {
    this.current = effectiveFaults(f);
  }

  /** The agent's parts with the faults around them: the engine driver wrapped, the data channel's wrappers set. */
  install<O extends { driver: EngineDriver; channel?: ChannelSettings }>(opts: O): O & { channel: ChannelSettings } {
    const now = () => this.current;
    return { ...opts, driver: withFaults(opts.driver, now), channel: { tls: null, ...opts.channel, wrappers: channelFaults(now) } };
  }
}

/**
 * The fault injection for an agent when this process allows faults (tests), else null: then
 * nothing is wrapped. A malformed FERRY_FAULTS stops the agent either way.
 */
export function faultInjection(given?: Faults): FaultInjection | null {
  if (!faultsAllowed()) {
    effectiveFaults(given);
    return null;
  }
  return new FaultInjection(given);
}

/** An agent's options as they are built: with the faults installed when they are allowed, else unchanged. */
export function withFaultInjection<O extends { driver: EngineDriver; channel?: ChannelSettings }>(opts: O): O & { channel?: ChannelSettings } {
  return faultInjection()?.install(opts) ?? opts;
}
