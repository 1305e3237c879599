/**
 * At a target agent's start, a lazy restore left by its earlier run is ended with its copy: the
 * work dirs go, and a copy still running (its unfetched pages would read as zeros) is killed and
 * awaited until the engine shows it stopped. A copy already stopped or gone is left as it is.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, jest, test } from '@jest/globals';
import { dockerDriverOn } from './docker-driver.js';

let workDir: string;
beforeEach(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-leftovers-'));
});
afterEach(() => fs.rmSync(workDir, { recursive: true, force: true }));

/** An engine with containers by 12-character id: running or not; kill stops one after a few inspections. */
function engineWith(containers: Record<string, boolean>) {
  const killed: string[] = [];
  const inspections: Record<string, number> = {};
  const engine = {
    getContainer: (id: string) => ({
      inspect: () => {
        if (!(id in containers)) return Promise.reject(Object.assign(new Error(`no such container ${id}`), { statusCode: 404 }));
        inspections[id] = (inspections[id] ?? 0) + 1;
        // The engine shows a killed copy stopped only a moment later.
        const running = containers[id] && !(killed.includes(id) && inspections[id] > 3);
        return Promise.resolve({ State: { Running: running } });
      },
      kill: (opts: { signal: string }) => {
        expect(opts.signal).toBe('SIGKILL');
        killed.push(id);
        return Promise.resolve();
      },
    }),
  };
  return { engine, killed, inspections };
}

function driverOn(engine: unknown) {
  return dockerDriverOn(engine, { workDir });
}

test('a running copy of a leftover lazy restore is killed and awaited; stopped or gone copies are left; every work dir goes', async () => {
  const running = 'aaaaaaaaaaaa';
  const stopped = 'bbbbbbbbbbbb';
  const gone = 'cccccccccccc';
  const lazy = path.join(workDir, 'lazy-pages');
  for (const d of [`${running}-ferry-m1`, `${stopped}-ferry-m2`, `${gone}-ferry-m3`, 'not-a-container-dir']) {
    fs.mkdirSync(path.join(lazy, d), { recursive: true });
  }
  const { engine, killed, inspections } = engineWith({ [running]: true, [stopped]: false });
  const ended = await driverOn(engine).endLeftovers();
  expect(killed).toEqual([running]);
  expect(inspections[running]).toBeGreaterThan(3); // waited until the engine showed it stopped
  expect(ended).toContain(`copy ${running} stopped (its pages never all arrived)`);
  expect(ended.filter((e) => e.startsWith('copy '))).toHaveLength(1);
  expect(ended.filter((e) => e.startsWith('lazy restore '))).toHaveLength(4);
  expect(fs.readdirSync(lazy)).toEqual([]);
});

test('no lazy-pages folder: nothing to end', async () => {
  const { engine, killed } = engineWith({});
  expect(await driverOn(engine).endLeftovers()).toEqual([]);
  expect(killed).toEqual([]);
});

test('the lazy-pages folder is read once for both the work dirs and the copies', async () => {
  const id = 'dddddddddddd';
  const lazy = path.join(workDir, 'lazy-pages');
  fs.mkdirSync(path.join(lazy, `${id}-ferry-m4`), { recursive: true });
  const { engine, killed } = engineWith({ [id]: true });
  const reads = jest.spyOn(fs, 'readdirSync');
  try {
    const ended = await driverOn(engine).endLeftovers();
    expect(ended).toContain(`copy ${id} stopped (its pages never all arrived)`);
    expect(reads.mock.calls.filter(([dir]) => dir === lazy)).toHaveLength(1);
  } finally {
    reads.mockRestore();
  }
  expect(killed).toEqual([id]);
});
