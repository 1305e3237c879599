/**
 * Paging over 250 migration records through the real ferry-api, conductor and `openstack`
 * CLI of the development cloud. The records are written cheaply into the conductor's own
 * database through its repository (as failed migrations of one test user); everything that
 * reads them is the real service path.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { loadConfig } from '../../../src/conf/index.js';
import { openDatabase, type Db } from '../../../src/db/schema.js';
import { unmeasured, type Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { apiBase, ferry } from '../../helpers/ferry.js';
import { installPlugin, openstack } from '../osc/helpers.js';

jest.setTimeout(600_000);

const N = 250;
const user = `paging-${randomUUID()}`;
const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
let db: Db;
let made: Migration[] = [];

interface Page {
  migrations: Migration[];
  migrations_links?: { rel: string; href: string }[];
}

async function get<T>(path: string): Promise<{ status: number; body: T }> {
  const r = await ferry().request<T>('GET', path);
  return { status: r.status, body: r.body };
}

/** Follows `next` links from `first`; returns the uuids in order and the number of pages. */
async function follow(first: string): Promise<{ uuids: string[]; pages: number; hrefs: string[] }> {
  const uuids: string[] = [];
  const hrefs: string[] = [];
  let path: string | null = first;
  let pages = 0;
  while (path) {
    const r: { status: number; body: Page } = await get<Page>(path);
    expect(r.status).toBe(200);
    pages++;
    uuids.push(...r.body.migrations.map((m) => m.uuid));
    const next = r.body.migrations_links?.find((l) => l.rel === 'next');
    path = next ? next.href.slice(apiBase().length) : null;
    if (next) hrefs.push(next.href);
  }
  return { uuids, pages, hrefs };
}

beforeAll(async () => {
  const conf = loadConfig([cloud().config_files.controller]);
  db = openDatabase(conf.database.connection);
  const repo = new SqliteRepository(db);
  // Two records share each creation millisecond: the order must still be total and stable.
  made = Array.from({ length: N }, (_, i) => {
    const created = new Date(t0 + Math.floor(i / 2) * 1000).toISOString();
    return {
      uuid: randomUUID(),
      mode: 'stop-and-copy',
      container_id: 'f'.repeat(64),
      container_name: `paging-c${String(i % 17).padStart(2, '0')}`,
      source_host: 'compute1',
      dest_host: 'compute2',
      status: 'failed' as const,
      phase: null,
      progress: 5,
      error: 'refused by the pre-checks (paging test record)',
      ...unmeasured(),
      connections_preserved: null,
      abort_requested: false,
      request_id: null,
      user_id: user,
      project_id: 'paging-test-project',
      created_at: created,
      updated_at: new Date(t0 + i * 1000 + 500).toISOString(),
    };
  });
  for (const m of made) await repo.createMigration(m);
});

afterAll(() => {
  db.prepare('DELETE FROM migrations WHERE user_id = ?').run(user);
  db.close();
});

