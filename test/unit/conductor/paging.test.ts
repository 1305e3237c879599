/** Keyset paging of migrations and containers in the real SQLite repository (in memory). */
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { InvalidInput } from '../../../src/common/errors.js';
import { MIGRATION_SORT_KEYS, type MigrationFilters } from '../../../src/conductor/interface.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import { unmeasured, type Migration, type MigrationStatus } from '../../../src/objects/migration.js';

function repo() {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  return new SqliteRepository(db);
}

const STATUSES: MigrationStatus[] = ['completed', 'failed', 'cancelled', 'accepted'];

function record(i: number, over: Partial<Migration> = {}): Migration {
  // Three records share each created_at millisecond, so the tie-break is exercised.
  const created = new Date(Date.UTC(2026, 10, 30, 6, 0, 0) + Math.floor(i / 3)).toISOString();
  return {
    uuid: randomUUID(),
    mode: 'stop-and-copy',
    container_id: `${(i % 7).toString(16).repeat(12)}`,
    container_name: `c${i % 11}`,
    source_host: i % 2 ? 'compute1' : 'compute2',
    dest_host: i % 5 === 0 ? null : i % 2 ? 'compute2' : 'compute1',
    status: STATUSES[i % STATUSES.length],
    phase: null,
    progress: 0,
    error: null,
    ...unmeasured(),
    connections_preserved: null,
    abort_requested: false,
    request_id: null,
    user_id: `u${i % 3}`,
    project_id: `p${i % 2}`,
    created_at: created,
    updated_at: new Date(Date.parse(created) + ((i * 7919) % 1000)).toISOString(),
    ...over,
  };
}

/** Every page, following the last item as the marker, until a short page. */
async function pageAll(r: SqliteRepository, f: MigrationFilters, limit: number): Promise<{ pages: number; uuids: string[] }> {
  const uuids: string[] = [];
  let marker: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await r.listMigrations({ ...f, limit: limit + 1, ...(marker ? { marker } : {}) });
    pages++;
    const shown = page.slice(0, limit);
    uuids.push(...shown.map((m) => m.uuid));
    if (page.length <= limit) return { pages, uuids };
    marker = shown[shown.length - 1].uuid;
  }
}

