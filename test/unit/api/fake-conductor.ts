/**
 * An in-memory ConductorAPI for API tests (unit and integration): it keeps migrations in a
 * map, knows a fixed set of hosts and containers, and records every call with its context.
 */
import { randomUUID } from 'node:crypto';
import { chooseTarget } from '../../../src/conductor/hosts.js';
import type { RequestContext } from '../../../src/common/context.js';
import { ContainerNotFound, EvacuationNotFound, HostNotFound, InvalidInput, InvalidMigrationState, MigrationNotFound } from '../../../src/common/errors.js';
import type {
  ConductorAPI,
  ContainerListRequest,
  EvacuateOptions,
  EvacuationFilters,
  MigrateRequestOptions,
  MigrationFilters,
  PageRequest,
} from '../../../src/conductor/interface.js';
import { countByStatus, type Evacuation } from '../../../src/objects/evacuation.js';
import type { ComputeHost, Container, HostStatus } from '../../../src/objects/host.js';
import { isFinal, unmeasured, type Migration } from '../../../src/objects/migration.js';

export interface Call {
  method: string;
  ctx: RequestContext;
  args: unknown[];
}

export function hostFixture(name: string, over: Partial<ComputeHost> = {}): ComputeHost {
  return {
    name,
    state: 'up',
    status: 'enabled',
    disabled_reason: null,
    docker_version: '28.1.1',
    criu_version: '4.2',
    criu_ok: true,
    architecture: 'x86_64',
    migration_address: '127.0.0.1:9518',
    containers: 1,
    memory_used_bytes: null,
    memory_total_bytes: null,
    modes: null,
    updated_at: '2026-11-26T12:00:00.000Z',
    ...over,
  };
}

/** Items after `marker` (in the list's own order), at most `limit`; an unknown marker is a 400, as the conductor answers. */
function page<T>(items: T[], p: PageRequest, key: (x: T) => string): T[] {
  let from = 0;
  if (p.marker !== undefined) {
    const i = items.findIndex((x) => key(x) === p.marker);
    if (i < 0) throw new InvalidInput(`marker "${p.marker}" could not be found`);
    from = i + 1;
  }
  return items.slice(from, p.limit === undefined ? undefined : from + p.limit);
}

export class FakeConductor implements ConductorAPI {
  readonly calls: Call[] = [];
  readonly migrations = new Map<string, Migration>();
  readonly evacuations = new Map<string, Evacuation>();
  hosts: ComputeHost[] = [hostFixture('compute1'), hostFixture('compute2', { migration_address: '127.0.0.1:9519', containers: 0 })];
  containers: Container[] = [
    {
      id: 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2',
      name: 'counter',
      host: 'compute1',
      image: 'busybox',
      status: 'running',
      project_id: 'p-demo',
    },
    {
      id: 'f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d',
      name: 'redis',
      host: 'compute1',
      image: 'redis:7',
      status: 'running',
      project_id: null,
    },
  ];
  /** Make the next call reject with this. */
  failNext: Error | undefined;

  private record(method: string, ctx: RequestContext, ...args: unknown[]) {
    this.calls.push({ method, ctx, args });
    const f = this.failNext;
    this.failNext = undefined;
    if (f) throw f;
  }

  add(m: Partial<Migration> & { container_name: string }): Migration {
    const now = new Date().toISOString();
    const rec: Migration = {
      uuid: randomUUID(),
      mode: 'stop-and-copy',
      container_id: 'a1b2c3d4e5f6',
      source_host: 'compute1',
      dest_host: 'compute2',
      status: 'accepted',
      phase: null,
      progress: 0,
      error: null,
      connections_preserved: null,
      abort_requested: false,
      request_id: null,
      user_id: null,
      project_id: null,
      created_at: now,
      updated_at: now,
      ...unmeasured(),
      ...m,
    };
    this.migrations.set(rec.uuid, rec);
    return rec;
  }

  async migrateContainer(ctx: RequestContext, container: string, host?: string | null, opts: MigrateRequestOptions = {}): Promise<Migration> {
    // The options are recorded only when there are some (most tests match [container, host]).
    this.record('migrateContainer', ctx, container, host, ...(Object.keys(opts).length ? [opts] : []));
    // As the conductor: with a project scope, only that project's containers exist.
    const c = this.containers.find(
      (x) =>
        (opts.project_id === undefined || x.project_id === opts.project_id) &&
        (x.id === container || x.name === container || (container.length >= 4 && x.id.startsWith(container))),
    );
    if (!c) throw new ContainerNotFound(`Container ${container} could not be found.`);
    // The real scheduler's refusals (unknown host, same host, host down), with their real messages.
    if (host !== undefined && host !== null) chooseTarget(this.hosts, c.host, host);
    return this.add({
      container_id: c.id,
      container_name: c.name,
      source_host: c.host,
      dest_host: host ?? null,
      request_id: ctx.request_id,
      user_id: ctx.user_id,
      project_id: c.project_id ?? ctx.project_id,
    });
  }