describe('paging GET /v1/migrations (Nova’s limit, marker, next links)', () => {
  it('250 records in pages of 40: each exactly once, newest first, with a next link on all but the last page', async () => {
    const { uuids, pages, hrefs } = await follow(`/v1/migrations?user_id=${user}&limit=40`);
    expect(pages).toBe(7);
    expect(hrefs).toHaveLength(6);
    for (const h of hrefs) {
      const q = new URL(h).searchParams;
      expect([q.get('user_id'), q.get('limit')]).toEqual([user, '40']);
    }
    expect(new Set(uuids).size).toBe(N);
    expect(uuids).toEqual([...made].reverse().map((m) => m.uuid));
  });

  it('sorted by container name, ascending, in pages of 33: each once, in that order', async () => {
    const { uuids } = await follow(`/v1/migrations?user_id=${user}&limit=33&sort_key=container_name&sort_dir=asc`);
    expect(new Set(uuids).size).toBe(N);
    const byUuid = new Map(made.map((m) => [m.uuid, m]));
    const names = uuids.map((u) => byUuid.get(u)!.container_name);
    expect(names).toEqual([...names].sort());
    // Ties (same name) keep creation order.
    const firstName = uuids.filter((u) => byUuid.get(u)!.container_name === 'paging-c00');
    expect(firstName).toEqual(made.filter((m) => m.container_name === 'paging-c00').map((m) => m.uuid));
  });

  it('changes-since and changes-before select by update time', async () => {
    const since = new Date(t0 + 100 * 1000).toISOString();
    const before = new Date(t0 + 149 * 1000 + 500).toISOString();
    const { uuids } = await follow(`/v1/migrations?user_id=${user}&limit=20&changes-since=${since}&changes-before=${before}`);
    expect(uuids).toEqual(
      made
        .slice(100, 150)
        .reverse()
        .map((m) => m.uuid),
    );
  });

  it('without a limit, a page holds up to [api] max_limit (1000) records: all 250, and no next link', async () => {
    const r = await get<Page>(`/v1/migrations?user_id=${user}`);
    expect(r.status).toBe(200);
    expect(r.body.migrations.length).toBe(N); // max_limit (1000) is above 250
    expect(r.body.migrations_links).toBeUndefined();
  });

  it('bad paging input is a 400 with a clear message; an unknown marker is a 400 like Nova', async () => {
    const cases: [string, RegExp][] = [
      ['limit=0', /"limit": must be a positive integer/],
      ['limit=-5', /"limit": must be a positive integer/],
      ['limit=abc', /"limit": must be a positive integer/],
      ['marker=nope', /"marker": must be the uuid of a migration/],
      [`marker=${randomUUID()}`, /^marker "[0-9a-f-]{36}" could not be found$/],
      ['sort_key=colour', /"sort_key": must be one of created_at, /],
      ['sort_dir=sideways', /"sort_dir": must be one of asc, desc/],
      ['changes-since=last-week', /"changes-since": must be an ISO 8601 date-time/],
      ['changes-since=2026-02-01T00:00:00Z&changes-before=2026-01-01T00:00:00Z', /must be earlier than or equal to changes-before/],
    ];
    for (const [q, msg] of cases) {
      const r = await get<{ error: { code: number; message: string } }>(`/v1/migrations?${q}`);
      expect([q, r.status]).toEqual([q, 400]);
      expect(r.body.error.message).toMatch(msg);
    }
    const c = await get<{ error: { message: string } }>('/v1/containers?marker=no-such-container');
    expect(c.status).toBe(400);
    expect(c.body.error.message).toBe('marker "no-such-container" could not be found');
  });

  it('GET /v1/containers pages with limit and marker too', async () => {
    const all = (await get<{ containers: { id: string }[] }>('/v1/containers')).body.containers;
    const seen: string[] = [];
    let path: string | null = '/v1/containers?limit=1';
    while (path) {
      const r: { status: number; body: { containers: { id: string }[]; containers_links?: { href: string }[] } } = await get(path);
      expect(r.body.containers.length).toBeLessThanOrEqual(1);
      seen.push(...r.body.containers.map((c) => c.id));
      path = r.body.containers_links ? r.body.containers_links[0].href.slice(apiBase().length) : null;
    }
    // Containers may come and go while other tests run; those listed throughout appear once each, in order.
    const stable = all.map((c) => c.id).filter((id) => seen.includes(id));
    expect(seen.filter((id) => stable.includes(id))).toEqual(stable);
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('paging with the openstack CLI', () => {
  beforeAll(async () => {
    const inst = await installPlugin();
    expect(inst.code).toBe(0);
  });

  it('--limit/--marker walk the 250 records page by page, each once and in order; -1 lists them all', async () => {
    const uuids: string[] = [];
    let marker: string | null = null;
    let pages = 0;
    for (;;) {
      const args = ['container', 'migration', 'list', '--user', user, '--limit', '60', '-f', 'value', '-c', 'UUID', ...(marker ? ['--marker', marker] : [])];
      const r = await openstack(args);
      expect(r.code).toBe(0);
      pages++;
      const page = r.stdout.split('\n').filter(Boolean);
      uuids.push(...page);
      const more = /More migrations exist: continue with --marker ([0-9a-f-]{36})/.exec(r.stderr);
      if (!more) break;
      expect(more[1]).toBe(page[page.length - 1]);
      marker = more[1];
    }
    expect(pages).toBe(5);
    expect(uuids).toEqual([...made].reverse().map((m) => m.uuid));

    const all = await openstack(['container', 'migration', 'list', '--user', user, '--limit', '-1', '-f', 'json']);
    expect(all.code).toBe(0);
    expect((JSON.parse(all.stdout) as { UUID: string }[]).map((m) => m.UUID)).toEqual(uuids);
  });

  it('shows one screenful by default, and --changes-since narrows it', async () => {
    const r = await openstack(['container', 'migration', 'list', '--user', user, '-f', 'value', '-c', 'UUID']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(50);
    expect(r.stderr).toMatch(/More migrations exist: continue with --marker /);
    const since = new Date(t0 + 240 * 1000).toISOString();
    const s = await openstack(['container', 'migration', 'list', '--user', user, '--changes-since', since, '-f', 'value', '-c', 'UUID']);
    expect(s.stdout.split('\n').filter(Boolean)).toEqual(
      made
        .slice(240)
        .reverse()
        .map((m) => m.uuid),
    );
    const bad = await openstack(['container', 'migration', 'list', '--changes-since', 'soon']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/"changes-since": must be an ISO 8601 date-time/);
  });
});
