/**
 * The repository's tests, written once and run on every backend: the embedded SQLite (unit
 * run, test/unit/conductor/paging.test.ts) and SQLite-on-file and MariaDB (integration run,
 * test/integration/db/repository.test.ts). `fresh` gives an empty, synced repository.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ClaimLost, InvalidInput } from '../../src/common/errors.js';
import { MIGRATION_SORT_KEYS, type MigrationFilters } from '../../src/conductor/interface.js';
import { SqlRepository } from '../../src/conductor/repository.js';
import type { SqlDriver } from '../../src/db/driver.js';
import { SCHEMA_VERSION } from '../../src/db/schema.js';
import { newMigration, type Migration, type MigrationStatus } from '../../src/objects/migration.js';
import { hostState } from './host-state.js';

export type FreshRepository = () => Promise<SqlRepository>;

const STATUSES: MigrationStatus[] = ['completed', 'failed', 'cancelled', 'accepted'];

/** A migration record; every field the current schema has comes from newMigration. */
export function record(i: number, over: Partial<Migration> = {}): Migration {
  // Three records share each created_at millisecond, so the tie-break is exercised.
  const created = new Date(Date.UTC(2026, 10, 30, 6, 0, 0) + Math.floor(i / 3)).toISOString();
  return {
    ...newMigration({
      uuid: randomUUID(),
      container_id: `${(i % 7).toString(16).repeat(12)}`,
      container_name: `c${i % 11}`,
      source_host: i % 2 ? 'compute1' : 'compute2',
      dest_host: i % 5 === 0 ? null : i % 2 ? 'compute2' : 'compute1',
      user_id: `u${i % 3}`,
      project_id: `p${i % 2}`,
    }),
    status: STATUSES[i % STATUSES.length],
    created_at: created,
    updated_at: new Date(Date.parse(created) + ((i * 7919) % 1000)).toISOString(),
    ...over,
  };
}

