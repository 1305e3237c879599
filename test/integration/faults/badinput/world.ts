/**
 * What the bad-input suite checks around every case: a snapshot of everything a bad request
 * could have changed (on both engines, the suite's own containers with their IDs and states,
 * and any container made for a bad migration; each agent's records of bad migrations; the
 * conductor's migrations of the suite's containers and its hosts), the REST error shape, and
 * the tally of cases per category printed at the end.
 *
 * The snapshot covers whole engines and every record: integration files run one at a time.
 * Containers that the cases do not name are compared by id and name only, since a container of
 * an earlier suite may exit on its own while a case runs.
 */
import { expect } from '@jest/globals';
import fs from 'node:fs';
import { STATUS_CODES } from 'node:http';
import path from 'node:path';
import { MIGRATION_LABEL } from '../../../../src/compute/docker/config.js';
import { sleep } from '../../../../src/common/sleep.js';
import { cloud } from '../../../helpers/cloud.js';
import { engine } from '../../../helpers/docker.js';
import { admin, type ApiResponse } from '../../../helpers/ferry.js';

export const HOSTS = ['compute1', 'compute2'] as const;

/** Every migration id the bus cases send starts with this. */
export const BAD_MIGRATION_PREFIX = 'badinput';

/** Names of the containers the suite made (set once by the suite before the cases run). */
export const watched: { names: string[] } = { names: [] };

export interface World {
  /**
   * Per host: "id name status startedAt finishedAt" of the watched containers and any made for a
   * bad migration, and "id name" of every other container (a bad request that made or removed
   * one shows; containers of earlier suites may stop on their own meanwhile).
   */
  containers: Record<string, string[]>;
  /** Per host: every migration record the agent holds, whatever its id (`../../etc` too). */
  records: Record<string, string[]>;
  /** Per watched container: its migrations' uuids. */
  migrations: Record<string, string[]>;
  /** Hosts the conductor knows. */
  conductorHosts: string[];
}

function recordsDir(host: string): string {
  return path.join(cloud().state_dir, 'ferry', host, 'migrations');
}

function concerned(name: string, labels: Record<string, string> | undefined): boolean {
  const n = name.replace(/^\//, '');
  return watched.names.includes(n) || n.startsWith(BAD_MIGRATION_PREFIX) || (labels?.[MIGRATION_LABEL] ?? '').startsWith(BAD_MIGRATION_PREFIX);
}

async function hostContainers(h: string): Promise<string[]> {
  const d = engine(h);
  // Another suite may be restarting this engine right now: wait for it a while.
  for (let attempt = 0; ; attempt++) {
    try {
      const list = await d.listContainers({ all: true });
      const states = await Promise.all(
        list.map(async (c) => {
          if (!concerned(c.Names?.[0] ?? '', c.Labels)) return `${c.Id.slice(0, 12)} ${c.Names?.[0] ?? ''}`;
          const i = await d.getContainer(c.Id).inspect();
          return `${c.Id.slice(0, 12)} ${i.Name} ${i.State.Status} ${i.State.StartedAt} ${i.State.FinishedAt}`;
        }),
      );
      return states.sort();
    } catch (e) {
      if (attempt >= 60) throw e;
      await sleep(500);
    }
  }
}

/** Every entry under the agent's records folder, and the folder's parent (where `../x` ids would land). */
function recordsOf(h: string): string[] {
  const dir = recordsDir(h);
  if (!fs.existsSync(dir)) return [];
  const entries = fs.readdirSync(dir).map((r) => `migrations/${r}`);
  const parent = fs.readdirSync(path.dirname(dir)).map((r) => `${r}`);
  return [...entries, ...parent].sort();
}

export async function snapshot(): Promise<World> {
  const w: World = { containers: {}, records: {}, migrations: {}, conductorHosts: [] };
  await Promise.all(
    HOSTS.map(async (h) => {
      w.containers[h] = await hostContainers(h);
      w.records[h] = recordsOf(h);
    }),
  );
  await Promise.all(
    watched.names.map(async (n) => {
      const m = await admin<{ migrations: { uuid: string }[] }>('GET', `/v1/migrations?container=${encodeURIComponent(n)}`);
      expect(m.status).toBe(200);
      w.migrations[n] = m.body.migrations.map((x) => x.uuid).sort();
    }),
  );
  const hs = await admin<{ hosts: { name: string }[] }>('GET', '/v1/hosts');
  expect(hs.status).toBe(200);
  w.conductorHosts = hs.body.hosts.map((x) => x.name).sort();
  return w;
}

/** Nothing changed on any host, and no migration was recorded. */
export function expectUnchanged(before: World, after: World): void {
  expect(after).toEqual(before);
}

/** Run `act` between two snapshots and require that nothing changed. */
export async function unchangedBy<T>(act: () => Promise<T>): Promise<T> {
  const before = await snapshot();
  const out = await act();
  expectUnchanged(before, await snapshot());
  return out;
}

export interface ErrorBody {
  error: { code: number; title: string; message: string; ferry_code?: string };
}

/** The exact status, the contract's JSON error body with a message that says what is wrong, and a request id. */
export function expectRestError(r: ApiResponse<unknown>, status: number, message: RegExp): void {
  if (r.status !== status) throw new Error(`expected HTTP ${status}, got HTTP ${r.status}: ${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`);
  expect(r.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  const e = (r.body as ErrorBody).error;
  expect(e).toEqual(expect.objectContaining({ code: status, title: STATUS_CODES[status], message: expect.any(String) }));
  expect(e.message).toMatch(message);
  expect(r.headers.get('x-openstack-request-id')).toMatch(/^req-[0-9a-f-]{36}$/);
}

export type Category = 'REST' | 'bus' | 'data channel' | 'CLI';

/** Cases per category, counted when a case has run to its end here (a skipped or failed case counts nothing). */
export class Tally {
  readonly counts = new Map<Category, number>();
  readonly notes = new Map<Category, string>();

  /** A case's body that counts itself once it has passed. */
  counting(c: Category, body: () => Promise<unknown>): () => Promise<void> {
    return async () => {
      await body();
      this.counts.set(c, (this.counts.get(c) ?? 0) + 1);
    };
  }

  get total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }

  report(): string {
    const rows = (['REST', 'bus', 'data channel', 'CLI'] as Category[]).map(
      (c) => `  ${c.padEnd(13)} ${String(this.counts.get(c) ?? 0).padStart(3)}${this.notes.has(c) ? `  (${this.notes.get(c)})` : ''}`,
    );
    return ['bad-input cases per category:', ...rows, `  ${'total'.padEnd(13)} ${String(this.total).padStart(3)}`].join('\n');
  }
}
