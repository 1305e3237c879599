/**
 * Stop-and-copy: the container is frozen and checkpointed whole, the checkpoint travels with the
 * rest, and the target starts from it. Nothing of it outlives the restore.
 */
import type { MemoryMode, ModeHost } from './interface.js';

export function stopAndCopy(host: ModeHost): MemoryMode {
  return {
    name: 'stop-and-copy',
    async require() {},
    async freeze(_r, containerId, name) {
      return { checkpoint: await host.driver.checkpoint(containerId, name), pageServer: null };
    },
    memoryTotal: (_r, checkpointBytes) => checkpointBytes,
    async settleSource() {},
    rollbackSource: async () => false,
    abandonAfterRestart: () => false,
    matchesRestore: () => true,
    checkRestore: () => undefined,
    restore: (_r, containerId, name) => host.driver.restore(containerId, name),
    restoredTraits: () => ({ post_copy: false }),
    async rollbackTarget() {},
  };
}
