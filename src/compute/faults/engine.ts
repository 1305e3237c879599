/**
 * The engine-side faults: the engine driver wrapped so that a checkpoint, a shell, a restore
 * fails or waits, the CPU features image is replaced, or post-copy's pages are paced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CheckpointFailed, TransferFailed } from '../../common/errors.js';
import { sleep } from '../../common/sleep.js';
import type { EngineDriver, LazyPagesCapability } from '../driver.js';
import { pagePaceRelay } from './pages.js';
import type { Faults } from './settings.js';

/** How often a page relay looks whether its page server still serves. */
const RELAY_CHECK_MS = 500;

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

/**
 * The lazy pages with `throttlePagesBytesPerSec` applied: the page tunnel listens on loopback,
 * the target reaches it through a relay at the requested address that paces the pages (pages.ts).
 */
export function withPacedPages(lazy: LazyPagesCapability, current: () => Faults): LazyPagesCapability {
  const injected: Partial<LazyPagesCapability> = {
    async checkpointLazy(containerId, name, opts) {
      const pace = current().throttlePagesBytesPerSec;
      if (!pace) return lazy.checkpointLazy(containerId, name, opts);
      const r = await lazy.checkpointLazy(containerId, name, { ...opts, pageServerPort: 0, bindAddress: '127.0.0.1' });
      const relay = await pagePaceRelay({
        bindAddress: opts.bindAddress ?? '0.0.0.0',
        port: opts.pageServerPort,
        upstream: { host: '127.0.0.1', port: r.page_server.port },
        bytesPerSec: pace,
      });
      const watch = setInterval(() => {
        if (lazy.pageServerStatus(name).state === 'serving') return;
        clearInterval(watch);
        relay.close();
      }, RELAY_CHECK_MS);
      watch.unref();
      return { ...r, page_server: { ...r.page_server, port: relay.port } };
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
