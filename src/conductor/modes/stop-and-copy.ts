/** Stop-and-copy: the whole memory travels in the checkpoint; the restore finishes the move. */
import type { FlowMode } from './interface.js';

export const stopAndCopy: FlowMode = {
  name: 'stop-and-copy',
  phases: [
    { status: 'post-migrating', phase: 'restore', step: 'restore' },
    { status: 'post-migrating', phase: 'cleanup', step: 'cleanup' },
  ],
  processedAtSend: (live) => live.memory_total_bytes,
  abortedAfterFreeze: 'aborted by request after the freeze',
  restoreArgs: () => ({}),
  restoredBy: (post) => !post.post_copy,
};
