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

/** What a migration left, read from the engines and the agents' folders (no assertion). */
export interface Verdict {
  status: MigrationStatus;
  phase: string | null;
  /** The one host it runs on; null when it runs on none or on both. */
  where: HostName | null;
  /** Each host's copy: running, stopped or absent. */
  copies: Record<HostName, 'running' | 'stopped' | 'absent'>;
  /** The sentinel and the key count read back from the running copy. */
  state_kept: boolean;
  /** Staging folders and unfinished agent records of the migration still there. */
  leftovers: string[];
}

export async function verdictOf(m: Migration, s: RedisSubject): Promise<Verdict> {
  const states = await Promise.all(HOSTS.map((h) => stateOf(h, s.name)));
  const copies = { compute1: states[0], compute2: states[1] };
  const running = HOSTS.filter((h) => copies[h] === 'running');
  const where = running.length === 1 ? running[0] : null;
  let stateKept = false;
  if (where) {
    const sentinel = await redisCli(where, s.name, ['GET', 'sentinel']).catch(() => '');
    const keys = await redisCli(where, s.name, ['DBSIZE']).catch(() => '');
    stateKept = sentinel === s.sentinel && keys === String(s.keys);
  }
  const leftovers: string[] = [];
  for (const h of HOSTS) {
    const staged = path.join(host(h).data_root, 'ferry-staging', h, m.uuid);
    if (fs.existsSync(staged)) leftovers.push(staged);
    const rec = path.join(cloud().state_dir, 'ferry', h, 'migrations', m.uuid, 'record.json');
    if (fs.existsSync(rec)) {
      const stage = (JSON.parse(fs.readFileSync(rec, 'utf8')) as { stage: string }).stage;
      if (!['restored', 'rolled_back'].includes(stage)) leftovers.push(`${rec} (stage ${stage})`);
    }
  }
  return { status: m.status, phase: m.phase ?? null, where, copies, state_kept: stateKept, leftovers };
}

/**
 * The invariant after a migration ended: one running copy, on the host the record says (and the
 * one expected), its state intact, no copy (running or not) left on the other host, no staging
 * or unfinished record left on either agent.
 */
export async function assertInvariant(
  m: Migration,
  s: RedisSubject,
  expected: { status: MigrationStatus | MigrationStatus[]; host?: HostName },
  read?: Verdict,
): Promise<Verdict> {
  const v = read ?? (await verdictOf(m, s));
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status];
  expect(statuses).toContain(v.status);
  const recorded = (v.status === 'completed' ? m.dest_host : m.source_host) as HostName;
  expect(v.where).toBe(recorded);
  if (expected.host) expect(v.where).toBe(expected.host);
  expect(v.copies[HOSTS.find((h) => h !== v.where) as HostName]).toBe('absent');
  expect(v.state_kept).toBe(true);
  expect(v.leftovers).toEqual([]);
  return v;
}

/**
 * Checks a fault test's outcome against the one it pins, after writing its row for README's
 * "Faults survived" table: the row holds what was expected and what was measured, so a run that
 * broke the invariant shows it there too.
 */
export async function checkRow(
  fault: string,
  phase: string,
  m: Migration,
  s: RedisSubject,
  expected: { status: MigrationStatus | MigrationStatus[]; host?: HostName },
  landed?: Landed,
): Promise<Verdict> {
  const v = await verdictOf(m, s);
  recordRow(fault, phase, expected, v, landed);
  return assertInvariant(m, s, expected, v);
}

/** Where a fault landed: the record as read just before it, and the steps the conductor asked again afterwards. */
export interface Landed {
  at: Migration;
  askedAgain: string[];
}

/** The steps the conductor asked a host again for this migration, from its log ("asking again" lines), in order. */
export function askedAgain(uuid: string): string[] {
  const dir = path.join(cloud().state_dir, 'log');
  const out: string[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => /^ferry-conductor\d*\.log$/.test(n))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line.includes(uuid) || !line.includes('asking again')) continue;
      try {
        const e = JSON.parse(line) as { migration?: string; method?: string; msg?: string };
        if (e.migration === uuid && e.method && /asking again/.test(e.msg ?? '')) out.push(e.method);
      } catch {
        /* a line cut by a kill */
      }
    }
  }
  return out;
}

/** The record just before a fault; after the migration ended, `landedOf` adds what was asked again. */
export function landedOf(at: Migration): Landed {
  return { at, askedAgain: askedAgain(at.uuid) };
}

/** One row of README's "Faults survived" table, from a verdict (or the verdicts of several containers). */
export function recordRow(fault: string, phase: string, expected: { status: MigrationStatus | MigrationStatus[]; host?: HostName }, v: Verdict | Verdict[], landed?: Landed): void {
  const all = Array.isArray(v) ? v : [v];
  const file = path.join(repoRoot, 'results', 'faults.jsonl');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status];
  const expect_ = `${statuses.join(' or ')}${expected.host ? `, runs on ${expected.host}` : ''}`;
  const outcome = all.map((x) => `${x.status}${x.phase ? ` (${x.phase})` : ''}, runs on ${x.where ?? `no single host (compute1 ${x.copies.compute1}, compute2 ${x.copies.compute2})`}`);
  const row = {
    fault,
    phase,
    expected: expect_,
    outcome: [...new Set(outcome)].join('; '),
    state_kept: all.every((x) => x.state_kept),
    left_behind: all.flatMap((x) => x.leftovers).length,
    at_fault: landed ? `${landed.at.status} / ${landed.at.phase ?? '-'}` : null,
    asked_again: landed ? [...new Set(landed.askedAgain)] : null,
    at: new Date().toISOString(),
  };
  fs.appendFileSync(file, `${JSON.stringify(row)}\n`);
}

/** Remove every container the tests made, and put the services back without faults. */
export async function cleanUp(): Promise<void> {
  await useFaults({});
  for (const n of created) for (const h of HOSTS) await removeQuietly(engines[h], n);
}
