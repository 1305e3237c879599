/**
 * The faults a test may inject, where they may be switched on, and how a setting is read and
 * checked (FERRY_FAULTS and the test's own). Installing them: ../faults.ts.
 */
import { getLogger } from '../../common/log.js';

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
  /** Source: the checkpoint waits this long before CRIU runs (a window to kill the agent during the checkpoint step). */
  delayBeforeCheckpointMs?: number;
  /** Target: the restore waits this long after the state was placed (a window to kill the target agent mid-restore). */
  delayBeforeRestoreMs?: number;
  /** Target: post_migration waits this long after the container runs, before answering (kill the target after restore). */
  delayAfterRestoreMs?: number;
  /** Source: the parts are sent at most this fast (a window to kill an agent while bytes travel). */
  throttleTransferBytesPerSec?: number;
  /** Source: post-copy pages leave at most this fast (a window while the restored process fetches them). */
  throttlePagesBytesPerSec?: number;
  /** Source: this CPU features image (base64 cpuinfo.img) is sent instead of its own (a CPU the target lacks features of). */
  cpuinfoImage?: string;
}

export function faultsAllowed(): boolean {
  return process.env.NODE_ENV === 'test' || process.env.FERRY_ENABLE_FAULTS === '1';
}

/** Every fault and the type of its value: a setting naming anything else is refused. */
const FAULT_TYPES: Record<keyof Faults, 'boolean' | 'number' | 'string'> = {
  failRestore: 'boolean',
  truncateTransfer: 'boolean',
  corruptTransfer: 'boolean',
  cutTransferAfterBytes: 'number',
  failCheckpoint: 'boolean',
  failPreMigration: 'boolean',
  delayPreMigrationMs: 'number',
  delayAfterCheckpointMs: 'number',
  delayBeforeCheckpointMs: 'number',
  delayBeforeRestoreMs: 'number',
  delayAfterRestoreMs: 'number',
  throttleTransferBytesPerSec: 'number',
  throttlePagesBytesPerSec: 'number',
  cpuinfoImage: 'string',
};

/**
 * Check a fault setting; a malformed one throws (a test whose fault silently does nothing
 * would prove nothing), naming what is wrong.
 */
export function parseFaults(value: unknown, where: string): Faults {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${where}: faults must be a JSON object, not ${JSON.stringify(value)}`);
  for (const [k, v] of Object.entries(value)) {
    const want = FAULT_TYPES[k as keyof Faults] as string | undefined;
    if (!want) throw new Error(`${where}: unknown fault "${k}" (known: ${Object.keys(FAULT_TYPES).join(', ')})`);
    if (typeof v !== want || (want === 'number' && !(Number.isFinite(v) && (v as number) >= 0))) {
      throw new Error(`${where}: fault "${k}" takes a ${want === 'number' ? 'non-negative number' : want}, not ${JSON.stringify(v)}`);
    }
  }
  return value as Faults;
}

export function effectiveFaults(given: Faults | undefined): Faults {
  let fromEnv: Faults = {};
  if (process.env.FERRY_FAULTS) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(process.env.FERRY_FAULTS);
    } catch (e) {
      throw new Error(`FERRY_FAULTS is not JSON: ${(e as Error).message}`);
    }
    fromEnv = parseFaults(parsed, 'FERRY_FAULTS');
  }
  const all = { ...fromEnv, ...parseFaults(given ?? {}, 'faults') };
  if (Object.keys(all).length === 0) return {};
  if (!faultsAllowed()) {
    getLogger('compute.faults').warn({ faults: all }, 'fault injection requested outside tests: ignored');
    return {};
  }
  return all;
}
