/**
 * What every fault test on the real dev cloud shares: a Redis holding known state on
 * compute1, services restarted with the faults a test needs, and the invariant checked
 * afterwards — the container runs on exactly one host with its state, the record's final
 * status says which, and nothing of the migration is left behind — plus one row per test for
 * README's "Faults survived" table (results/faults.jsonl, rendered by scripts/faults-table.mjs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from '@jest/globals';
import type Docker from 'dockerode';
import type { Faults } from '../../../src/compute/faults.js';
import { sleep } from '../../../src/common/sleep.js';
import type { Migration, MigrationStatus } from '../../../src/objects/migration.js';
import { cloud, host, repoRoot } from '../../helpers/cloud.js';
import { engine, execOut, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { restartServices, waitKnown } from '../../helpers/ferry.js';

export const HOSTS = ['compute1', 'compute2'] as const;
export type HostName = (typeof HOSTS)[number];
export const engines: Record<HostName, Docker> = { compute1: engine('compute1'), compute2: engine('compute2') };

const created: string[] = [];
const armed: Record<string, string> = {};

/** Restart the compute services whose faults differ from what they run with now (none = {}). */
export async function useFaults(faults: Partial<Record<HostName, Faults>>): Promise<void> {
  for (const h of HOSTS) {
    const want = JSON.stringify(faults[h] ?? {});
    if ((armed[h] ?? '{}') === want) continue;
    await restartServices([`ferry-compute-${h}`], want === '{}' ? {} : { FERRY_ENABLE_FAULTS: '1', FERRY_FAULTS: want });
    armed[h] = want;
  }
}

/** SIGKILL a Ferry service and start it again, clean (no faults). */
export async function killService(name: string): Promise<void> {
  await restartServices([name], {}, true);
  for (const h of HOSTS) if (name === `ferry-compute-${h}`) armed[h] = '{}';
}

/** Make sure `image` is on host `h` (the dev cloud loads its images into compute1 only). */
export async function ensureImage(h: HostName, image: string): Promise<void> {
  if ((await engines[h].listImages({ filters: { reference: [image] } })).length > 0) return;
  const tar = (await engines.compute1.getImage(image).get()) as unknown as NodeJS.ReadableStream;
  const res = (await engines[h].loadImage(tar)) as unknown as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => {
    res.on('end', () => resolve());
    res.on('error', reject);
    res.resume();
  });
}

export function redisCli(h: HostName, name: string, args: string[]): Promise<string> {
  return execOut(engines[h], name, ['redis-cli', ...args]);
}

export interface RedisSubject {
  name: string;
  keys: number;
  sentinel: string;
}

/** A Redis on compute1 holding `keys` keys and a sentinel value, known to the conductor. */
export async function redisOn1(tag: string, keys = 50_000): Promise<RedisSubject> {
  const name = uniqueName(`fault-${tag}`);
  created.push(name);
  const ct = await engines.compute1.createContainer({ Image: 'ferry/redis:latest', name });
  await ct.start();
  for (let i = 0; i < 100; i++) {
    if ((await redisCli('compute1', name, ['PING']).catch(() => '')) === 'PONG') break;
    await sleep(100);
  }
  await redisCli('compute1', name, ['DEBUG', 'POPULATE', String(keys)]);
  const sentinel = `kept-${Date.now()}`;
  await redisCli('compute1', name, ['SET', 'sentinel', sentinel]);
  await waitKnown(name, 'compute1');
  return { name, keys: keys + 1, sentinel };
}

async function stateOf(h: HostName, name: string): Promise<'running' | 'stopped' | 'absent'> {
  const l = await engines[h].listContainers({ all: true, filters: { name: [`^/${name}$`] } });
  if (l.length === 0) return 'absent';
  return l[0].State === 'running' ? 'running' : 'stopped';
}

/** Where the container runs now (exactly one host), failing the test when it runs on none or both. */
export async function runningHost(name: string): Promise<HostName> {
  const states = await Promise.all(HOSTS.map((h) => stateOf(h, name)));
  const running = HOSTS.filter((_, i) => states[i] === 'running');
  if (running.length !== 1) throw new Error(`${name} runs on ${running.length} hosts (compute1 ${states[0]}, compute2 ${states[1]}), not exactly one`);
  return running[0];
}

/**
 * The invariant after a migration ended: one running copy, on the host the record says, its
 * state intact, no copy (running or not) left on the other host, no staging or record of an
 * unfinished migration left on either agent.
 */
export async function assertInvariant(m: Migration, s: RedisSubject, expected: { status: MigrationStatus | MigrationStatus[]; host?: HostName }): Promise<HostName> {
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status];
  expect(statuses).toContain(m.status);
  const where = await runningHost(s.name);
  const recorded = (m.status === 'completed' ? m.dest_host : m.source_host) as HostName;
  expect(where).toBe(recorded);
  if (expected.host) expect(where).toBe(expected.host);
  const other = HOSTS.find((h) => h !== where) as HostName;
  expect(await stateOf(other, s.name)).toBe('absent');
  expect(await redisCli(where, s.name, ['GET', 'sentinel'])).toBe(s.sentinel);
  expect(await redisCli(where, s.name, ['DBSIZE'])).toBe(String(s.keys));
  for (const h of HOSTS) {
    expect(fs.existsSync(path.join(host(h).data_root, 'ferry-staging', h, m.uuid))).toBe(false);
    const rec = path.join(cloud().state_dir, 'ferry', h, 'migrations', m.uuid, 'record.json');
    if (fs.existsSync(rec)) {
      const stage = (JSON.parse(fs.readFileSync(rec, 'utf8')) as { stage: string }).stage;
      expect(['restored', 'rolled_back']).toContain(stage);
    }
  }
  return where;
}

/** One row of README's "Faults survived" table. */
export function recordRow(fault: string, phase: string, m: Migration, where: HostName, stateKept: boolean): void {
  const file = path.join(repoRoot, 'results', 'faults.jsonl');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const outcome = `${m.status}${m.phase ? ` (${m.phase})` : ''}, runs on ${where}`;
  fs.appendFileSync(file, `${JSON.stringify({ fault, phase, outcome, state_kept: stateKept, at: new Date().toISOString() })}\n`);
}

/** Remove every container the tests made, and put the services back without faults. */
export async function cleanUp(): Promise<void> {
  await useFaults({});
  for (const n of created) for (const h of HOSTS) await removeQuietly(engines[h], n);
}
