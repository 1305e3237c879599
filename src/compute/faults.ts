/**
 * Fault injection for tests. Honoured only when NODE_ENV is "test" (jest sets it) or
 * FERRY_ENABLE_FAULTS=1; anywhere else the faults are ignored and a warning is logged.
 * Faults come from the agent's options or from FERRY_FAULTS (JSON), e.g.
 * FERRY_FAULTS='{"failRestore":true}'.
 */
import { getLogger } from '../common/log.js';

export interface Faults {
  /** Target: the checkpoint is damaged before the start, so the engine's restore really fails. */
  failRestore?: boolean;
  /** Source: the checkpoint part stops after 32 KiB (the request still ends normally). */
  truncateTransfer?: boolean;
  /** Source: one byte of the checkpoint part is flipped in flight. */
  corruptTransfer?: boolean;
  /** Target: the data channel drops the connection after this many bytes of a part. */
  cutTransferAfterBytes?: number;
  /** Source: the checkpoint step fails (CRIU never runs). */
  failCheckpoint?: boolean;
  /** Target: pre_migration fails after the image and the shell were made (before any freeze). */
  failPreMigration?: boolean;
  /** Target: pre_migration waits this long after the shell was made (a window to abort before the freeze). */
  delayPreMigrationMs?: number;
  /** Source: live_migration waits this long after the checkpoint (a window to abort, or kill the conductor, after the freeze). */
  delayAfterCheckpointMs?: number;
}

export function faultsAllowed(): boolean {
  return process.env.NODE_ENV === 'test' || process.env.FERRY_ENABLE_FAULTS === '1';
}

export function effectiveFaults(given: Faults | undefined): Faults {
  let fromEnv: Faults = {};
  if (process.env.FERRY_FAULTS) {
    try {
      fromEnv = JSON.parse(process.env.FERRY_FAULTS) as Faults;
    } catch {
      fromEnv = {};
    }
  }
  const all = { ...fromEnv, ...(given ?? {}) };
  if (Object.keys(all).length === 0) return {};
  if (!faultsAllowed()) {
    getLogger('compute.faults').warn({ faults: all }, 'fault injection requested outside tests: ignored');
    return {};
  }
  return all;
}
