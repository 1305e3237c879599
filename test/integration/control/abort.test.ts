/**
 * Abort before and after the freeze, a conductor killed mid-migration, and the per-host
 * queue. The compute agents are restarted with fault injection (a pause inside a step)
 * to open a window at the right moment; everything else is the real path.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import type Docker from 'dockerode';
import type { Migration } from '../../../src/objects/migration.js';
import { engine, lastNumber, logs, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { sleep } from '../../../src/common/sleep.js';
import { admin, getMigration, restartServices, startMigration, waitKnown, waitMigration } from '../../helpers/ferry.js';

const c1 = engine('compute1');
const c2 = engine('compute2');
const names: string[] = [];

async function counterOn1(prefix: string): Promise<Docker.Container> {
  const name = uniqueName(prefix);
  names.push(name);
  const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name, Env: ['COUNTER_INTERVAL=0.2'] });
  await ct.start();
  await waitKnown(name, 'compute1');
  return ct;
}

async function runningOn(d: Docker, name: string): Promise<boolean> {
  const l = await d.listContainers({ filters: { name: [`^/${name}$`] } });
  return l.length === 1 && l[0].State === 'running';
}

async function existsOn(d: Docker, name: string): Promise<boolean> {
  return (await d.listContainers({ all: true, filters: { name: [`^/${name}$`] } })).length > 0;
}

const faults = (f: Record<string, unknown>) => ({ FERRY_ENABLE_FAULTS: '1', FERRY_FAULTS: JSON.stringify(f) });

afterAll(async () => {
  await restartServices(['ferry-compute-compute1', 'ferry-compute-compute2']);
  for (const n of names) {
    await removeQuietly(c1, n);
    await removeQuietly(c2, n);
  }
});

describe('abort', () => {
  it('before the freeze: cancelled, the container never stopped, nothing left on the target', async () => {
    await restartServices(['ferry-compute-compute2'], faults({ delayPreMigrationMs: 8000 }));
    const ct = await counterOn1('abort-pre');
    const name = (await ct.inspect()).Name.slice(1);
    const before = (await ct.inspect()).State;
    const m0 = await startMigration(name, 'compute2');
    await waitMigration(m0.uuid, (m) => m.status === 'pre-migrating' && m.phase === 'prepare', 30_000);
    const r = await admin<{ migration: Migration }>('DELETE', `/v1/migrations/${m0.uuid}`);
    expect(r.status).toBe(202);
    expect(r.body.migration.abort_requested).toBe(true);
    const m = await waitMigration(m0.uuid);
    expect(m.status).toBe('cancelled');
    const after = (await ct.inspect()).State;
    expect(after.Running).toBe(true);
    expect(after.Pid).toBe(before.Pid); // the same process: never frozen
    expect(after.StartedAt).toBe(before.StartedAt);
    expect(await existsOn(c2, name)).toBe(false);
  });

  it('after the freeze: rolled back, running on the source with its state', async () => {
    await restartServices(['ferry-compute-compute2']);
    await restartServices(['ferry-compute-compute1'], faults({ delayAfterCheckpointMs: 6000 }));
    const ct = await counterOn1('abort-post');
    const name = (await ct.inspect()).Name.slice(1);
    await sleep(1500);
    const m0 = await startMigration(name, 'compute2');
    await waitMigration(m0.uuid, (m) => m.status === 'running', 60_000);
    const frozenAt = await lastNumber(c1, ct.id);
    expect((await admin('DELETE', `/v1/migrations/${m0.uuid}`)).status).toBe(202);
    const m = await waitMigration(m0.uuid);
    expect(m.status).toBe('cancelled');
    expect(m.phase).toBe('rolled-back');
    expect(await runningOn(c1, name)).toBe(true);
    expect(await existsOn(c2, name)).toBe(false);
    await sleep(1500);
    // Restored from its checkpoint: the count goes on from where it froze, it did not restart at 1.
    const lines = (await logs(c1, ct.id)).trim().split('\n').map(Number);
    const resumed = lines.slice(lines.indexOf(frozenAt) + 1);
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed[0]).toBe(frozenAt + 1);
  });
});

describe('conductor killed in the middle of a migration', () => {
  it('is brought to a definite end after the restart; the container runs on exactly one host', async () => {
    await restartServices(['ferry-compute-compute1'], faults({ delayAfterCheckpointMs: 5000 }));
    const ct = await counterOn1('crash');
    const name = (await ct.inspect()).Name.slice(1);
    const m0 = await startMigration(name, 'compute2');
    await waitMigration(m0.uuid, (m) => m.status === 'running', 60_000);
    await restartServices(['ferry-conductor'], {}, true);
    const m = await waitMigration(m0.uuid);
    expect(['completed', 'failed']).toContain(m.status);
    if (m.status === 'failed') expect(m.phase).toBe('rolled-back');
    const on1 = await runningOn(c1, name);
    const on2 = await runningOn(c2, name);
    expect(on1 !== on2).toBe(true);
    expect(m.status === 'completed' ? on2 : on1).toBe(true);
  });
});

describe('two migrations from the same source host', () => {
  it('the second waits until the first has ended', async () => {
    await restartServices(['ferry-compute-compute1']);
    const a = await counterOn1('queue-a');
    const b = await counterOn1('queue-b');
    const ma = await startMigration((await a.inspect()).Name.slice(1), 'compute2');
    const mb = await startMigration((await b.inspect()).Name.slice(1), 'compute2');
    let overlap = false;
    let sawQueued = false;
    for (;;) {
      const [x, y] = await Promise.all([getMigration(ma.uuid), getMigration(mb.uuid)]);
      const active = (m: Migration) => !['accepted', 'completed', 'failed', 'cancelled'].includes(m.status);
      if (active(x) && active(y)) overlap = true;
      if (active(x) && y.status === 'accepted') sawQueued = true;
      if (['completed', 'failed', 'cancelled'].includes(y.status)) break;
      await sleep(50);
    }
    expect(overlap).toBe(false);
    expect(sawQueued).toBe(true);
    expect((await getMigration(ma.uuid)).status).toBe('completed');
    expect((await getMigration(mb.uuid)).status).toBe('completed');
  });
});
