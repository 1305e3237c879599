/**
 * A scripted engine driver for the agent's unit tests (pure logic): containers' states come
 * from a map the test fills, engine changes are recorded in `calls`, and any call the test did
 * not script fails loudly. Plus an agent over it with a real record store in a temp folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MigrationAgent } from '../../../src/compute/agent.js';
import type { ContainerSpec, EngineDriver } from '../../../src/compute/driver.js';

export type State = { exists: boolean; running: boolean; status: string; name: string | null };

export function fakeDriver(state: Map<string, State>, calls: string[], extra: Partial<EngineDriver> = {}, host = 'c2'): EngineDriver {
  const base: Partial<EngineDriver> = {
    host,
    containerState: async (id) => state.get(id) ?? { exists: false, running: false, status: 'absent', name: null },
    shellsOf: async () => [],
    endLeftovers: async () => [],
    removeContainer: async (id) => {
      calls.push(`remove ${id}`);
      state.delete(id);
      return true;
    },
    start: async (id) => void calls.push(`start ${id}`),
    restore: async (id) => {
      calls.push(`restore ${id}`);
      return { container_id: id, pid: 1, restore_ms: 1 };
    },
    checkpointExists: async () => false,
    verifyRunning: async () => ({ running: true, pid: 1, status: 'running' }),
    volumeUsers: async () => [],
    removeVolume: async () => true,
    removeImage: async () => false,
    announce: async () => {
      calls.push('announce');
      return true;
    },
    releaseRestarts: async (id) => void calls.push(`release ${id}`),
    connectionsPreserved: () => true,
    checkpointName: (id) => `ferry-${id}`,
    stagingRoot: async () => fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stage-')),
    ...extra,
  };
  return new Proxy(base as EngineDriver, {
    get(t, p) {
      if (p in t) return (t as unknown as Record<string | symbol, unknown>)[p];
      if (p === 'lazyPages') return undefined; // a capability, not a call: absent unless the test gives one
      return () => Promise.reject(new Error(`unexpected driver call ${String(p)}`));
    },
  });
}

export function agentWith(driver: EngineDriver): MigrationAgent {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-agent-'));
  return new MigrationAgent({ driver, workDir, bindHost: '127.0.0.1', port: 0, maxTransferBytes: 1e6 });
}

export const spec = {
  id: 'cid',
  name: 'web',
  image: { id: 'sha256:x', ref: null },
  networks: [],
  volumes: [],
  binds: [],
  devices: [],
  create: {},
} as unknown as ContainerSpec;
