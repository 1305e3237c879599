/**
 * The agent's own safety rules, with a scripted engine driver (pure logic; the real engines
 * are in test/integration): one step per migration at a time, the same step asked twice runs
 * once, a running target refuses rollback, arguments are checked, and a restarted agent
 * brings its records in line with the engine.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentWith, fakeDriver, spec, type State } from './fake-driver.js';
import { ComputeManager } from '../../../src/compute/manager.js';
import { sleep } from '../../../src/common/sleep.js';

describe('one step per migration at a time', () => {
  it('another step waits for the running one; the same step joins it', async () => {
    const agent = agentWith(fakeDriver(new Map(), []));
    const order: string[] = [];
    const slow = agent.serialize('m1', 'live_migration', async () => {
      order.push('live start');
      await sleep(50);
      order.push('live end');
      return 'live';
    });
    const again = agent.serialize('m1', 'live_migration', async () => {
      order.push('second live run');
      return 'again';
    });
    const rollback = agent.serialize('m1', 'rollback_at_source', async () => {
      order.push('rollback');
      return 'rb';
    });
    const other = agent.serialize('m2', 'live_migration', async () => {
      order.push('other migration');
      return 'm2';
    });
    expect(await Promise.all([slow, again, rollback, other])).toEqual(['live', 'live', 'rb', 'm2']);
    expect(order).toEqual(['live start', 'other migration', 'live end', 'rollback']);
  });

  it('the RPC dispatch is where steps of one migration are serialised: a second step waits for the running one', async () => {
    const order: string[] = [];
    const state = new Map<string, State>([['t1', { exists: true, running: false, status: 'created', name: 'web' }]]);
    const agent = agentWith(
      fakeDriver(state, [], {
        removeContainer: async () => {
          order.push('remove start');
          await sleep(80);
          order.push('remove end');
          return true;
        },
      }),
    );
    agent.records.save({ ...agent.records.create('m1', 'target', 'c1'), stage: 'received', container_id: 't1', spec: { ...spec, id: 't1' } });
    const manager = new ComputeManager(agent);
    const rollback = manager.dispatch('rollback_at_destination', { migration_id: 'm1' });
    const status = manager.dispatch('post_copy_status', { migration_id: 'm1' }).then(
      () => order.push('status answered'),
      () => order.push('status answered'),
    );
    await Promise.all([rollback, status]);
    expect(order).toEqual(['remove start', 'remove end', 'status answered']);
  });

  it('a failed step does not block the next one', async () => {
    const agent = agentWith(fakeDriver(new Map(), []));
    await expect(agent.serialize('m1', 'a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await agent.serialize('m1', 'b', async () => 'ok')).toBe('ok');
  });
});

describe('never roll back once the target runs', () => {
  it('rollback_at_destination refuses while the shell runs, and removes it when stopped', async () => {
    const state = new Map<string, State>([['shell', { exists: true, running: true, status: 'running', name: 'web' }]]);
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(state, calls, { shellsOf: async () => ['shell'] }));
    await expect(agent.rollbackAtDestination({ migration_id: 'm1' })).rejects.toMatchObject({ name: 'TargetRunsContainer' });
    expect(calls).not.toContain('remove shell');
    state.set('shell', { exists: true, running: false, status: 'created', name: 'web' });
    expect((await agent.rollbackAtDestination({ migration_id: 'm1' })).container_removed).toBe(true);
  });
});

describe('arguments are checked before a step runs', () => {
  it('names the bad field', async () => {
    const manager = new ComputeManager(agentWith(fakeDriver(new Map(), [])));
    await expect(manager.dispatch('live_migration', { migration_id: '../etc', upload: { address: 'a:1', token: 'x'.repeat(20) } })).rejects.toThrow(
      /migration_id: migration_id must be a plain name/,
    );
    await expect(
      manager.dispatch('pre_migration', { migration_id: 'm1', source_host: 'c1', spec: { id: 1 }, export: { address: 'a:1', token: 'x'.repeat(20) } }),
    ).rejects.toThrow(/spec: spec must be a container spec/);
    await expect(manager.dispatch('rollback_at_destination', {})).rejects.toThrow(/migration_id/);
  });
});

describe('a restarted agent resumes its records', () => {
  it('a target whose container runs was restored; a source whose container runs was never frozen', async () => {
    const state = new Map<string, State>([
      ['t1', { exists: true, running: true, status: 'running', name: 'web' }],
      ['s1', { exists: true, running: true, status: 'running', name: 'db' }],
      ['s2', { exists: true, running: false, status: 'exited', name: 'cache' }],
    ]);
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(state, calls));
    const save = (id: string, role: 'source' | 'target', stage: 'received' | 'frozen', cid: string) => {
      const r = agent.records.create(id, role, 'peer');
      agent.records.save({ ...r, stage, container_id: cid, spec: { ...spec, id: cid } });
    };
    save('mt', 'target', 'received', 't1');
    save('ms', 'source', 'frozen', 's1');
    save('mf', 'source', 'frozen', 's2');
    expect((await agent.resume()).sort()).toEqual(['ms', 'mt']);
    expect(agent.load('mt')).toMatchObject({ stage: 'restored', post: { running: true, container_id: 't1' } });
    expect(agent.load('ms')?.stage).toBe('checked');
    expect(calls).toContain('release s1');
    expect(agent.load('mf')?.stage).toBe('frozen'); // stopped with its checkpoint: the conductor decides
  });
});

describe('start() is where records are resumed and leftovers ended', () => {
  it('a starting agent ends leftovers before it looks at any record, then resumes them', async () => {
    const state = new Map<string, State>([['t1', { exists: true, running: true, status: 'running', name: 'web' }]]);
    const calls: string[] = [];
    const agent = agentWith(
      fakeDriver(state, calls, {
        endLeftovers: async () => {
          calls.push('end leftovers');
          return ['lazy restore x'];
        },
        containerState: async (id) => {
          calls.push(`state ${id}`);
          return state.get(id) ?? { exists: false, running: false, status: 'absent', name: null };
        },
      }),
    );
    agent.records.save({ ...agent.records.create('mt', 'target', 'peer'), stage: 'received', container_id: 't1', spec: { ...spec, id: 't1' } });
    await agent.start();
    try {
      expect(calls.slice(0, 2)).toEqual(['end leftovers', 'state t1']);
      expect(agent.load('mt')?.stage).toBe('restored');
    } finally {
      await agent.stop();
    }
  });
});

describe('a restarted agent and a post-copy the earlier run served', () => {
  it("ends the orphaned CRIU page server by PID and keeps the source frozen (it is not 'never frozen')", async () => {
    // "CRIU" is a copy of sleep named criu; the record names it as the page server.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-orphan-'));
    fs.copyFileSync('/bin/sleep', path.join(dir, 'criu'));
    const criu = spawn(path.join(dir, 'criu'), ['300'], { stdio: 'ignore' });
    const gone = new Promise<string | null>((resolve) => criu.once('exit', (_c, sig) => resolve(sig)));
    try {
      // A lazily frozen source still shows as running.
      const state = new Map<string, State>([['s1', { exists: true, running: true, status: 'running', name: 'db' }]]);
      const calls: string[] = [];
      const agent = agentWith(fakeDriver(state, calls));
      const r = agent.records.create('mp', 'source', 'peer');
      agent.records.save({
        ...r,
        stage: 'frozen',
        mode: 'post-copy',
        container_id: 's1',
        spec: { ...spec, id: 's1' },
        page_server_pid: criu.pid,
        page_carrier_pid: null,
      });
      expect(await agent.resume()).toEqual(['mp']);
      expect(await gone).toBe('SIGKILL');
      expect(agent.load('mp')).toMatchObject({ stage: 'frozen', page_server_pid: null });
      expect(calls).toEqual([]); // no restart policy given back: it stays frozen for the conductor
    } finally {
      if (criu.exitCode === null && criu.signalCode === null) criu.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a step asked again answers from the record', () => {
  it('post_migration and live_migration return what they returned before, without touching the engine', async () => {
    const agent = agentWith(fakeDriver(new Map(), [], { stagingRoot: undefined }));
    const post = {
      container_id: 't1',
      running: true,
      restored_at: 5,
      place_ms: 1,
      restore_ms: 2,
      garp_sent: true,
      connections_preserved: true,
      post_copy: false,
    };
    agent.records.save({ ...agent.records.create('mt', 'target', 'c1'), stage: 'restored', container_id: 't1', spec, post });
    expect(await agent.postMigrationAtDestination({ migration_id: 'mt' })).toEqual(post);
    const live = {
      mode: 'stop-and-copy' as const,
      page_server: null,
      memory_total_bytes: 4,
      container_id: 'cid',
      checkpoint_name: 'ferry-ms',
      fast_checkpoint: true,
      frozen_at: 1,
      checkpoint_ms: 2,
      transfer_ms: 3,
      memory_bytes: 4,
      rootfs_bytes: 5,
      volume_bytes: 0,
      transferred_bytes: 9,
      parts: [],
    };
    agent.records.save({ ...agent.records.create('ms', 'source', 'c2'), stage: 'sent', container_id: 'cid', spec, live });
    expect(await agent.liveMigration({ migration_id: 'ms', upload: { address: 'a:1', token: 'x'.repeat(20) } })).toEqual(live);
  });
});

describe('the source is removed only after the target runs it', () => {
  it('cleanup_source refuses while the source container runs', async () => {
    const state = new Map<string, State>([['cid', { exists: true, running: true, status: 'running', name: 'web' }]]);
    const calls: string[] = [];
    const agent = agentWith(fakeDriver(state, calls));
    agent.records.save({ ...agent.records.create('m1', 'source', 'c2'), stage: 'sent', container_id: 'cid', spec });
    await expect(agent.cleanupSource({ migration_id: 'm1', container_id: 'cid' })).rejects.toThrow(
      /is running on c2: the source is removed only after the target runs it/,
    );
    expect(calls).not.toContain('remove cid');
  });
});