describe('paging migrations', () => {
  const r = repo();
  const all = Array.from({ length: 250 }, (_, i) => record(i));
  beforeAll(async () => {
    for (const m of all) await r.createMigration(m);
  });

  it('the default order is newest first, ties in creation order reversed; every page follows on', async () => {
    const whole = await r.listMigrations();
    expect(whole).toHaveLength(250);
    expect(whole.map((m) => m.uuid)).toEqual([...all].reverse().map((m) => m.uuid));
    const { pages, uuids } = await pageAll(r, {}, 40);
    expect(pages).toBe(7);
    expect(uuids).toEqual(whole.map((m) => m.uuid));
  });

  it.each(MIGRATION_SORT_KEYS.flatMap((k) => (['asc', 'desc'] as const).map((d) => [k, d] as const)))(
    'sorted by %s %s: each record exactly once, in the order of the whole list',
    async (sort_key, sort_dir) => {
      const whole = (await r.listMigrations({ sort_key, sort_dir })).map((m) => m.uuid);
      expect(new Set(whole).size).toBe(250);
      for (const limit of [1, 7, 250]) expect((await pageAll(r, { sort_key, sort_dir }, limit)).uuids).toEqual(whole);
      // The whole list really is in that order (NULL dest_host sorts as '').
      const key = (m: Migration) => String(m[sort_key] ?? '');
      const got = (await r.listMigrations({ sort_key, sort_dir })).map(key);
      const sorted = [...got].sort();
      expect(got).toEqual(sort_dir === 'asc' ? sorted : sorted.reverse());
    },
  );

  it('filters combine with paging: user, project, status, hosts, changes-since/before', async () => {
    const f: MigrationFilters = { user_id: 'u1', project_id: 'p0', status: 'completed' };
    const want = [...all].reverse().filter((m) => m.user_id === 'u1' && m.project_id === 'p0' && m.status === 'completed');
    expect(want.length).toBeGreaterThan(5);
    expect((await pageAll(r, f, 4)).uuids).toEqual(want.map((m) => m.uuid));

    const times = all.map((m) => m.updated_at).sort();
    const since = times[100];
    const before = times[200];
    const window = await r.listMigrations({ changes_since: since, changes_before: before, sort_key: 'updated_at', sort_dir: 'asc' });
    expect(window.length).toBeGreaterThan(0);
    for (const m of window) {
      expect(m.updated_at >= since).toBe(true);
      expect(m.updated_at <= before).toBe(true);
    }
    expect(window.length).toBe(all.filter((m) => m.updated_at >= since && m.updated_at <= before).length);
    expect((await r.listMigrations({ dest_host: 'compute2', source_host: 'compute1' })).every((m) => m.dest_host === 'compute2' && m.source_host === 'compute1')).toBe(true);
  });

  it('an unknown marker is a 400 (InvalidInput) naming it; a marker of another project is unknown to a project-limited list', async () => {
    const ghost = randomUUID();
    await expect(r.listMigrations({ marker: ghost })).rejects.toThrow(InvalidInput);
    await expect(r.listMigrations({ marker: ghost })).rejects.toThrow(`marker "${ghost}" could not be found`);
    const theirs = all.filter((m) => m.project_id === 'p1')[50];
    await expect(r.listMigrations({ marker: theirs.uuid, project_id: 'p0' })).rejects.toThrow(`marker "${theirs.uuid}" could not be found`);
    expect(await r.listMigrations({ marker: theirs.uuid, project_id: 'p1', limit: 1 })).toHaveLength(1);
  });

  it('container filter takes LIKE wildcards literally', async () => {
    expect(await r.listMigrations({ container: '%' })).toHaveLength(0);
    expect(await r.listMigrations({ container: '_' })).toHaveLength(0);
    expect((await r.listMigrations({ container: 'c3' })).every((m) => m.container_name === 'c3')).toBe(true);
  });
});

describe('paging containers', () => {
  it('orders by host, name, id; a removed container still marks its place', async () => {
    const r = repo();
    const summary = (id: string, name: string) => ({ id, name, image: 'img', status: 'running' });
    await r.saveInventory('compute2', [summary('b'.repeat(64), 'web'), summary('a'.repeat(64), 'web')], '2026-11-30T06:00:00.000Z');
    await r.saveInventory('compute1', [summary('c'.repeat(64), 'zeta'), summary('d'.repeat(64), 'alpha')], '2026-11-30T06:00:00.000Z');
    const order = (await r.listContainers()).map((c) => `${c.host}/${c.name}/${c.id[0]}`);
    expect(order).toEqual(['compute1/alpha/d', 'compute1/zeta/c', 'compute2/web/a', 'compute2/web/b']);
    const p1 = await r.listContainers({ limit: 2 });
    expect(p1.map((c) => c.id[0])).toEqual(['d', 'c']);
    // The marker's container goes away between pages: the next page still starts after it.
    await r.applyContainerChange('compute1', { id: 'c'.repeat(64), name: null, image: null, status: 'removed', at: '2026-11-30T06:00:01.000Z' });
    expect((await r.listContainers({ marker: 'c'.repeat(64) })).map((c) => c.id[0])).toEqual(['a', 'b']);
    expect((await r.listContainers()).map((c) => c.id[0])).toEqual(['d', 'a', 'b']);
    await expect(r.listContainers({ marker: 'nope' })).rejects.toThrow('marker "nope" could not be found');
    expect(Object.fromEntries(await r.containerCounts())).toEqual({ compute1: 1, compute2: 2 });
  });
});
