/**
 * Many compute hosts on the real development cloud: the test brings the cloud to five hosts itself
 * (`up --hosts 5`: compute3..compute5 each with its own namespace, Docker engine and agent) and
 * puts the default shape back at the end (`up --hosts 2`), a bounded window for the other
 * engineers' tests.
 *
 * compute1 runs MANY_HOSTS_CONTAINERS counters (20 by default); compute1 is evacuated through the
 * API with max_parallel 4: every counter ends on exactly one of the four other hosts, running and
 * counting on from where it was, with one completed migration; compute1 runs nothing; the
 * scheduler spread them (no host more than ceil(n/4) + 2). It prints what a host costs (RSS of
 * its dockerd, containerd and agent; seconds added to `up`), the spread, the evacuation's total
 * time and the containers' downtime (README.md, "Many compute hosts").
 * Whatever else the evacuation moved goes back to compute1 before the extra hosts are taken out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sleep } from '../../../src/common/sleep.js';
import { hostDirs, stateDir } from '../../../src/devcloud/layout.js';
import type { CloudStatus } from '../../../src/devcloud/status.js';
import type { Evacuation } from '../../../src/objects/evacuation.js';
import type { ComputeHost } from '../../../src/objects/host.js';
import type { Migration } from '../../../src/objects/migration.js';
import { engineOf } from '../../../src/soak/docker.js';
import { ensureImage } from '../../../src/soak/cloud.js';
import { cloud, runDevcloud } from '../../helpers/cloud.js';
import { containerOn, lastNumber, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { quantile, waitEvacuation } from '../../helpers/evacuation.js';
import { admin, waitKnown } from '../../helpers/ferry.js';
import { enableHosts, moveBack, setHost } from '../../helpers/hosts.js';

jest.setTimeout(600_000);

const HOSTS = 5;
const COUNT = Number(process.env.MANY_HOSTS_CONTAINERS ?? 20);
const MAX_PARALLEL = 4;
const NAMES = Array.from({ length: HOSTS }, (_, i) => `compute${i + 1}`);
const OTHERS = NAMES.slice(1);

/** ferry-devcloud as an operator runs it (services at the dev cloud's log level, no test-only environment). */
async function devcloud(args: string[]): Promise<{ stdout: string; seconds: number }> {
  const t0 = Date.now();
  const stdout = await runDevcloud(args);
  return { stdout, seconds: (Date.now() - t0) / 1000 };
}

