/**
 * An evacuation of compute1 to compute2 with a fault injected while it runs (the RabbitMQ and
 * Galera cluster tests): small counters started on compute1, the evacuation through the API, the
 * fault after the first container completed and before the last, then what must hold afterwards
 * (the record completed, each counter once on compute2, running, counting on from its value).
 */
import { expect } from '@jest/globals';
import { sleep } from '../../src/common/sleep.js';
import type { Evacuation } from '../../src/objects/evacuation.js';
import type { Migration } from '../../src/objects/migration.js';
import { ensureImage } from '../../src/soak/cloud.js';
import { containerOn, engine, lastNumber, removeQuietly } from './docker.js';
import { admin, waitKnown } from './ferry.js';
import { enableHosts, moveBack } from './hosts.js';

const COUNTER = 'ferry/counter:latest';

/** Poll an evacuation until it is no longer running; `peak` is the most migrations seen in flight. */
export async function waitEvacuation(uuid: string, timeoutMs: number, onPoll?: (e: Evacuation) => Promise<void>): Promise<{ e: Evacuation; peak: number }> {
  const deadline = Date.now() + timeoutMs;
  let peak = 0;
  for (;;) {
    // A fault test's broker or database node may be down for a moment: the API's answer then is asked again.
    const r = await admin<{ evacuation: Evacuation }>('GET', `/v1/evacuations/${uuid}`).catch(() => null);
    if (r?.status !== 200) {
      if (Date.now() > deadline) throw new Error(`evacuation ${uuid} unreadable after ${timeoutMs} ms: ${r?.status ?? 'no answer'}`);
      await sleep(500);
      continue;
    }
    peak = Math.max(peak, r.body.evacuation.counts.migrating);
    if (r.body.evacuation.status !== 'running') return { e: r.body.evacuation, peak };
    if (onPoll) await onPoll(r.body.evacuation);
    if (Date.now() > deadline) throw new Error(`evacuation ${uuid} still running after ${timeoutMs} ms: ${JSON.stringify(r.body.evacuation.counts)}`);
    await sleep(250);
  }
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export interface FaultedEvacuation {
  seconds: number;
  /** Containers completed when the fault was injected. */
  completedAtFault: number;
  /** From the fault to the evacuation's end, as the test saw it. */
  afterFaultSeconds: number;
  freezeMs: number[];
  summary: string;
}

/** `count` counters on compute1 (name prefix `tag`), evacuated to compute2 with `fault` run mid-way; `cleanUp` removes them. */
export function faultedEvacuation(tag: string, count: number, maxParallel: number) {
  const names = Array.from({ length: count }, (_, i) => `${tag}-counter${i + 1}`);
  const foreign = new Set<string>();
  const c1 = () => engine('compute1');
  const c2 = () => engine('compute2');

  async function start(): Promise<void> {
    await ensureImage(c1(), c2(), COUNTER);
    for (const n of names) await (await c1().createContainer({ Image: COUNTER, name: n, Env: ['COUNTER_INTERVAL=0.2'] })).start();
    for (const n of names) await waitKnown(n, 'compute1', 60_000);
  }

  async function run(fault: (e: Evacuation) => Promise<void>): Promise<FaultedEvacuation> {
    const before = new Map<string, number>();
    for (const n of names) before.set(n, await lastNumber(c1(), (await containerOn(c1(), n))!.Id));
    const t0 = Date.now();
    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', { target_host: 'compute2', max_parallel: maxParallel });
    expect(r.status).toBe(202);
    let completedAtFault = -1;
    let faultAt = 0;
    const { e } = await waitEvacuation(r.body.evacuation.uuid, 240_000, async (now) => {
      if (completedAtFault >= 0 || now.counts.completed < 1) return;
      completedAtFault = now.counts.completed;
      faultAt = Date.now();
      await fault(now);
    });
    const seconds = (Date.now() - t0) / 1000;
    const afterFaultSeconds = (Date.now() - faultAt) / 1000;
    for (const c of e.containers) if (!names.includes(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    expect(e.status).toBe('completed');
    // The fault landed inside the evacuation: after the first container, before the last.
    expect(completedAtFault).toBeGreaterThanOrEqual(1);
    expect(completedAtFault).toBeLessThan(e.containers.length);

    // Exactly once: one completed migration per container, the one the evacuation lists; on compute2 only, running.
    const byName = new Map(e.containers.map((c) => [c.container_name, c]));
    const freezeMs: number[] = [];
    for (const n of names) {
      const list = (await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${n}`)).body.migrations.filter((m) => m.container_name === n);
      expect(list.map((m) => [m.uuid, m.status, m.source_host, m.dest_host])).toEqual([[byName.get(n)!.migration_uuid, 'completed', 'compute1', 'compute2']]);
      if (list[0].freeze_ms !== null) freezeMs.push(list[0].freeze_ms);
      expect(await containerOn(c1(), n)).toBeNull();
      expect((await containerOn(c2(), n))?.State).toBe('running');
    }
    // State kept: each counter goes on from where it was, and keeps counting.
    await sleep(600);
    for (const n of names) {
      const id = (await containerOn(c2(), n))!.Id;
      const first = await lastNumber(c2(), id);
      expect([n, first >= before.get(n)!]).toEqual([n, true]);
      await sleep(300);
      expect([n, (await lastNumber(c2(), id)) > first]).toEqual([n, true]);
    }
    expect(freezeMs).toHaveLength(count);
    freezeMs.sort((a, b) => a - b);
    const summary =
      `evacuated ${count} counters compute1 -> compute2 (max_parallel ${maxParallel}) in ${seconds.toFixed(1)} s, fault after ${completedAtFault} completed, end ${afterFaultSeconds.toFixed(1)} s after it; ` +
      `downtime (freeze_ms) min ${freezeMs[0]} median ${quantile(freezeMs, 0.5)} p90 ${quantile(freezeMs, 0.9)} max ${freezeMs[freezeMs.length - 1]} ms`;
    return { seconds, completedAtFault, afterFaultSeconds, freezeMs, summary };
  }

  /** Remove the counters, enable compute1 again (the evacuation disabled it), bring other tests' containers home. */
  async function cleanUp(): Promise<void> {
    for (const n of names) for (const d of [c1(), c2()]) await removeQuietly(d, n);
    await enableHosts(['compute1']);
    await moveBack(foreign, 90_000);
  }

  return { names, start, run, cleanUp };
}
