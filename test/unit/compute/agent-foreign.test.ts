/**
 * An agent acts only on what its own records say a migration owns (found by the bad-input
 * suite): cleanup_source and rollback_at_source never remove or start a container a caller
 * names for a migration this host has no record of, or for the wrong container; a spec the
 * target refuses leaves no record behind. Scripted engine driver, real record store.
 */
import { describe, expect, it } from '@jest/globals';
import type { MigrationAgent } from '../../../src/compute/agent.js';
import type { EngineDriver } from '../../../src/compute/driver.js';
import { agentWith, fakeDriver, spec, type State } from './fake-driver.js';

const stopped: State = { exists: true, running: false, status: 'exited', name: 'web' };

/** The scripted driver as the source host c1. */
const scripted = (state: Map<string, State>, calls: string[], extra: Partial<EngineDriver> = {}) => fakeDriver(state, calls, extra, 'c1');

/** A source record of migration `id` for container `cid`, as check_can_migrate_source leaves it. */
function sourceRecord(agent: MigrationAgent, id: string, cid: string): void {
  const r = agent.records.create(id, 'source', 'c2');
  agent.records.save({ ...r, stage: 'sent', container_id: cid, spec: { ...spec, id: cid } });
}

describe('cleanup_source', () => {
  it('removes the stopped container its record names (the rule below does not stop a real cleanup)', async () => {
    const calls: string[] = [];
    const agent = agentWith(scripted(new Map([['cid', stopped]]), calls));
    sourceRecord(agent, 'm1', 'cid');
    expect(await agent.cleanupSource({ migration_id: 'm1', container_id: 'cid' })).toEqual({ container_removed: true, volumes_removed: [] });
    expect(calls).toEqual(['remove cid']);
  });

  it('of a migration this host has no record of: nothing removed, whatever container is named', async () => {
    const calls: string[] = [];
    const agent = agentWith(scripted(new Map([['other', stopped]]), calls));
    expect(await agent.cleanupSource({ migration_id: 'never-here', container_id: 'other' })).toEqual({ container_removed: false, volumes_removed: [] });
    expect(calls).toEqual([]);
  });

  it('naming another container than the record has: refused, nothing removed', async () => {
    const calls: string[] = [];
    const agent = agentWith(
      scripted(
        new Map([
          ['cid', stopped],
          ['other', stopped],
        ]),
        calls,
      ),
    );
    sourceRecord(agent, 'm1', 'cid');
    await expect(agent.cleanupSource({ migration_id: 'm1', container_id: 'other' })).rejects.toMatchObject({ name: 'InvalidInput' });
    expect(calls).toEqual([]);
  });

  it('on the target of that migration (a target record): nothing removed', async () => {
    const calls: string[] = [];
    const agent = agentWith(scripted(new Map([['cid', stopped]]), calls));
    const r = agent.records.create('m1', 'target', 'c2');
    agent.records.save({ ...r, stage: 'prepared', container_id: 'cid' });
    expect(await agent.cleanupSource({ migration_id: 'm1', container_id: 'cid' })).toEqual({ container_removed: false, volumes_removed: [] });
    expect(calls).toEqual([]);
  });
});

describe('rollback_at_source', () => {
  it('starts the container its record names again (the rule below does not stop a real rollback)', async () => {
    const calls: string[] = [];
    const agent = agentWith(scripted(new Map([['cid', stopped]]), calls));
    sourceRecord(agent, 'm1', 'cid');
    expect(await agent.rollbackAtSource({ migration_id: 'm1', container_id: 'cid' })).toMatchObject({ container_id: 'cid', running: true });
    expect(calls).toContain('start cid');
  });

  it('of a migration this host has no record of: MigrationNotFound, nothing started', async () => {
    const calls: string[] = [];
    const agent = agentWith(scripted(new Map([['other', stopped]]), calls));
    await expect(agent.rollbackAtSource({ migration_id: 'never-here', container_id: 'other' })).rejects.toMatchObject({ name: 'MigrationNotFound' });
    expect(calls).toEqual([]);
  });

  it('naming another container than the record has: refused, nothing started', async () => {
    const calls: string[] = [];
    const agent = agentWith(
      scripted(
        new Map([
          ['cid', stopped],
          ['other', stopped],
        ]),
        calls,
      ),
    );
    sourceRecord(agent, 'm1', 'cid');
    await expect(agent.rollbackAtSource({ migration_id: 'm1', container_id: 'other' })).rejects.toMatchObject({ name: 'InvalidInput' });
    expect(calls).toEqual([]);
  });
  it('of a migration only checked here (it failed before the freeze): the record is settled, the container untouched even when stopped', async () => {
    const calls: string[] = [];
    const agent = agentWith(scripted(new Map([['cid', stopped]]), calls));
    const r = agent.records.create('m1', 'source', 'c2');
    agent.records.save({ ...r, stage: 'checked', container_id: 'cid', spec: { ...spec, id: 'cid' } });
    expect(await agent.rollbackAtSource({ migration_id: 'm1', container_id: 'cid' })).toEqual({
      container_id: 'cid',
      running: false,
      from_checkpoint: false,
      state_kept: true,
    });
    expect(calls.filter((c) => !c.startsWith('state '))).toEqual([]);
    expect(agent.records.load('m1')?.stage).toBe('rolled_back');
  });
});

describe('pre_migration', () => {
  it('of a spec the target refuses: the refusal, and no record kept', async () => {
    const calls: string[] = [];
    const refusal = { reason: 'privileged', message: 'container web is privileged' };
    const agent = agentWith(scripted(new Map(), calls, { destinationRefusals: async () => [refusal] }));
    await expect(
      agent.preMigration({
        migration_id: 'm2',
        source_host: 'c2',
        spec: { ...spec, privileged: true },
        export: { address: '127.0.0.1:1', token: 't'.repeat(32) },
      }),
    ).rejects.toMatchObject({ name: 'MigrationPreCheckError', message: expect.stringMatching(/privileged/) });
    expect(agent.load('m2')).toBeNull();
    expect(calls).toEqual([]);
  });
});
