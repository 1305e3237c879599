/**
 * What accepting and queueing migrations asks of the database: a migrate request reads the
 * container by index and the host list once, never every container or every unfinished
 * migration; a pass over a long queue whose hosts are busy reads nothing, and each queued
 * migration is admitted and read once, when it starts. Real SQLite repository with its calls
 * counted; scripted hosts (pure logic).
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { sleep } from '../../../src/common/sleep.js';
import type { Inventory, InventoryAPI } from '../../../src/compute/inventory.js';
import type { ComputeMethod, ComputeResult } from '../../../src/compute/methods.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import { SqliteRepository, type Repository } from '../../../src/conductor/repository.js';
import { ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { ContainerSummary, HostState } from '../../../src/objects/host.js';
import { migrateOnRecord } from './recorded-decision.js';

const log = pino({ level: 'silent' });
const ctx = () => new RequestContext({ roles: ['admin'], is_admin: true });

function state(containers: ContainerSummary[]): HostState {
  return { docker_version: '20.10', api_version: '1.41', criu_version: '4.2.1', criu_ok: true, architecture: 'x86_64', migration_address: 'x:1', containers };
}
const running = (i: number): ContainerSummary => ({ id: i.toString(16).padStart(8, '0').repeat(8), name: `w${i}`, image: 'img', status: 'running' });

/** The repository with its top-level calls counted (a flow's fenced view is another object, not counted). */
function counted(repo: Repository): { repo: Repository; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(repo, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      return (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { repo: proxy, calls };
}

/** Every compute step answers after a few ms; `hold()` keeps live_migration waiting until `release()`. */
class Hosts implements ComputeAPI, InventoryAPI {
  private held = false;
  private waiting: (() => void)[] = [];
  frozen = 0;
  constructor(private readonly inventories: Record<string, ContainerSummary[]>) {}
  hold(): void {
    this.held = true;
  }
  release(): void {
    this.held = false;
    for (const w of this.waiting.splice(0)) w();
  }
  async inventory(_ctx: RequestContext, host: string): Promise<Inventory> {
    return { host, taken_at: new Date().toISOString(), containers: this.inventories[host] ?? [] };
  }
  async call<M extends ComputeMethod>(_ctx: RequestContext, _host: string, method: M, args: unknown): Promise<ComputeResult<M>> {
    const id = String((args as Record<string, unknown>).migration_id);
    if (method === 'live_migration') {
      this.frozen++;
      if (this.held) await new Promise<void>((r) => this.waiting.push(r));
    }
    await sleep(2);
    const results: Partial<Record<ComputeMethod, unknown>> = {
      check_can_migrate_destination: { dest: {}, image_present: true },
      check_can_migrate_source: { source: {}, spec: {}, export: { address: 'a', token: 't' } },
      pre_migration: {
        dest_host: 'c2',
        container_id: `new-${id}`,
        upload: { address: 'a', token: 't' },
        image_transferred: false,
        image_bytes: 0,
        image_ms: 0,
        create_ms: 1,
        connections_preserved: true,
      },
      live_migration: {
        mode: 'stop-and-copy',
        page_server: null,
        memory_total_bytes: 1,
        container_id: 'x',
        checkpoint_name: 'ck',
        fast_checkpoint: false,
        frozen_at: 1,
        checkpoint_ms: 1,
        transfer_ms: 1,
        memory_bytes: 1,
        rootfs_bytes: 1,
        volume_bytes: 0,
        transferred_bytes: 2,
        parts: [],
      },
      post_migration_at_destination: {
        container_id: `new-${id}`,
        running: true,
        restored_at: 2,
        place_ms: 1,
        restore_ms: 1,
        garp_sent: true,
        connections_preserved: true,
        post_copy: false,
      },
      cleanup_source: { container_removed: true, volumes_removed: [] },
    };
    return (results[method] ?? {}) as ComputeResult<M>;
  }
}

/** Hosts c1 (n running containers) and c2; reported states trusted for `maxAge` seconds. */
async function world(n: number, maxAge = 60) {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const { repo, calls } = counted(new SqliteRepository(db));
  const on1 = Array.from({ length: n }, (_, i) => running(i + 1));
  const hosts = new Hosts({ c1: on1, c2: [] });
  const svc = new ConductorService(
    repo,
    hosts,
    async () => undefined,
    { maxConcurrentPerHost: 1, serviceDownTime: 30, containerStateMaxAge: maxAge },
    log,
    hosts,
  );
  // Taken 5 s ago: fresh for 60 s, stale for 0.
  const taken = new Date(Date.now() - 5000).toISOString();
  await svc.reportState('c1', state(on1), taken);
  await svc.reportState('c2', state([]), taken);
  return { svc, hosts, calls, on1 };
}

describe('what accepting a migration reads', () => {
  it('a migrate request: the container by index, the host list once, the incoming count grouped; no whole-table reads', async () => {
    const { svc, calls } = await world(50);
    calls.clear();
    const m = await svc.migrateOnLiveState(ctx(), 'w7');
    expect(m).toMatchObject({ container_name: 'w7', source_host: 'c1', dest_host: 'c2' });
    expect(calls.get('findContainers')).toBe(1);
    expect(calls.get('listHostRecords')).toBe(1);
    expect(calls.get('incomingCounts')).toBe(1);
    expect(calls.get('unfinishedMigrationOf')).toBe(1);
    for (const whole of ['listContainers', 'containerCounts', 'unfinishedMigrations', 'listMigrations']) expect(calls.get(whole)).toBeUndefined();
    await svc.whenIdle();
  });

  it('an id prefix is looked up by prefix only when nothing has that exact id or name; a stale state is checked live on its host only', async () => {
    const { svc, calls } = await world(3, 0);
    calls.clear();
    const m = await svc.migrateOnLiveState(ctx(), running(2).id.slice(0, 12));
    expect(m.container_id).toBe(running(2).id);
    // Twice each: before and after the live check of c1 (whose record says whether the host is up); nowhere else asked.
    expect([calls.get('findContainers'), calls.get('containersByIdPrefix'), calls.get('getHostRecord'), calls.get('saveInventory')]).toEqual([2, 2, 1, 1]);
    expect(calls.get('listHostRecords')).toBe(1);
    await svc.whenIdle();
  });

  it('a long queue behind a busy host: passes read nothing for it; each migration is admitted and read once, when it starts', async () => {
    const { svc, hosts, calls, on1 } = await world(20);
    hosts.hold();
    calls.clear();
    const first = await migrateOnRecord(svc, ctx(), on1[0].name);
    while (hosts.frozen === 0) await sleep(5);
    for (const c of on1.slice(1)) await migrateOnRecord(svc, ctx(), c.name);
    await sleep(50);
    // Only the first has started: its admission and its read; the 19 behind it cost nothing yet.
    expect([calls.get('admit'), calls.get('getMigration')]).toEqual([1, 1]);
    hosts.release();
    await svc.whenIdle();
    expect([calls.get('admit'), calls.get('getMigration')]).toEqual([20, 20]);
    const all = await svc.listMigrations({});
    expect(all.map((m) => m.status)).toEqual(Array(20).fill('completed'));
    expect(all.find((m) => m.uuid === first.uuid)?.status).toBe('completed');
    expect(hosts.frozen).toBe(20);
  });
});
