/** Waiting until the engine no longer shows a container running (after a kill, or an exit behind Docker's back). */
import { sleep } from '../../common/sleep.js';

/**
 * Polls `running` every `intervalMs` until it answers false (resolves true) or `timeoutMs` has
 * passed (resolves false: the caller decides whether that is an error). It asks at least once;
 * a rejection of `running` propagates.
 */
export async function waitStopped(running: () => Promise<boolean>, o: { timeoutMs: number; intervalMs: number }): Promise<boolean> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (!(await running())) return true;
    if (Date.now() >= deadline) return false;
    await sleep(o.intervalMs);
  }
}

/** Whether the engine shows the container running; for `waitStopped`. */
export function containerRunning(container: { inspect(): Promise<{ State: { Running: boolean } }> }): () => Promise<boolean> {
  return async () => (await container.inspect()).State.Running;
}
