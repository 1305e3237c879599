/**
 * Fault injection for tests: the faults, where they may be switched on, and the engine driver
 * wrapper that injects the engine-side ones (the data channel injects the transfer ones).
 * Honoured only when NODE_ENV is "test" (jest sets it) or FERRY_ENABLE_FAULTS=1; anywhere
 * else the faults are ignored and a warning is logged. Faults come from the agent's options or
 * from FERRY_FAULTS (JSON), e.g. FERRY_FAULTS='{"failRestore":true}'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CheckpointFailed, TransferFailed } from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { sleep } from '../common/sleep.js';
import type { EngineDriver, LazyPagesCapability } from './driver.js';

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
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: faults must be a JSON object, not ${JSON.stringify(value)}`);
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

/**
 * The engine driver with the engine-side faults injected; `current` is read on every call, so
 * a test can change the faults of a running agent. Everything else passes straight through.
 */
export function withFaults(driver: EngineDriver, current: () => Faults): EngineDriver {
  const injected: Partial<EngineDriver> = {
    async cpuInfo() {
      const given = current().cpuinfoImage;
      return given ?? (driver.cpuInfo ? driver.cpuInfo() : null);
    },
    async checkpoint(containerId, name) {
      const f = current();
      if (f.delayBeforeCheckpointMs) await sleep(f.delayBeforeCheckpointMs);
      if (f.failCheckpoint) throw new CheckpointFailed('fault injected: checkpoint fails before CRIU runs');
      const r = await driver.checkpoint(containerId, name);
      if (f.delayAfterCheckpointMs) await sleep(f.delayAfterCheckpointMs);
      return r;
    },
    async createShell(spec, migrationId) {
      const id = await driver.createShell(spec, migrationId);
      const f = current();
      if (f.failPreMigration) throw new TransferFailed('fault injected: pre_migration fails after the shell was created');
      if (f.delayPreMigrationMs) await sleep(f.delayPreMigrationMs);
      return id;
    },
    lazyPages: driver.lazyPages && withPacedPages(driver.lazyPages, current),
    async placeCheckpoint(containerId, name, stagedDir) {
      // A real engine failure, caused by a damaged image.
      if (current().failRestore) fs.writeFileSync(path.join(stagedDir, 'inventory.img'), 'damaged by a fault injection\n');
      return driver.placeCheckpoint(containerId, name, stagedDir);
    },
    async restore(containerId, checkpointName) {
      const f = current();
      if (f.delayBeforeRestoreMs) await sleep(f.delayBeforeRestoreMs);
      return driver.restore(containerId, checkpointName);
    },
    async verifyRunning(containerId, settleMs) {
      const r = await driver.verifyRunning(containerId, settleMs);
      const f = current();
      if (f.delayAfterRestoreMs) await sleep(f.delayAfterRestoreMs);
      return r;
    },
  };
  return passThrough(driver, injected as Record<string, unknown>);
}

/** The lazy pages with `throttlePagesBytesPerSec` applied to the source's page server. */
function withPacedPages(lazy: LazyPagesCapability, current: () => Faults): LazyPagesCapability {
  const injected: Partial<LazyPagesCapability> = {
    async checkpointLazy(containerId, name, opts) {
      const pace = current().throttlePagesBytesPerSec;
      return lazy.checkpointLazy(containerId, name, pace ? { ...opts, paceBytesPerSec: pace } : opts);
    },
  };
  return passThrough(lazy, injected as Record<string, unknown>);
}

/** `target` with the members of `injected` it has replaced by them. */
function passThrough<T extends object>(target: T, injected: Record<string, unknown>): T {
  return new Proxy(target, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in injected && prop in target) return injected[prop];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
