/** The memory modes the conductor's flow knows; a new mode is its file and its line here. */
import type { PostMigrationResult } from '../../compute/steps.js';
import type { FlowMode } from './interface.js';
import { postCopy } from './post-copy.js';
import { stopAndCopy } from './stop-and-copy.js';

export type { AfterSendStep, FlowMode, ModePhase, SettleContext } from './interface.js';
export { chooseMode } from './choose.js';

/** Every mode the flow knows, stop-and-copy (the default) first. */
export const FLOW_MODES: readonly FlowMode[] = [stopAndCopy, postCopy];

/** The mode a send reported (an unknown name: stop-and-copy, whose restore asks nothing more). */
export function flowModeNamed(name: string): FlowMode {
  return FLOW_MODES.find((m) => m.name === name) ?? stopAndCopy;
}

/** The mode whose restore the target reports. */
export function flowModeOfRestore(post: PostMigrationResult): FlowMode {
  return FLOW_MODES.find((m) => m.restoredBy(post)) ?? stopAndCopy;
}
