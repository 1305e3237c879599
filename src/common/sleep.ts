/** Waiting a while: the one `sleep(ms)` every part of Ferry (and its tests) uses. */
import { setTimeout as delay } from 'node:timers/promises';

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
