/**
 * Several conductors on one database: each migration and evacuation is driven by the one
 * conductor holding its claim; when that conductor stops renewing (it died, or hangs), another
 * takes the work over once the lease has run out and finishes it, and the first, if it ever goes
 * on, writes nothing more. Two ConductorService instances on one (in-memory SQLite) repository,
 * scripted hosts (pure logic).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { MigrationPreCheckError } from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import type { ComputeMethod, ComputeResult } from '../../../src/compute/methods.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import type { EventName } from '../../../src/conductor/flow.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { HostState } from '../../../src/objects/host.js';
import type { Migration } from '../../../src/objects/migration.js';
import { hostState } from '../../helpers/host-state.js';

const log = pino({ level: 'silent' });
const LEASE = 300;

const state = (containers: HostState['containers']) => hostState(containers);
const running = (id: string, name: string) => ({ id, name, image: 'img', status: 'running' });

function result(method: ComputeMethod, args: Record<string, unknown>): unknown {
  const id = String(args.migration_id);
  switch (method) {
    case 'check_can_migrate_destination':
      return { dest: {}, image_present: true };
    case 'check_can_migrate_source':
      return { source: {}, spec: {}, export: { address: 'a', token: 't' } };
    case 'pre_migration':
      return {
        dest_host: 'c2',
        container_id: `new-${id}`,
        upload: { address: 'a', token: 't' },
        image_transferred: false,
        image_bytes: 0,
        image_ms: 0,
        create_ms: 1,
        connections_preserved: true,
      };
    case 'live_migration':
      return {
        mode: 'stop-and-copy',
        page_server: null,
        memory_total_bytes: 5000,
        container_id: 'abc',
        checkpoint_name: 'ck',
        fast_checkpoint: false,
        frozen_at: 1000,
        checkpoint_ms: 300,
        transfer_ms: 100,
        memory_bytes: 5000,
        rootfs_bytes: 10,
        volume_bytes: 0,
        transferred_bytes: 5010,
        parts: [],
      };
    case 'post_migration_at_destination':
      return {
        container_id: `new-${id}`,
        running: true,
        restored_at: 1900,
        place_ms: 5,
        restore_ms: 400,
        garp_sent: true,
        connections_preserved: true,
        post_copy: false,
      };
    case 'cleanup_source':
      return { container_removed: true, volumes_removed: [] };
    default:
      return {};
  }
}

/** One conductor's hosts: every call recorded; `hold(method)` makes the next calls of it wait until `release()`. */
class Hosts implements ComputeAPI {
  readonly calls: string[] = [];
  private held = new Set<string>();
  private waiting: (() => void)[] = [];
  readonly arrived: string[] = [];

  hold(method: ComputeMethod): void {
    this.held.add(method);
  }

  /** Let the held calls answer, or fail with `error`. */
  release(error?: Error): void {
    this.held.clear();
    this.failWith = error;
    for (const w of this.waiting.splice(0)) w();
  }

  private failWith?: Error;

  async call<M extends ComputeMethod>(_ctx: RequestContext, host: string, method: M, args: unknown): Promise<ComputeResult<M>> {
    const a = args as Record<string, unknown>;
    this.calls.push(`${method}@${host}:${String(a.migration_id).slice(0, 8)}`);
    if (this.held.has(method)) {
      this.arrived.push(String(a.migration_id));
      await new Promise<void>((r) => this.waiting.push(r));
      if (this.failWith) throw this.failWith;
    }
    await sleep(5);
    return result(method, a) as ComputeResult<M>;
  }
}

const services: ConductorService[] = [];
afterEach(() => {
  for (const s of services.splice(0)) s.stopClaims();
});

