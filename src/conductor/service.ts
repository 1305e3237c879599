/**
 * The conductor's domain service: accepts migrations, queues them per source host, runs
 * their flows, answers queries, records heartbeats, and on start brings every migration a
 * previous run left mid-way to a definite end. No AMQP here: manager.ts exposes it on the bus.
 */
import { randomUUID } from 'node:crypto';
import { RequestContext } from '../bus/context.js';
import {
  ContainerNotFound,
  HostDown,
  InvalidInput,
  InvalidMigrationState,
  MigrationInProgress,
  MigrationNotFound,
} from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import type { ComputeHost, Container, HostState } from '../objects/host.js';
import { isFinal, unmeasured, type Migration } from '../objects/migration.js';
import { MigrationFlow, type FlowDeps } from './flow.js';
import { chooseTarget, toComputeHost } from './hosts.js';
import type { MigrationFilters } from './interface.js';
import type { ContainerRecord, Repository } from './repository.js';
import { isBeforeFreeze } from './statemachine.js';

export interface ConductorOptions {
  maxConcurrentPerHost: number;
  serviceDownTime: number; // seconds
}

export class ConductorService {
  private readonly active = new Map<string, number>(); // source host -> migrations in flight
  private readonly running = new Set<string>(); // uuids with a flow in progress
  private readonly queue: string[] = [];
  private readonly idle: (() => void)[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly compute: ComputeAPI,
    private readonly notify: FlowDeps['notify'],
    private readonly opts: ConductorOptions,
    private readonly log: Logger,
  ) {}

  // ---- queries ----
  listHosts(now = Date.now()): ComputeHost[] {
    return this.repo.listHostRecords().map((r) => toComputeHost(r, now, this.opts.serviceDownTime));
  }

  listContainers(): Container[] {
    return this.repo.listContainers().map(({ id, name, host, image, status }) => ({ id, name, host, image, status }));
  }

  getMigration(uuid: string): Migration {
    const m = this.repo.getMigration(uuid);
    if (!m) throw new MigrationNotFound(`migration ${uuid} could not be found`);
    return m;
  }

  listMigrations(filters: MigrationFilters = {}): Migration[] {
    return this.repo.listMigrations(filters);
  }

  reportState(host: string, state: HostState): void {
    if (!host || typeof state !== 'object' || !Array.isArray(state?.containers)) {
      throw new InvalidInput('report_state needs a host name and a state with a containers list');
    }
    this.repo.saveHostReport(host, state, new Date().toISOString());
  }

  // ---- migrate / abort ----
  private resolveContainer(ref: string): ContainerRecord {
    if (!ref || typeof ref !== 'string') throw new InvalidInput('a container ID or name is required');
    const all = this.repo.listContainers();
    let matches = all.filter((c) => c.id === ref || c.name === ref || c.name === `/${ref}`);
    if (matches.length === 0 && /^[0-9a-f]{4,63}$/.test(ref)) matches = all.filter((c) => c.id.startsWith(ref));
    if (matches.length === 0) throw new ContainerNotFound(`container "${ref}" was not found on any compute host; see GET /v1/containers`);
    const running = matches.filter((c) => c.status === 'running');
    if (running.length > 1) {
      throw new InvalidInput(`"${ref}" matches ${running.length} running containers (${running.map((c) => `${c.id.slice(0, 12)} on ${c.host}`).join(', ')}); use the full ID`);
    }
    const c = running[0] ?? matches[0];
    if (c.status !== 'running') {
      throw new InvalidMigrationState(`container "${c.name}" on ${c.host} is ${c.status}, not running; only running containers are live-migrated`);
    }
    return c;
  }

