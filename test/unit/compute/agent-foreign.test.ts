/**
 * An agent acts only on what its own records say a migration owns (found by the bad-input
 * suite): cleanup_source and rollback_at_source never remove or start a container a caller
 * names for a migration this host has no record of, or for the wrong container; a spec the
 * target refuses leaves no record behind. Scripted engine driver, real record store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { MigrationAgent } from '../../../src/compute/agent.js';
import type { ContainerSpec, EngineDriver } from '../../../src/compute/driver.js';

type State = { exists: boolean; running: boolean; status: string; name: string | null };

const stopped: State = { exists: true, running: false, status: 'exited', name: 'web' };

/** A driver that answers what the test scripts and records every engine change it is asked for. */
function fakeDriver(state: Map<string, State>, calls: string[], extra: Partial<EngineDriver> = {}): EngineDriver {
  const base: Partial<EngineDriver> = {
    host: 'c1',
    containerState: async (id) => state.get(id) ?? { exists: false, running: false, status: 'absent', name: null },
    shellsOf: async () => [],
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
    announce: async () => true,
    releaseRestarts: async (id) => void calls.push(`release ${id}`),
    connectionsPreserved: () => true,
    checkpointName: (id) => `ferry-${id}`,
    stagingRoot: async () => fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stage-')),
    ...extra,
  };
  return new Proxy(base as EngineDriver, {
    get(t, p) {
      if (p in t) return (t as unknown as Record<string | symbol, unknown>)[p];
      return () => Promise.reject(new Error(`unexpected driver call ${String(p)}`));
    },
  });
}

function agentWith(driver: EngineDriver): MigrationAgent {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-agent-'));
  return new MigrationAgent({ driver, workDir, bindHost: '127.0.0.1', port: 0, maxTransferBytes: 1e6 });
}

const spec = { id: 'cid', name: 'web', image: { id: 'sha256:x', ref: null }, networks: [], volumes: [], binds: [], devices: [], create: {} } as unknown as ContainerSpec;

/** A source record of migration `id` for container `cid`, as check_can_migrate_source leaves it. */
function sourceRecord(agent: MigrationAgent, id: string, cid: string): void {
  const r = agent.records.create(id, 'source', 'c2');
  agent.records.save({ ...r, stage: 'sent', container_id: cid, spec: { ...spec, id: cid } });
}

describe('cleanup_source', () => {
  it('removes the stopped container its record names (the rule below does not stop a real cleanup)', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['cid', stopped]]), calls));
    sourceRecord(agent, 'm1', 'cid');
    expect(await agent.cleanupSource({ migration_id: 'm1', container_id: 'cid' })).toEqual({ container_removed: true, volumes_removed: [] });
    expect(calls).toEqual(['remove cid']);
  });

  it('of a migration this host has no record of: nothing removed, whatever container is named', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['other', stopped]]), calls));
    expect(await agent.cleanupSource({ migration_id: 'never-here', container_id: 'other' })).toEqual({ container_removed: false, volumes_removed: [] });
    expect(calls).toEqual([]);
  });

  it('naming another container than the record has: refused, nothing removed', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['cid', stopped], ['other', stopped]]), calls));
    sourceRecord(agent, 'm1', 'cid');
    await expect(agent.cleanupSource({ migration_id: 'm1', container_id: 'other' })).rejects.toMatchObject({ name: 'InvalidInput' });
    expect(calls).toEqual([]);
  });

  it('on the target of that migration (a target record): nothing removed', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['cid', stopped]]), calls));
    const r = agent.records.create('m1', 'target', 'c2');
    agent.records.save({ ...r, stage: 'prepared', container_id: 'cid' });
    expect(await agent.cleanupSource({ migration_id: 'm1', container_id: 'cid' })).toEqual({ container_removed: false, volumes_removed: [] });
    expect(calls).toEqual([]);
  });
});

describe('rollback_at_source', () => {
  it('starts the container its record names again (the rule below does not stop a real rollback)', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['cid', stopped]]), calls));
    sourceRecord(agent, 'm1', 'cid');
    expect(await agent.rollbackAtSource({ migration_id: 'm1', container_id: 'cid' })).toMatchObject({ container_id: 'cid', running: true });
    expect(calls).toContain('start cid');
  });

  it('of a migration this host has no record of: MigrationNotFound, nothing started', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['other', stopped]]), calls));
    await expect(agent.rollbackAtSource({ migration_id: 'never-here', container_id: 'other' })).rejects.toMatchObject({ name: 'MigrationNotFound' });
    expect(calls).toEqual([]);
  });

  it('naming another container than the record has: refused, nothing started', async () => {
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(new Map([['cid', stopped], ['other', stopped]]), calls));
    sourceRecord(agent, 'm1', 'cid');
    await expect(agent.rollbackAtSource({ migration_id: 'm1', container_id: 'other' })).rejects.toMatchObject({ name: 'InvalidInput' });
    expect(calls).toEqual([]);
  });
});

describe('pre_migration', () => {
  it('of a spec the target refuses: the refusal, and no record kept', async () => {
    const calls: string[] = [];
    const refusal = { reason: 'privileged', message: 'container web is privileged' };
    const agent = agentWith(fakeDriver(new Map(), calls, { destinationRefusals: async () => [refusal] }));
    await expect(
      agent.preMigration({ migration_id: 'm2', source_host: 'c2', spec: { ...spec, privileged: true }, export: { address: '127.0.0.1:1', token: 't'.repeat(32) } }),
    ).rejects.toMatchObject({ name: 'MigrationPreCheckError', message: expect.stringMatching(/privileged/) });
    expect(agent.load('m2')).toBeNull();
    expect(calls).toEqual([]);
  });
});
