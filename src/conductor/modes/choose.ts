/**
 * The memory mode of a new migration (the scheduler's choice, at admission): post-copy when
 * asked for (the caller checked that both hosts permit it), else stop-and-copy. Pre-copy is
 * never chosen: no engine driver can pre-dump (docs/architecture.md).
 */
import type { MemoryModeName } from '../../compute/steps.js';

export function chooseMode(postCopyRequested: boolean): MemoryModeName {
  return postCopyRequested ? 'post-copy' : 'stop-and-copy';
}