  async abortMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    this.record('abortMigration', ctx, migrationId);
    const m = this.migrations.get(migrationId);
    if (!m) throw new MigrationNotFound(`Migration ${migrationId} could not be found.`);
    if (isFinal(m.status)) throw new InvalidMigrationState(`Migration ${migrationId} is ${m.status}; it cannot be aborted.`);
    m.abort_requested = true;
    m.status = 'cancelled';
    return { ...m };
  }

  async forceCompleteMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    this.record('forceCompleteMigration', ctx, migrationId);
    const m = this.migrations.get(migrationId);
    if (!m) throw new MigrationNotFound(`Migration ${migrationId} could not be found.`);
    if (isFinal(m.status)) throw new InvalidMigrationState(`Migration ${migrationId} is ${m.status}; there is nothing to complete.`);
    m.mode = 'post-copy';
    return { ...m };
  }

  async getMigration(ctx: RequestContext, migrationId: string): Promise<Migration> {
    this.record('getMigration', ctx, migrationId);
    const m = this.migrations.get(migrationId);
    if (!m) throw new MigrationNotFound(`Migration ${migrationId} could not be found.`);
    return { ...m };
  }

  async listMigrations(ctx: RequestContext, filters: MigrationFilters): Promise<Migration[]> {
    this.record('listMigrations', ctx, filters);
    const all = [...this.migrations.values()].filter(
      (m) =>
        (!filters.status || m.status === filters.status) &&
        (!filters.source_host || m.source_host === filters.source_host) &&
        (!filters.dest_host || m.dest_host === filters.dest_host) &&
        (filters.project_id === undefined || m.project_id === filters.project_id) &&
        (!filters.container || m.container_name === filters.container || m.container_id.startsWith(filters.container)),
    );
    return page(all, filters, (m) => m.uuid);
  }

  async listHosts(ctx: RequestContext): Promise<ComputeHost[]> {
    this.record('listHosts', ctx);
    return this.hosts;
  }

  async listContainers(ctx: RequestContext, p: ContainerListRequest = {}): Promise<Container[]> {
    this.record('listContainers', ctx, p);
    return page(p.project_id === undefined ? this.containers : this.containers.filter((c) => c.project_id === p.project_id), p, (c) => c.id);
  }

  private host(name: string): ComputeHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new HostNotFound(`compute host "${name}" is not known; see GET /v1/hosts`);
    return h;
  }

  async setHostStatus(ctx: RequestContext, host: string, status: HostStatus, disabledReason?: string | null): Promise<ComputeHost> {
    this.record('setHostStatus', ctx, host, status, disabledReason);
    const h = this.host(host);
    h.status = status;
    h.disabled_reason = status === 'disabled' ? (disabledReason ?? null) : null;
    return { ...h };
  }

  /** Records the evacuation as the conductor returns it at first: every container of the host pending. */
  async evacuateHost(ctx: RequestContext, host: string, opts: EvacuateOptions): Promise<Evacuation> {
    this.record('evacuateHost', ctx, host, opts);
    this.host(host);
    if (opts.target_host) chooseTarget(this.hosts, host, opts.target_host);
    const now = new Date().toISOString();
    const containers = this.containers
      .filter((c) => c.host === host)
      .map((c) => ({
        container_id: c.id,
        container_name: c.name,
        container_status: c.status,
        status: 'pending' as const,
        migration_uuid: null,
        dest_host: null,
        reason: null,
        updated_at: now,
      }));
    const e: Evacuation = {
      uuid: randomUUID(),
      host,
      target_host: opts.target_host ?? null,
      max_parallel: opts.max_parallel ?? 1,
      post_copy: Boolean(opts.post_copy),
      status: 'running',
      host_disabled: true,
      error: null,
      request_id: ctx.request_id,
      user_id: ctx.user_id,
      project_id: ctx.project_id,
      created_at: now,
      updated_at: now,
      containers,
      counts: countByStatus(containers),
    };
    this.evacuations.set(e.uuid, e);
    return e;
  }

  async getEvacuation(ctx: RequestContext, evacuationId: string): Promise<Evacuation> {
    this.record('getEvacuation', ctx, evacuationId);
    const e = this.evacuations.get(evacuationId);
    if (!e) throw new EvacuationNotFound(`evacuation ${evacuationId} could not be found`);
    return e;
  }

  async listEvacuations(ctx: RequestContext, filters: EvacuationFilters = {}): Promise<Evacuation[]> {
    this.record('listEvacuations', ctx, filters);
    const all = [...this.evacuations.values()].filter((e) => filters.host === undefined || e.host === filters.host).reverse();
    return filters.limit === undefined ? all : all.slice(0, filters.limit);
  }
}