/** Resident memory of a process, in MiB (0 when it is gone). */
function rssMiB(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** What one host costs in memory: its dockerd, the containerd dockerd started, and its ferry-compute agent. */
function hostRss(h: string): { dockerd: number; containerd: number; agent: number } {
  const dockerd = Number(fs.readFileSync(hostDirs(h).pidFile, 'utf8').trim());
  const containerd = childPids(dockerd).find((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'containerd');
  const agent = Number(fs.readFileSync(path.join(stateDir, 'run', `ferry-compute-${h}.pid`), 'utf8').trim());
  return { dockerd: rssMiB(dockerd), containerd: containerd ? rssMiB(containerd) : 0, agent: rssMiB(agent) };
}

async function waitHostsUp(names: string[], timeoutMs = 90_000): Promise<ComputeHost[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin<{ hosts: ComputeHost[] }>('GET', '/v1/hosts').catch(() => null);
    const up = r?.body.hosts?.filter((h) => names.includes(h.name) && h.state === 'up' && h.criu_ok) ?? [];
    if (up.length === names.length) return r!.body.hosts;
    if (Date.now() > deadline)
      throw new Error(`hosts not all up with CRIU within ${timeoutMs} ms: ${JSON.stringify(r?.body.hosts?.map((h) => [h.name, h.state]))}`);
    await sleep(1000);
  }
}

describe(`${HOSTS} compute hosts: compute1 evacuated with ${COUNT} containers, max_parallel ${MAX_PARALLEL}`, () => {
  const tag = uniqueName('many');
  const mine = Array.from({ length: COUNT }, (_, i) => `${tag}-counter${i + 1}`);
  const foreign = new Set<string>();
  let engines: Record<string, ReturnType<typeof engineOf>>;

  beforeAll(async () => {
    // Bad counts are refused before anything changes.
    for (const bad of ['1', '11', 'five']) {
      const r = await devcloud(['up', '--hosts', bad]).catch((e: { code: number; stderr: string }) => e);
      expect(r).toMatchObject({ code: 2, stderr: expect.stringContaining('--hosts must be a number from 2 to 10') });
    }
    const had = cloud().hosts.length;
    const grown = await devcloud(['up', '--hosts', String(HOSTS), '--json']);
    const s = JSON.parse(grown.stdout) as CloudStatus;
    expect(s.hosts.map((h) => [h.name, h.state])).toEqual(NAMES.map((n) => [n, 'up']));
    expect(new Set(s.hosts.map((h) => h.migration_address)).size).toBe(HOSTS);
    for (const n of NAMES) expect(s.services[`ferry-compute-${n}`]).toBe('up');
    engines = Object.fromEntries(s.hosts.map((h) => [h.name, engineOf(h)]));
    await waitHostsUp(NAMES);
    for (const n of NAMES) expect((await setHost(n, 'enabled')).status).toBe(200);

    const rss = NAMES.slice(2).map(hostRss);
    const mean = (k: keyof (typeof rss)[number]) => rss.reduce((a, r) => a + r[k], 0) / rss.length;
    const total = mean('dockerd') + mean('containerd') + mean('agent');
    console.log(
      `cost of a compute host (idle, mean of ${rss.length}): RSS ${total.toFixed(0)} MiB ` +
        `(dockerd ${mean('dockerd').toFixed(0)}, containerd ${mean('containerd').toFixed(0)}, ferry-compute ${mean('agent').toFixed(0)}); ` +
        `up --hosts ${HOSTS} on the running ${had}-host cloud took ${grown.seconds.toFixed(1)} s`,
    );

    for (const n of OTHERS) await ensureImage(engines.compute1, engines[n], 'ferry/counter:latest');
    for (const n of mine) await (await engines.compute1.createContainer({ Image: 'ferry/counter:latest', name: n, Env: ['COUNTER_INTERVAL=0.2'] })).start();
    for (const n of mine) await waitKnown(n, 'compute1', 60_000);
  }, 600_000);

  afterAll(async () => {
    await enableHosts(NAMES);
    for (const n of mine) for (const e of Object.values(engines ?? {})) await removeQuietly(e, n);
    // Before compute3.. are taken out: other tests' containers the evacuation moved come home.
    await moveBack(foreign, 90_000);
    // As an operator takes hosts out: disabled first, so that the scheduler never picks them while
    // their last heartbeat is still fresh (their records stay, down, after the agents stop).
    for (const n of NAMES.slice(2)) expect((await setHost(n, 'disabled', 'taken out of the development cloud (up --hosts 2)')).status).toBe(200);
    const s = JSON.parse((await devcloud(['up', '--hosts', '2', '--json'])).stdout) as CloudStatus;
    expect(s.hosts.map((h) => h.name)).toEqual(['compute1', 'compute2']);
    expect(s.services['ferry-compute-compute3']).toBeUndefined();
  }, 600_000);

  it('every container ends once on one of the other hosts, counting on; compute1 runs nothing; the scheduler spread them', async () => {
    // What the targets ran already (other tests' containers): the scheduler weighs it too.
    const already = new Map<string, number>();
    for (const h of OTHERS) already.set(h, (await engines[h].listContainers({ all: true })).length);
    const before = new Map<string, number>();
    for (const n of mine) before.set(n, await lastNumber(engines.compute1, (await containerOn(engines.compute1, n))!.Id));

    const t0 = Date.now();
    const r = await admin<{ evacuation: Evacuation }>('POST', '/v1/hosts/compute1/evacuate', { max_parallel: MAX_PARALLEL });
    expect(r.status).toBe(202);
    const { e, peak } = await waitEvacuation(r.body.evacuation.uuid, 480_000);
    const seconds = (Date.now() - t0) / 1000;
    for (const c of e.containers) if (!mine.includes(c.container_name) && c.status === 'completed') foreign.add(c.container_name);
    expect(e.status).toBe('completed');
    expect(peak).toBeLessThanOrEqual(MAX_PARALLEL);
    const byName = new Map(e.containers.map((c) => [c.container_name, c]));

    // Exactly once: one completed migration per container, the one the evacuation lists; on one host only.
    const spread = new Map<string, number>(OTHERS.map((h) => [h, 0]));
    const freeze: number[] = [];
    for (const n of mine) {
      const list = (await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${n}`)).body.migrations.filter((m) => m.container_name === n);
      expect(list).toHaveLength(1);
      const m = list[0];
      expect(m).toMatchObject({ status: 'completed', source_host: 'compute1', uuid: byName.get(n)!.migration_uuid });
      expect(OTHERS).toContain(m.dest_host);
      spread.set(m.dest_host!, spread.get(m.dest_host!)! + 1);
      if (m.freeze_ms !== null) freeze.push(m.freeze_ms);
      const where: string[] = [];
      for (const h of NAMES) if (await containerOn(engines[h], n)) where.push(h);
      expect(where).toEqual([m.dest_host]);
      expect((await containerOn(engines[m.dest_host!], n))?.State).toBe('running');
    }
    // State kept: each counter goes on from where it was, and keeps counting.
    await sleep(600);
    for (const n of mine) {
      const h = byName.get(n)!.dest_host!;
      const id = (await containerOn(engines[h], n))!.Id;
      const first = await lastNumber(engines[h], id);
      expect(first).toBeGreaterThanOrEqual(before.get(n)!);
      await sleep(300);
      expect(await lastNumber(engines[h], id)).toBeGreaterThan(first);
    }
    expect(await engines.compute1.listContainers()).toEqual([]); // nothing runs on compute1

    const counts = [...spread.values()];
    freeze.sort((a, b) => a - b);
    console.log(
      `evacuated ${COUNT} containers from compute1 over ${OTHERS.length} hosts with max_parallel ${MAX_PARALLEL} in ${seconds.toFixed(1)} s ` +
        `(peak ${peak} in flight); spread ${[...spread].map(([h, c]) => `${h} ${c} (had ${already.get(h)})`).join(', ')}; ` +
        `downtime (freeze_ms) min ${freeze[0]} median ${quantile(freeze, 0.5)} p90 ${quantile(freeze, 0.9)} max ${freeze[freeze.length - 1]} ms`,
    );
    expect(freeze).toHaveLength(COUNT);
    // The scheduler weighs each host's containers plus those on their way: an even spread, give or take.
    expect(Math.max(...counts)).toBeLessThanOrEqual(Math.ceil(COUNT / OTHERS.length) + 2);
    for (const h of OTHERS) if (already.get(h) === 0) expect(spread.get(h)).toBeGreaterThan(0);
  });
});