function world() {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const repo = new SqliteRepository(db);
  const conductor = (name: string, maxPerHost = 5, itsRepo: SqliteRepository = repo, itsLog = log) => {
    const hosts = new Hosts();
    const events: [EventName, string][] = [];
    const evacuationEvents: string[] = [];
    const svc = new ConductorService(
      itsRepo,
      hosts,
      async (_c, e, m) => void events.push([e, m.uuid]),
      {
        maxConcurrentPerHost: maxPerHost,
        serviceDownTime: 30,
        retry: { deadlineMs: 300, backoffMs: 10 },
        claims: { owner: `${name}:1`, leaseMs: LEASE, scanMs: 50, takeOverPrefix: `${name}:` },
      },
      itsLog,
      undefined,
      async (_c, event) => void evacuationEvents.push(event),
    );
    services.push(svc);
    return { svc, hosts, events, evacuationEvents };
  };
  return { repo, conductor };
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const ctx = () => new RequestContext({ roles: ['admin'], is_admin: true });

describe('claims between conductors', () => {
  it('a conductor stopping with a flow in flight: its database closes under the flow, which is left (logged, not an error) and resumed by the next conductor', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-stop-'));
    try {
      const file = `sqlite:///${path.join(dir, 'ferry.db')}`;
      const dbA = openDatabase(file);
      syncSchema(dbA);
      const said: { level: number; msg: string }[] = [];
      const listening = pino({ level: 'info' }, { write: (line: string) => void said.push(JSON.parse(line) as { level: number; msg: string }) });
      const { conductor } = world();
      const a = conductor('condA', 5, new SqliteRepository(dbA), listening);
      await a.svc.reportState('c1', state([running('abc', 'web')]));
      await a.svc.reportState('c2', state([]));
      await a.svc.recover();
      a.hosts.hold('pre_migration');
      const m = await a.svc.migrateOnLiveState(ctx(), 'web');
      await until('pre_migration on A', () => a.hosts.arrived.includes(m.uuid));
      // The service's shutdown order: the conductor stops, then its database closes, then the bus (the held call answers).
      a.svc.stop();
      dbA.close();
      a.hosts.release();
      await a.svc.whenIdle();
      const errors = said.filter((l) => l.level >= 50).map((l) => l.msg);
      expect(errors).toEqual([]);
      expect(said.map((l) => l.msg)).toContain('migration flow left at shutdown: the next conductor resumes it from its record');

      const dbB = openDatabase(file);
      const repoB = new SqliteRepository(dbB);
      const b = conductor('condB', 5, repoB);
      await b.svc.recover();
      await until('B to finish the migration', async () => (await repoB.getMigration(m.uuid))?.status === 'completed', 10_000);
      await b.svc.whenIdle();
      b.svc.stop();
      dbB.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a conductor that stops renewing: another takes its migration over within the lease and finishes it; the first then writes nothing', async () => {
    const { repo, conductor } = world();
    const a = conductor('condA');
    const b = conductor('condB');
    await a.svc.reportState('c1', state([running('abc', 'web')]));
    await a.svc.reportState('c2', state([]));
    await a.svc.recover();
    await b.svc.recover();
    a.hosts.hold('live_migration');
    const m = await a.svc.migrateOnLiveState(ctx(), 'web');
    await until('the freeze on conductor A', () => a.hosts.arrived.includes(m.uuid));
    // B scans all along, but A holds the claim and renews it.
    await sleep(LEASE * 2);
    expect((await repo.getClaim('migration', m.uuid))?.owner).toBe('condA:1');
    expect(b.hosts.calls).toEqual([]);

    a.svc.stopClaims(); // A hangs: its flow waits on live_migration, nobody renews its claims
    const lostAt = Date.now();
    await until('B to finish it', async () => (await repo.getMigration(m.uuid))?.status === 'completed');
    expect(Date.now() - lostAt).toBeLessThan(LEASE + 1000);
    expect(b.hosts.calls.map((c) => c.split('@')[0])).toEqual(['live_migration', 'post_migration_at_destination', 'cleanup_source']);

    // A comes back: its step answers, but it no longer holds the claim: no write, no further step, no notification.
    const before = (await repo.getMigration(m.uuid)) as Migration;
    const aCalls = a.hosts.calls.length;
    a.hosts.release();
    await a.svc.whenIdle();
    expect(await repo.getMigration(m.uuid)).toEqual(before);
    expect(a.hosts.calls.length).toBe(aCalls);
    expect(a.events.map(([e]) => e)).toEqual(['live_migration.start', 'live_migration_pre.start', 'live_migration_pre.end']);
    expect(b.events.filter(([e]) => e === 'live_migration.end')).toHaveLength(1);
    expect((await repo.listContainers()).map((c) => `${c.host}/${c.id}`)).toEqual([`c2/new-${m.uuid}`]);
    expect(await repo.getClaim('migration', m.uuid)).toBeNull(); // released by B at the end
  });

  it('a flow whose claim was lost stops before its rollback: an error on the stuck conductor undoes nothing', async () => {
    const { repo, conductor } = world();
    const a = conductor('condA');
    const b = conductor('condB');
    await a.svc.reportState('c1', state([running('abc', 'web')]));
    await a.svc.reportState('c2', state([]));
    await b.svc.recover();
    a.hosts.hold('pre_migration');
    b.hosts.hold('pre_migration');
    const m = await a.svc.migrateOnLiveState(ctx(), 'web');
    await until('pre_migration on A', () => a.hosts.arrived.includes(m.uuid));
    // A's claim runs out (A never started renewing); B resumes it from pre-migrating and prepares the target too.
    await until('pre_migration on B', () => b.hosts.arrived.includes(m.uuid));
    // A's pre_migration fails at last, before the freeze: A must neither write nor ask for rollback_at_destination (the target is B's now).
    a.hosts.release(new MigrationPreCheckError('pre_migration failed on the target'));
    await a.svc.whenIdle();
    expect(a.hosts.calls.filter((c) => c.startsWith('rollback'))).toEqual([]);
    expect((await repo.getMigration(m.uuid))?.status).toBe('pre-migrating');
    b.hosts.release();
    await until('B to finish it', async () => (await repo.getMigration(m.uuid))?.status === 'completed');
  });

  it('an evacuation whose conductor dies is taken over: every container moved exactly once', async () => {
    const { repo, conductor } = world();
    const a = conductor('condA');
    const b = conductor('condB');
    await a.svc.reportState('c1', state([running('a1', 'w1'), running('a2', 'w2'), running('a3', 'w3'), running('a4', 'w4')]));
    await a.svc.reportState('c2', state([]));
    await a.svc.recover();
    await b.svc.recover();
    a.hosts.hold('post_migration_at_destination');
    const e = await a.svc.evacuate(ctx(), 'c1', { max_parallel: 2 });
    await until('two migrations held on A', () => a.hosts.arrived.length === 2);
    a.svc.stopClaims();
    await until('the evacuation to end', async () => (await repo.getEvacuation(e.uuid))?.status !== 'running', 10_000);
    a.hosts.release();
    await a.svc.whenIdle();
    await b.svc.whenIdle();
    const done = await repo.getEvacuation(e.uuid);
    expect(done?.status).toBe('completed');
    expect(done?.counts.completed).toBe(4);
    const all = await repo.listMigrations();
    expect(all).toHaveLength(4);
    expect(new Set(all.map((m) => m.container_id))).toEqual(new Set(['a1', 'a2', 'a3', 'a4']));
    expect(all.every((m) => m.status === 'completed')).toBe(true);
    expect((await repo.listContainers()).every((c) => c.host === 'c2')).toBe(true);
    // The two A had started were finished by B; A's late answers changed nothing.
    expect(b.events.filter(([ev]) => ev === 'live_migration.end')).toHaveLength(4 - a.events.filter(([ev]) => ev === 'live_migration.end').length);
    expect(a.events.filter(([ev]) => ev === 'live_migration.end')).toHaveLength(0);
  });

  it('the per-host limit holds across conductors (counted in the database), and a freed slot is used by the other conductor', async () => {
    const { repo, conductor } = world();
    const a = conductor('condA', 1);
    const b = conductor('condB', 1);
    await a.svc.reportState('c1', state([running('a1', 'w1'), running('a2', 'w2')]));
    await a.svc.reportState('c2', state([]));
    await a.svc.recover();
    await b.svc.recover();
    a.hosts.hold('live_migration');
    b.hosts.hold('live_migration');
    const m1 = await a.svc.migrateOnLiveState(ctx(), 'w1');
    const m2 = await b.svc.migrateOnLiveState(ctx(), 'w2');
    await until('one of them to freeze', () => a.hosts.arrived.length + b.hosts.arrived.length === 1);
    await sleep(LEASE);
    const statuses = async () => [(await repo.getMigration(m1.uuid))?.status, (await repo.getMigration(m2.uuid))?.status];
    expect((await statuses()).filter((s) => s !== 'accepted')).toHaveLength(1);
    a.hosts.release();
    b.hosts.release();
    await until('both to complete', async () => (await statuses()).every((s) => s === 'completed'));
    // Each ran on the conductor that accepted it.
    expect(a.hosts.calls.every((c) => c.endsWith(m1.uuid.slice(0, 8)))).toBe(true);
    expect(b.hosts.calls.every((c) => c.endsWith(m2.uuid.slice(0, 8)))).toBe(true);
  });

  it('an abort that reaches another conductor than the one the migration is queued on cancels it there', async () => {
    const { repo, conductor } = world();
    const a = conductor('condA', 1);
    const b = conductor('condB', 1);
    await a.svc.reportState('c1', state([running('a1', 'w1'), running('a2', 'w2')]));
    await a.svc.reportState('c2', state([]));
    await a.svc.recover();
    await b.svc.recover();
    a.hosts.hold('live_migration');
    const m1 = await a.svc.migrateOnLiveState(ctx(), 'w1');
    const m2 = await a.svc.migrateOnLiveState(ctx(), 'w2'); // queued on A behind m1
    await until('m1 to freeze', () => a.hosts.arrived.includes(m1.uuid));
    expect((await repo.getMigration(m2.uuid))?.status).toBe('accepted');
    await b.svc.abort(ctx(), m2.uuid);
    await until('m2 cancelled', async () => (await repo.getMigration(m2.uuid))?.status === 'cancelled');
    expect(b.hosts.calls).toEqual([]);
    a.hosts.release();
    await a.svc.whenIdle();
    expect((await repo.getMigration(m1.uuid))?.status).toBe('completed');
  });

  it('a takeover scan that runs while a migration or an evacuation is being recorded leaves it to the call that accepted it: each runs once', async () => {
    const { repo, conductor } = world();
    // Recording a new migration or evacuation takes a while (a busy database): this conductor's own scan runs meanwhile.
    const slowToRecord = new Proxy(repo, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...a: unknown[]) => unknown;
        if (prop === 'createMigration' || prop === 'createEvacuation') {
          return async (...a: unknown[]) => {
            await fn.apply(target, a);
            await sleep(LEASE / 2);
          };
        }
        return fn.bind(target);
      },
    });
    const said: string[] = [];
    const listening = pino({ level: 'info' }, { write: (line: string) => void said.push((JSON.parse(line) as { msg: string }).msg) });
    const a = conductor('condA', 5, slowToRecord, listening);
    await a.svc.reportState('c1', state([running('a1', 'w1'), running('a2', 'w2'), running('a3', 'w3')]));
    await a.svc.reportState('c2', state([]));
    await a.svc.recover();
    const m = await a.svc.migrateOnLiveState(ctx(), 'w1');
    await until('the migration to complete', async () => (await repo.getMigration(m.uuid))?.status === 'completed');
    const e = await a.svc.evacuate(ctx(), 'c1', { max_parallel: 2 });
    await until('the evacuation to end', async () => (await repo.getEvacuation(e.uuid))?.status !== 'running', 10_000);
    await a.svc.whenIdle();
    expect((await repo.getEvacuation(e.uuid))?.status).toBe('completed');
    const migrations = await repo.listMigrations();
    expect(migrations.map((x) => x.container_id).sort()).toEqual(['a1', 'a2', 'a3']);
    expect(migrations.every((x) => x.status === 'completed')).toBe(true);
    // One freeze per container: no second flow ran any of them.
    const freezes = a.hosts.calls.filter((c) => c.startsWith('live_migration@'));
    expect(freezes).toHaveLength(3);
    expect(new Set(freezes).size).toBe(3);
    // One runner drove the evacuation: one start, one end.
    expect(a.evacuationEvents).toEqual(['host.evacuate.start', 'host.evacuate.end']);
    expect(said.filter((msg) => msg === 'evacuation ended')).toHaveLength(1);
  });
});
