/**
 * What every fault test on the real dev cloud shares: a Redis holding known state on
 * compute1, services restarted with the faults a test needs, and the invariant checked
 * afterwards — the container runs on exactly one host with its state, the record's final
 * status says which, and nothing of the migration is left behind — plus one row per test for
 * README's "Faults survived" table (results/faults.jsonl, rendered by scripts/faults-table.mjs).
 */
import { expect } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { sleep } from '../../../src/common/sleep.js';
import type { Migration } from '../../../src/objects/migration.js';
import { copyState, ensureImage as ensureImageOn, leftoversOf, useFaults } from '../../../src/soak/cloud.js';
import { HOSTS, onlyRunning, unmet, type Expected, type HostName, type Verdict } from '../../../src/soak/verdict.js';
import { cloud, repoRoot } from '../../helpers/cloud.js';
import { engine, execOut, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { waitKnown } from '../../helpers/ferry.js';

export { HOSTS, type HostName, type Verdict } from '../../../src/soak/verdict.js';
export { killService, useFaults } from '../../../src/soak/cloud.js';
export const engines: Record<HostName, Docker> = { compute1: engine('compute1'), compute2: engine('compute2') };

const created: string[] = [];

/** Make sure `image` is on host `h` (the dev cloud loads its images into compute1 only). */
export function ensureImage(h: HostName, image: string): Promise<void> {
  return ensureImageOn(engines.compute1, engines[h], image);
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

/** What a migration left, read from the engines and the agents' folders (no assertion). */
export async function verdictOf(m: Migration, s: RedisSubject): Promise<Verdict> {
  const states = await Promise.all(HOSTS.map((h) => copyState(engines[h], s.name)));
  const copies = { compute1: states[0], compute2: states[1] };
  const where = onlyRunning(copies);
  let stateKept = false;
  if (where) {
    const sentinel = await redisCli(where, s.name, ['GET', 'sentinel']).catch(() => '');
    const keys = await redisCli(where, s.name, ['DBSIZE']).catch(() => '');
    stateKept = sentinel === s.sentinel && keys === String(s.keys);
  }
  return { status: m.status, phase: m.phase ?? null, where, copies, state_kept: stateKept, leftovers: leftoversOf(cloud(), m.uuid) };
}

/**
 * The invariant after a migration ended (src/soak/verdict.ts `unmet`): one running copy, on the
 * host the record says (and the one expected), its state intact, no copy (running or not) left on
 * the other host, no staging or unfinished record left on either agent.
 */
export async function assertInvariant(m: Migration, s: RedisSubject, expected: Expected, read?: Verdict): Promise<Verdict> {
  const v = read ?? (await verdictOf(m, s));
  expect(unmet(m, v, expected)).toEqual([]);
  return v;
}

/**
 * Checks a fault test's outcome against the one it pins, after writing its row for README's
 * "Faults survived" table: the row holds what was expected and what was measured, so a run that
 * broke the invariant shows it there too.
 */
export async function checkRow(fault: string, phase: string, m: Migration, s: RedisSubject, expected: Expected, landed?: Landed): Promise<Verdict> {
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
export function recordRow(fault: string, phase: string, expected: Expected, v: Verdict | Verdict[], landed?: Landed): void {
  const all = Array.isArray(v) ? v : [v];
  const file = path.join(repoRoot, 'results', 'faults.jsonl');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status];
  const expect_ = `${statuses.join(' or ')}${expected.host ? `, runs on ${expected.host}` : ''}`;
  const outcome = all.map(
    (x) =>
      `${x.status}${x.phase ? ` (${x.phase})` : ''}, runs on ${x.where ?? `no single host (compute1 ${x.copies.compute1}, compute2 ${x.copies.compute2})`}`,
  );
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