  migrate(ctx: RequestContext, containerRef: string, requestedHost?: string | null): Migration {
    if (requestedHost !== undefined && requestedHost !== null && (typeof requestedHost !== 'string' || requestedHost.trim() === '')) {
      throw new InvalidInput('"host" must be a compute host name or null');
    }
    const c = this.resolveContainer(containerRef);
    const hosts = this.listHosts();
    const src = hosts.find((h) => h.name === c.host);
    if (!src || src.state !== 'up') throw new HostDown(`the container's host "${c.host}" is down; it cannot be migrated live`);
    const busy = this.repo.listMigrations({ container: c.id }).find((m) => !isFinal(m.status));
    if (busy) throw new MigrationInProgress(`container "${c.name}" is already being migrated (migration ${busy.uuid}, ${busy.status})`);
    const dest = chooseTarget(hosts, c.host, requestedHost ?? null);
    const now = new Date().toISOString();
    const m: Migration = {
      uuid: randomUUID(),
      container_id: c.id,
      container_name: c.name.replace(/^\//, ''),
      source_host: c.host,
      dest_host: dest,
      status: 'accepted',
      phase: null,
      progress: 0,
      error: null,
      ...unmeasured(),
      connections_preserved: null,
      abort_requested: false,
      request_id: ctx.request_id,
      user_id: ctx.user_id,
      project_id: ctx.project_id,
      created_at: now,
      updated_at: now,
    };
    this.repo.createMigration(m);
    this.log.info({ migration: m.uuid, container: c.id, source: c.host, dest }, 'migration accepted');
    this.enqueue(m.uuid);
    return m;
  }

  async abort(ctx: RequestContext, uuid: string): Promise<Migration> {
    const m = this.getMigration(uuid);
    if (isFinal(m.status)) throw new InvalidMigrationState(`migration ${uuid} is already ${m.status}; there is nothing to abort`);
    if (m.status === 'post-migrating') {
      // The restore on the target has begun; rolling back now could leave no running copy.
      throw new InvalidMigrationState(`migration ${uuid} is restoring the container on ${m.dest_host}; too late to abort`);
    }
    let updated = this.repo.updateMigration(uuid, { abort_requested: true });
    await this.notify(ctx, 'live_migration_abort.start', updated);
    if (!this.running.has(uuid) && updated.status === 'accepted') {
      // Still queued: no flow will pick it up, so end it here.
      const i = this.queue.indexOf(uuid);
      if (i >= 0) this.queue.splice(i, 1);
      updated = this.repo.updateMigration(uuid, { status: 'cancelled', error: 'aborted by request while queued' });
      await this.notify(ctx, 'live_migration_abort.end', updated);
    }
    this.log.info({ migration: uuid, status: updated.status, beforeFreeze: isBeforeFreeze(m.status) }, 'abort requested');
    return updated;
  }

  // ---- scheduling of flows ----
  private enqueue(uuid: string): void {
    this.queue.push(uuid);
    this.pump();
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const uuid = this.queue[i];
      const m = this.repo.getMigration(uuid);
      if (!m || isFinal(m.status)) {
        this.queue.splice(i, 1);
        continue;
      }
      const n = this.active.get(m.source_host) ?? 0;
      // A migration that already passed `accepted` held its slot before a restart: it goes on regardless.
      if (n >= this.opts.maxConcurrentPerHost && m.status === 'accepted') {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.start(m);
    }
    if (this.running.size === 0 && this.queue.length === 0) for (const f of this.idle.splice(0)) f();
  }

  private start(m: Migration): void {
    this.active.set(m.source_host, (this.active.get(m.source_host) ?? 0) + 1);
    this.running.add(m.uuid);
    const ctx = new RequestContext({
      request_id: m.request_id ?? undefined,
      user_id: m.user_id,
      project_id: m.project_id,
      roles: ['admin'],
      is_admin: true,
    });
    const flow = new MigrationFlow({ repo: this.repo, compute: this.compute, notify: this.notify, log: this.log }, ctx, m.uuid);
    void flow.run().then((final) => {
      this.log.info({ migration: m.uuid, status: final.status, freeze_ms: final.freeze_ms, error: final.error }, 'migration ended');
      this.active.set(m.source_host, (this.active.get(m.source_host) ?? 1) - 1);
      this.running.delete(m.uuid);
      this.pump();
    });
  }

  /** On start: every migration a previous conductor left unfinished is resumed to a final status. */
  recover(): number {
    const left = this.repo.unfinishedMigrations();
    for (const m of left) {
      this.log.warn({ migration: m.uuid, status: m.status, phase: m.phase }, 'resuming a migration left unfinished by a previous conductor');
      this.queue.push(m.uuid);
    }
    this.pump();
    return left.length;
  }

  /** Resolves when no flow runs and none is queued (used at shutdown and by tests). */
  whenIdle(): Promise<void> {
    if (this.running.size === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }
}