/** Every page, following the last item as the marker, until a short page. */
async function pageAll(r: SqlRepository, f: MigrationFilters, limit: number): Promise<{ pages: number; uuids: string[] }> {
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

/**
 * The statements `call` runs, each with how its engine reads the containers and migrations
 * tables (SQLite's EXPLAIN QUERY PLAN, MariaDB's EXPLAIN) and whether that is a full scan.
 */
async function plans(r: SqlRepository, call: (v: SqlRepository) => Promise<unknown>): Promise<{ sql: string; plan: string[]; scan: boolean }[]> {
  const seen: { sql: string; params: readonly unknown[] }[] = [];
  const d = r.sql;
  const recording = new Proxy(d, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === 'query' || prop === 'exec') {
        return (sql: string, params: readonly unknown[] = []) => {
          seen.push({ sql, params });
          return (v as (s: string, p: readonly unknown[]) => Promise<unknown>).call(target, sql, params);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as SqlDriver;
  await call(new SqlRepository(recording));
  const out = [];
  for (const { sql, params } of seen) {
    if (d.dialect.name === 'sqlite') {
      const plan = (await d.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((p) => p.detail);
      out.push({ sql, plan, scan: plan.some((p) => /^SCAN (containers|migrations)\b/.test(p)) });
    } else {
      const rows = await d.query<{ table: string; type: string; key: string | null }>(`EXPLAIN ${sql}`, params);
      const mine = rows.filter((p) => ['containers', 'migrations'].includes(p.table));
      out.push({ sql, plan: mine.map((p) => `${p.table} ${p.type} ${p.key ?? '-'}`), scan: mine.some((p) => p.type === 'ALL' || p.type === 'index') });
    }
  }
  return out;
}

export function repositorySuite(fresh: FreshRepository): void {
  describe('paging migrations', () => {
    let r: SqlRepository;
    const all = Array.from({ length: 250 }, (_, i) => record(i));
    beforeAll(async () => {
      r = await fresh();
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
        // The whole list really is in that order (NULL dest_host sorts as ''; byte order, as JavaScript sorts).
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
      expect(
        (await r.listMigrations({ dest_host: 'compute2', source_host: 'compute1' })).every((m) => m.dest_host === 'compute2' && m.source_host === 'compute1'),
      ).toBe(true);
    });

    it('an unknown marker is a 400 (InvalidInput) naming it; a marker of another project is unknown to a project-limited list', async () => {
      const ghost = randomUUID();
      await expect(r.listMigrations({ marker: ghost })).rejects.toThrow(InvalidInput);
      await expect(r.listMigrations({ marker: ghost })).rejects.toThrow(`marker "${ghost}" could not be found`);
      const theirs = all.filter((m) => m.project_id === 'p1')[50];
      await expect(r.listMigrations({ marker: theirs.uuid, project_id: 'p0' })).rejects.toThrow(`marker "${theirs.uuid}" could not be found`);
      expect(await r.listMigrations({ marker: theirs.uuid, project_id: 'p1', limit: 1 })).toHaveLength(1);
    });

    it('container filter takes LIKE wildcards literally; names compare case-sensitively', async () => {
      expect(await r.listMigrations({ container: '%' })).toHaveLength(0);
      expect(await r.listMigrations({ container: '_' })).toHaveLength(0);
      expect(await r.listMigrations({ container: '!' })).toHaveLength(0);
      expect((await r.listMigrations({ container: 'c3' })).every((m) => m.container_name === 'c3')).toBe(true);
      expect((await r.listMigrations({ container: 'c3' })).length).toBeGreaterThan(0);
      expect(await r.listMigrations({ container: 'C3' })).toHaveLength(0);
      expect((await r.listMigrations({ container: '333' })).length).toBeGreaterThan(0); // an id prefix
    });
  });

  describe('records', () => {
    let r: SqlRepository;
    beforeAll(async () => {
      r = await fresh();
    });

    it('the schema is at the current version', async () => {
      expect(await r.sql.schemaVersion()).toBe(SCHEMA_VERSION);
    });

    it('a migration comes back as written: numbers (past 32 bits) as numbers, booleans as booleans, steps kept apart', async () => {
      const m = record(1, { status: 'accepted' });
      await r.createMigration(m);
      expect(await r.getMigration(m.uuid)).toEqual(m);
      const u = await r.updateMigration(m.uuid, { status: 'running', memory_bytes: 6_000_000_000, connections_preserved: true, error: 'x'.repeat(5000) });
      expect(u.memory_bytes).toBe(6_000_000_000);
      expect(u.connections_preserved).toBe(true);
      expect(u.abort_requested).toBe(false);
      expect(u.error).toHaveLength(5000);
      await r.saveStep(m.uuid, 'pre', { upload: 'tok', n: 1 });
      await r.saveStep(m.uuid, 'live', { frozen_at: 5 });
      expect(await r.getSteps(m.uuid)).toEqual({ pre: { upload: 'tok', n: 1 }, live: { frozen_at: 5 } });
      expect((await r.unfinishedMigrations()).map((x) => x.uuid)).toContain(m.uuid);
      await r.updateMigration(m.uuid, { status: 'error' });
      expect((await r.unfinishedMigrations()).map((x) => x.uuid)).not.toContain(m.uuid);
    });

    it('an abort and the step into the restore: each guarded, in one statement, so that one wins', async () => {
      const m = record(31, { status: 'running', phase: 'checkpoint' });
      await r.createMigration(m);
      const asked = await r.updateMigrationIf(m.uuid, { abort_requested: true }, 'abortable');
      expect(asked).toMatchObject({ applied: true, migration: { abort_requested: true } });
      const restore = await r.updateMigrationIf(m.uuid, { status: 'post-migrating', phase: 'restore' }, 'not-aborted');
      expect(restore).toMatchObject({ applied: false, migration: { status: 'running', phase: 'checkpoint' } });
      // The other order: the restore began, so the abort is refused and changes nothing.
      const n = record(32, { status: 'running', phase: 'checkpoint' });
      await r.createMigration(n);
      expect((await r.updateMigrationIf(n.uuid, { status: 'post-migrating', phase: 'restore' }, 'not-aborted')).applied).toBe(true);
      expect(await r.updateMigrationIf(n.uuid, { abort_requested: true }, 'abortable')).toMatchObject({
        applied: false,
        migration: { abort_requested: false },
      });
      // Post-copy: once the target runs the container, too late as well; a final record is never abortable.
      const p = record(33, { status: 'running', phase: 'post-copy', mode: 'post-copy' });
      await r.createMigration(p);
      expect((await r.updateMigrationIf(p.uuid, { abort_requested: true }, 'abortable')).applied).toBe(false);
      const done = record(34, { status: 'completed' });
      await r.createMigration(done);
      expect((await r.updateMigrationIf(done.uuid, { abort_requested: true }, 'abortable')).applied).toBe(false);
    });

    it('hosts and inventories: a report is upserted, an older inventory never undoes a newer event', async () => {
      const id = 'a'.repeat(64);
      await r.saveHostReport('h1', hostState([{ id, name: 'web', image: 'img', status: 'running' }]), '2026-11-30T06:00:00.000Z');
      await r.saveHostReport('h1', hostState([{ id, name: 'web', image: 'img', status: 'running' }]), '2026-11-30T06:00:05.000Z');
      expect((await r.listHostRecords()).map((h) => [h.name, h.updated_at, h.status])).toEqual([['h1', '2026-11-30T06:00:05.000Z', 'enabled']]);
      expect(await r.applyContainerChange('h1', { id, name: null, image: null, status: 'exited', at: '2026-11-30T06:00:10.000Z' })).toBe(true);
      // An inventory taken before that event: the event stays.
      await r.saveInventory('h1', [{ id, name: 'web', image: 'img', status: 'running' }], '2026-11-30T06:00:08.000Z');
      expect((await r.listContainers()).map((c) => c.status)).toEqual(['exited']);
      expect(await r.applyContainerChange('h1', { id, name: null, image: null, status: 'paused', at: '2026-11-30T06:00:09.000Z' })).toBe(false);
      // A newer one is the truth.
      await r.saveInventory('h1', [{ id, name: 'web2', image: 'img', status: 'running' }], '2026-11-30T06:00:11.000Z');
      expect((await r.listContainers()).map((c) => `${c.name}/${c.status}`)).toEqual(['web2/running']);
      await r.setContainerHost(id, 'h2', 'b'.repeat(64));
      expect((await r.listContainers()).map((c) => `${c.host}/${c.id[0]}`)).toEqual(['h2/b']);
      expect(await r.setHostStatus('h1', 'disabled', 'maintenance')).toMatchObject({ status: 'disabled', disabled_reason: 'maintenance' });
      expect(await r.setHostStatus('nope', 'disabled', null)).toBeNull();
    });

    it('evacuations: created with their containers in order, updated, listed newest first', async () => {
      const now = '2026-11-30T07:00:00.000Z';
      const base = {
        host: 'h1',
        target_host: null,
        max_parallel: 3,
        post_copy: false,
        status: 'running' as const,
        host_disabled: true,
        error: null,
        request_id: 'req-1',
        user_id: 'u',
        project_id: 'p',
        created_at: now,
        updated_at: now,
      };
      const c = (n: string) => ({
        container_id: n,
        container_name: n,
        container_status: 'running',
        status: 'pending' as const,
        migration_uuid: null,
        dest_host: null,
        reason: null,
        updated_at: now,
      });
      const e1 = randomUUID();
      const e2 = randomUUID();
      await r.createEvacuation({ ...base, uuid: e1, containers: [c('z'), c('a')] });
      await r.createEvacuation({ ...base, uuid: e2, containers: [] });
      const got = await r.getEvacuation(e1);
      expect(got?.containers.map((x) => x.container_id)).toEqual(['z', 'a']);
      expect(got).toMatchObject({ host_disabled: true, post_copy: false, max_parallel: 3 });
      await r.updateEvacuationContainer(e1, 'a', { status: 'migrating', migration_uuid: 'm', dest_host: 'h2' });
      expect((await r.updateEvacuation(e1, { status: 'completed' })).counts).toMatchObject({ pending: 1, migrating: 1 });
      // Same created_at: the later one first.
      expect((await r.listEvacuations({ host: 'h1' })).map((e) => e.uuid)).toEqual([e2, e1]);
      expect((await r.listEvacuations({ limit: 1 })).map((e) => e.uuid)).toEqual([e2]);
      expect((await r.unfinishedEvacuations()).map((e) => e.uuid)).toEqual([e2]);
    });
  });

  describe('claims', () => {
    let r: SqlRepository;
    beforeAll(async () => {
      r = await fresh();
    });

    it('one claimant at a time; renewed by its owner; taken over once the lease ran out', async () => {
      const m = record(2, { status: 'running' });
      await r.createMigration(m);
      expect(await r.claimable('migration')).toContain(m.uuid);
      const asked = await Promise.all(['a:1', 'b:2', 'c:3', 'd:4'].map((o) => r.claim('migration', m.uuid, o, 60_000)));
      expect(asked.filter(Boolean)).toHaveLength(1);
      const owner = ['a:1', 'b:2', 'c:3', 'd:4'][asked.indexOf(true)];
      expect((await r.getClaim('migration', m.uuid))?.owner).toBe(owner);
      expect(await r.claimable('migration')).not.toContain(m.uuid);
      expect(await r.claim('migration', m.uuid, owner, 60_000)).toBe(true); // its own: renewed
      expect(await r.claim('migration', m.uuid, 'other:9', 60_000)).toBe(false);
      expect(await r.renewClaims(owner, 50)).toBe(1);
      await new Promise((res) => setTimeout(res, 80));
      expect(await r.claimable('migration')).toContain(m.uuid);
      expect(await r.claim('migration', m.uuid, 'other:9', 60_000)).toBe(true);
      expect(await r.renewClaims(owner, 60_000)).toBe(0);
      await r.releaseClaim('migration', m.uuid, owner); // not the owner any more: nothing happens
      expect((await r.getClaim('migration', m.uuid))?.owner).toBe('other:9');
      await r.releaseClaim('migration', m.uuid, 'other:9');
      expect(await r.getClaim('migration', m.uuid)).toBeNull();
    });

    it("a restarted conductor ends its previous incarnations' leases only", async () => {
      const a = record(3, { status: 'running' });
      const b = record(4, { status: 'running' });
      await r.createMigration(a);
      await r.createMigration(b);
      await r.claim('migration', a.uuid, 'conductor1:100', 60_000);
      await r.claim('migration', b.uuid, 'conductor2:200', 60_000);
      expect(await r.expireClaims('conductor1:', 'conductor1:101')).toBe(1);
      const free = await r.claimable('migration');
      expect(free).toContain(a.uuid);
      expect(free).not.toContain(b.uuid);
      await r.updateMigration(a.uuid, { status: 'completed' });
      expect(await r.claimable('migration')).not.toContain(a.uuid); // finished: nothing to take
    });

    it('a fenced view writes only while its owner holds the claim', async () => {
      const m = record(5, { status: 'pre-migrating' });
      const id = 'c'.repeat(64);
      await r.createMigration({ ...m, container_id: id });
      await r.applyContainerChange('h1', { id, name: 'x', image: 'i', status: 'running', at: new Date().toISOString() });
      await r.claim('migration', m.uuid, 'a:1', 60_000);
      const mine = r.fenced('migration', m.uuid, 'a:1');
      expect((await mine.updateMigration(m.uuid, { phase: 'prepare' })).phase).toBe('prepare');
      await mine.saveStep(m.uuid, 'check_dest', { ok: true });
      await r.expireClaims('a:', 'nobody');
      expect(await r.claim('migration', m.uuid, 'b:2', 60_000)).toBe(true);
      await expect(mine.updateMigration(m.uuid, { status: 'failed' })).rejects.toThrow(ClaimLost);
      await expect(mine.saveStep(m.uuid, 'pre', { x: 1 })).rejects.toThrow(ClaimLost);
      await expect(mine.setContainerHost(id, 'h2')).rejects.toThrow(ClaimLost);
      const now = await r.getMigration(m.uuid);
      expect(now?.status).toBe('pre-migrating');
      expect(await r.getSteps(m.uuid)).toEqual({ check_dest: { ok: true } });
      expect((await r.listContainers()).find((c) => c.id === id)?.host).toBe('h1');
      // The new owner's view writes; other records are not fenced by this claim.
      expect((await r.fenced('migration', m.uuid, 'b:2').updateMigration(m.uuid, { status: 'failed' })).status).toBe('failed');
      const other = record(6);
      await r.createMigration(other);
      expect((await mine.updateMigration(other.uuid, { phase: 'cleanup' })).phase).toBe('cleanup');
    });

    it("an evacuation's fenced view: its record and entries", async () => {
      const now = new Date().toISOString();
      const uuid = randomUUID();
      await r.createEvacuation({
        uuid,
        host: 'h1',
        target_host: null,
        max_parallel: 1,
        post_copy: false,
        status: 'running',
        host_disabled: false,
        error: null,
        request_id: null,
        user_id: null,
        project_id: null,
        created_at: now,
        updated_at: now,
        containers: [
          {
            container_id: 'k',
            container_name: 'k',
            container_status: 'running',
            status: 'pending',
            migration_uuid: null,
            dest_host: null,
            reason: null,
            updated_at: now,
          },
        ],
      });
      expect(await r.claimable('evacuation')).toContain(uuid);
      await r.claim('evacuation', uuid, 'a:1', 60_000);
      const mine = r.fenced('evacuation', uuid, 'a:1');
      await mine.updateEvacuationContainer(uuid, 'k', { status: 'migrating' });
      await r.expireClaims('a:', 'nobody');
      await r.claim('evacuation', uuid, 'b:2', 60_000);
      await expect(mine.updateEvacuationContainer(uuid, 'k', { status: 'completed' })).rejects.toThrow(ClaimLost);
      await expect(mine.updateEvacuation(uuid, { status: 'completed' })).rejects.toThrow(ClaimLost);
      expect((await r.getEvacuation(uuid))?.status).toBe('running');
    });

    it("admission counts every conductor's migrations per host, source and target alike", async () => {
      const mk = async (src: string, dst: string, owner: string, status: MigrationStatus = 'accepted') => {
        const m = { ...record(7, { status }), source_host: src, dest_host: dst };
        await r.createMigration(m);
        expect(await r.claim('migration', m.uuid, owner, 60_000)).toBe(true);
        return m.uuid;
      };
      const a1 = await mk('s1', 't1', 'a:1');
      const b1 = await mk('s2', 't1', 'b:1');
      const b2 = await mk('t1', 's3', 'b:1');
      // Of three conductors asking at once for slots on t1 (limit 2), exactly two get one.
      const got = await Promise.all([r.admit(a1, 'a:1', ['s1', 't1'], 2), r.admit(b1, 'b:1', ['s2', 't1'], 2), r.admit(b2, 'b:1', ['t1', 's3'], 2)]);
      expect(got.filter(Boolean)).toHaveLength(2);
      // Not the owner: never admitted.
      const c1 = await mk('s4', 't4', 'c:1');
      expect(await r.admit(c1, 'someone-else', ['s4', 't4'], 5)).toBe(false);
      // A migration past accepted holds its slot whether admitted or not; a finished one frees it.
      const running = await mk('s5', 't5', 'c:1', 'running');
      const next = await mk('s6', 't5', 'c:1');
      expect(await r.admit(next, 'c:1', ['s6', 't5'], 1)).toBe(false);
      await r.updateMigration(running, { status: 'completed' });
      expect(await r.admit(next, 'c:1', ['s6', 't5'], 1)).toBe(true);
      expect((await r.getClaim('migration', next))?.admitted).toBe(true);
    });
  });

  describe('paging containers', () => {
    let r: SqlRepository;
    beforeAll(async () => {
      r = await fresh();
    });
    afterAll(() => undefined);

    it('orders by host, name, id (byte order); a removed container still marks its place', async () => {
      const summary = (id: string, name: string) => ({ id, name, image: 'img', status: 'running' });
      await r.saveInventory('compute2', [summary('b'.repeat(64), 'web'), summary('a'.repeat(64), 'web')], '2026-11-30T06:00:00.000Z');
      await r.saveInventory(
        'compute1',
        [summary('c'.repeat(64), 'zeta'), summary('d'.repeat(64), 'alpha'), summary('e'.repeat(64), 'Zulu')],
        '2026-11-30T06:00:00.000Z',
      );
      const order = (await r.listContainers()).map((c) => `${c.host}/${c.name}/${c.id[0]}`);
      expect(order).toEqual(['compute1/Zulu/e', 'compute1/alpha/d', 'compute1/zeta/c', 'compute2/web/a', 'compute2/web/b']);
      const p1 = await r.listContainers({ limit: 3 });
      expect(p1.map((c) => c.id[0])).toEqual(['e', 'd', 'c']);
      // The marker's container goes away between pages: the next page still starts after it.
      await r.applyContainerChange('compute1', { id: 'c'.repeat(64), name: null, image: null, status: 'removed', at: '2026-11-30T06:00:01.000Z' });
      expect((await r.listContainers({ marker: 'c'.repeat(64) })).map((c) => c.id[0])).toEqual(['a', 'b']);
      expect((await r.listContainers()).map((c) => c.id[0])).toEqual(['e', 'd', 'a', 'b']);
      await expect(r.listContainers({ marker: 'nope' })).rejects.toThrow('marker "nope" could not be found');
      expect(Object.fromEntries(await r.containerCounts())).toEqual({ compute1: 2, compute2: 2 });
    });
  });
  describe('looking containers, hosts and migrations up without reading them all', () => {
    let r: SqlRepository;
    const hex = (i: number, c = '0') => `${i.toString(16).padStart(6, '0')}${c.repeat(58)}`;
    const summary = (id: string, name: string, status = 'running') => ({ id, name, image: 'img', status });
    const at = '2026-11-30T08:00:00.000Z';
    beforeAll(async () => {
      r = await fresh();
      // 3 hosts x 300 containers (more than one multi-row statement each); then live inventories of two of them replace theirs.
      for (const [h, host] of ['compute1', 'compute2', 'compute3'].entries()) {
        const list = Array.from({ length: 300 }, (_, i) => summary(hex(h * 1000 + i), `${host}-c${i}`));
        await r.saveHostReport(host, { ...hostState(list), memory_used_bytes: 100 + h, memory_total_bytes: 1000 }, at);
      }
      await r.saveInventory('compute1', [summary('abc'.padEnd(64, '1'), 'web'), summary('abd'.padEnd(64, '2'), 'web')], '2026-11-30T08:00:01.000Z');
      await r.saveInventory(
        'compute2',
        [summary('ABC'.padEnd(64, '3'), 'Web'), summary('a%c'.padEnd(64, '4'), '/web'), summary('a_c'.padEnd(64, '5'), 'abc'.padEnd(64, '1'))],
        '2026-11-30T08:00:01.000Z',
      );
      // A small host none of whose containers was ever deleted (MariaDB estimates a range by its entries, purged or not yet).
      await r.saveHostReport('compute4', hostState([summary(hex(4000), 'x'), summary(hex(4001), 'y')]), at);
    });

    it('containers by exact id or name, each once, by host, name, id; removed ones left out', async () => {
      const ids = async (id: string, names: string[]) => (await r.findContainers(id, names)).map((c) => `${c.host}/${c.name}/${c.id.slice(0, 3)}`);
      expect(await ids('abc'.padEnd(64, '1'), ['web', '/web'])).toEqual(['compute1/web/abc', 'compute1/web/abd', 'compute2//web/a%c']);
      // A name that is another container's id: both, and each once.
      expect(await ids('abc'.padEnd(64, '1'), ['abc'.padEnd(64, '1')])).toEqual(['compute1/web/abc', `compute2/${'abc'.padEnd(64, '1')}/a_c`]);
      expect(await ids('nope', ['Web'])).toEqual(['compute2/Web/ABC']); // names are case-sensitive
      expect(await ids('abc', [])).toEqual([]); // an id is never a prefix here
      await r.applyContainerChange('compute2', { id: 'ABC'.padEnd(64, '3'), name: null, image: null, status: 'removed', at: '2026-11-30T08:00:02.000Z' });
      expect(await ids('nope', ['Web'])).toEqual([]);
    });

    it('containers by id prefix: case-sensitive, LIKE wildcards taken literally, removed ones left out', async () => {
      const ids = async (p: string) => (await r.containersByIdPrefix(p)).map((c) => c.id.slice(0, 3));
      expect(await ids('ab')).toEqual(['abc', 'abd']);
      expect(await ids('abc')).toEqual(['abc']);
      expect(await ids('AB')).toEqual([]);
      expect(await ids('a%')).toEqual(['a%c']);
      expect(await ids('a_')).toEqual(['a_c']);
      expect(await ids('a!')).toEqual([]);
      expect(await ids('%')).toEqual([]);
      // compute3's (the live inventories replaced the others'): 2000 is 0x7d0.
      expect((await r.containersByIdPrefix(hex(2001).slice(0, 6))).map((c) => c.name)).toEqual(['compute3-c1']);
      const sixteen = await r.containersByIdPrefix('0007d');
      expect(sixteen.map((c) => c.id.slice(0, 6)).sort()).toEqual(Array.from({ length: 16 }, (_, i) => hex(2000 + i).slice(0, 6)));
      expect(sixteen.map((c) => c.name)).toEqual(sixteen.map((c) => c.name).sort()); // by host, name, id
      expect(await ids('\u{10ffff}')).toEqual([]); // no string past it: the range has no upper bound
    });

    it("one host's containers, by name, id", async () => {
      const on3 = await r.hostContainers('compute3');
      expect(on3).toHaveLength(300);
      expect(on3.map((c) => c.name)).toEqual([...on3.map((c) => c.name)].sort());
      expect(on3.every((c) => c.host === 'compute3')).toBe(true);
      expect(await r.hostContainers('nowhere')).toEqual([]);
    });

    it('each lookup reads through an index, never the whole table', async () => {
      const calls: [string, (v: SqlRepository) => Promise<unknown>][] = [
        ['findContainers', (v) => v.findContainers('abc'.padEnd(64, '1'), ['web', '/web'])],
        ['containersByIdPrefix', (v) => v.containersByIdPrefix('ab')],
        ['hostContainers', (v) => v.hostContainers('compute4')],
        ['unfinishedMigrationOf', (v) => v.unfinishedMigrationOf('abc'.padEnd(64, '1'))],
      ];
      for (const [name, call] of calls) {
        const ps = await plans(r, call);
        expect(ps.length).toBe(1);
        expect({ name, plan: ps[0].plan, scan: ps[0].scan }).toMatchObject({ name, scan: false });
      }
    });

    it('host records: the facts without the container list, and the count of containers now', async () => {
      const count = async (h: string) => (await r.getHostRecord(h))?.containers;
      const h1 = await r.getHostRecord('compute1');
      expect(h1).toMatchObject({ name: 'compute1', containers: 2, status: 'enabled', updated_at: at });
      expect(h1?.facts).toMatchObject({ criu_ok: true, architecture: 'x86_64', memory_used_bytes: 100, memory_total_bytes: 1000 });
      expect(h1?.facts).not.toHaveProperty('containers');
      expect((await r.listHostRecords()).map((h) => [h.name, h.containers])).toEqual([
        ['compute1', 2],
        ['compute2', 2],
        ['compute3', 300],
        ['compute4', 2],
      ]);
      // Every way containers change keeps the count: an event adds, removes, or moves one; a live inventory; a migration's move.
      await r.applyContainerChange('compute1', { id: 'f'.repeat(64), name: 'new', image: 'i', status: 'created', at: '2026-11-30T08:00:03.000Z' });
      expect(await count('compute1')).toBe(3);
      await r.applyContainerChange('compute3', { id: 'f'.repeat(64), name: null, image: null, status: 'running', at: '2026-11-30T08:00:04.000Z' });
      expect([await count('compute1'), await count('compute3')]).toEqual([2, 301]);
      await r.applyContainerChange('compute3', { id: 'f'.repeat(64), name: null, image: null, status: 'removed', at: '2026-11-30T08:00:05.000Z' });
      expect(await count('compute3')).toBe(300);
      await r.setContainerHost('abd'.padEnd(64, '2'), 'compute3', 'e'.repeat(64));
      expect([await count('compute1'), await count('compute3')]).toEqual([1, 301]);
      // An inventory that lists a container recorded elsewhere takes it from there.
      await r.saveInventory('compute2', [summary('e'.repeat(64), 'web'), summary('a%c'.padEnd(64, '4'), '/web')], '2026-11-30T08:00:06.000Z');
      expect([await count('compute2'), await count('compute3')]).toEqual([2, 300]);
      // A heartbeat that drops most of a host's containers (several statements' worth of deletes).
      await r.saveHostReport('compute3', hostState([summary(hex(2000), 'only')]), '2026-11-30T08:00:07.000Z');
      expect(await count('compute3')).toBe(1);
      expect(Object.fromEntries((await r.listHostRecords()).map((h) => [h.name, h.containers]))).toEqual(Object.fromEntries(await r.containerCounts()));
    });

    it("migrations: the unfinished one of a container, those on their way to each host, and a queue's look at some", async () => {
      const id = 'abc'.padEnd(64, '1');
      const mk = async (status: MigrationStatus, dest: string | null, container = id) => {
        const m = { ...record(9, { status, container_id: container }), dest_host: dest };
        await r.createMigration(m);
        return m;
      };
      const done = await mk('completed', 'compute2');
      expect(await r.unfinishedMigrationOf(id)).toBeNull();
      const running = await mk('running', 'compute2');
      expect((await r.unfinishedMigrationOf(id))?.uuid).toBe(running.uuid);
      expect(await r.unfinishedMigrationOf(id.slice(0, 12))).toBeNull(); // the exact id only
      await mk('accepted', 'compute2', 'x'.repeat(64));
      await mk('pre-migrating', 'compute3', 'y'.repeat(64));
      await mk('failed', 'compute3', 'z'.repeat(64));
      await mk('accepted', null, 'w'.repeat(64));
      expect(Object.fromEntries(await r.incomingCounts())).toEqual({ compute2: 2, compute3: 1 });
      await r.updateMigration(running.uuid, { abort_requested: true });
      const states = await r.migrationStates([done.uuid, running.uuid, 'nope', ...Array.from({ length: 300 }, () => randomUUID())]);
      expect(states.get(done.uuid)).toEqual({ status: 'completed', abort_requested: false });
      expect(states.get(running.uuid)).toEqual({ status: 'running', abort_requested: true });
      expect(states.size).toBe(2);
    });
  });

  describe('service records (rolling upgrades)', () => {
    it('a heartbeat with versions records the agent; one without (an older agent) leaves no record', async () => {
      const r = await fresh();
      await r.saveHostReport('compute1', { ...hostState(), service_version: 2, rpc_version: '1.2' }, '2026-12-01T10:00:00.000Z');
      await r.saveHostReport('compute2', hostState(), '2026-12-01T10:00:00.000Z');
      expect(await r.listServices()).toEqual([
        { binary: 'ferry-compute', host: 'compute1', topic: 'ferry-compute', service_version: 2, rpc_version: '1.2', updated_at: '2026-12-01T10:00:00.000Z' },
      ]);
      // compute1 downgraded to an agent that says nothing: its record goes, so it no longer counts as current.
      await r.saveHostReport('compute1', hostState(), '2026-12-01T10:00:05.000Z');
      expect(await r.listServices()).toEqual([]);
    });

    it('a service refreshes its own record; the newest write wins, the creation time stays', async () => {
      const r = await fresh();
      await r.saveService(
        { binary: 'ferry-conductor', host: 'ctl1', topic: 'ferry-conductor', service_version: 1, rpc_version: '1.4' },
        '2026-12-01T10:00:00.000Z',
      );
      await r.saveService(
        { binary: 'ferry-conductor', host: 'ctl2', topic: 'ferry-conductor', service_version: 2, rpc_version: null },
        '2026-12-01T10:00:01.000Z',
      );
      await r.saveService(
        { binary: 'ferry-conductor', host: 'ctl1', topic: 'ferry-conductor', service_version: 2, rpc_version: '1.4' },
        '2026-12-01T10:00:09.000Z',
      );
      expect(await r.listServices()).toEqual([
        { binary: 'ferry-conductor', host: 'ctl1', topic: 'ferry-conductor', service_version: 2, rpc_version: '1.4', updated_at: '2026-12-01T10:00:09.000Z' },
        { binary: 'ferry-conductor', host: 'ctl2', topic: 'ferry-conductor', service_version: 2, rpc_version: null, updated_at: '2026-12-01T10:00:01.000Z' },
      ]);
    });
  });
}
