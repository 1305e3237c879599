/**
 * The conductor's domain service: accepts migrations, queues them per source host, runs
 * their flows, answers queries, records heartbeats and container events, and on start brings
 * every migration a previous run left mid-way to a definite end. A migrate request is decided
 * on live state: when what the hosts reported is older than a small bound, or disagrees with
 * the request, the hosts concerned are asked first. No AMQP here: manager.ts exposes it on the bus.
 *
 * A facade: each job is a part of its own (queries, heartbeats, resolution, admission,
 * interventions, maintenance, queue, completion-timer, claims, takeover), wired together here.
 */
import type { RequestContext } from '../common/context.js';
import type { Logger } from '../common/log.js';
import type { ContainerEvent } from '../compute/events.js';
import type { InventoryAPI } from '../compute/inventory.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ComputeHost, Container, HostState, HostStatus } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import { Admission } from './admission.js';
import { Claims } from './claims.js';
import { completionTimer } from './completion-timer.js';
import type { FlowDeps } from './flow.js';
import { Heartbeats } from './heartbeats.js';
import type { ContainerListRequest, MigrationFilters } from './interface.js';
import { Interventions } from './interventions.js';
import { HostMaintenance } from './maintenance.js';
import type { EvacuationNotify } from './notifications.js';
import type { ConductorDeps, ConductorOptions, EvacuateRequest, MigrateOptions } from './options.js';
import { Queries } from './queries.js';
import { MigrationQueue } from './queue.js';
import type { Repository } from './repository.js';
import { ContainerResolver } from './resolution.js';
import { Takeover } from './takeover.js';

export type { ClaimOptions, ConductorOptions, EvacuateRequest, MigrateOptions } from './options.js';
export { age, type LiveCheck } from './resolution.js';

export class ConductorService {
  private readonly claims: Claims;
  private readonly queries: Queries;
  private readonly heartbeats: Heartbeats;
  private readonly queue: MigrationQueue;
  private readonly interventions: Interventions;
  private readonly admission: Admission;
  private readonly maintenance: HostMaintenance;
  private readonly takeover: Takeover;

  constructor(
    repo: Repository,
    compute: ComputeAPI,
    notify: FlowDeps['notify'],
    opts: ConductorOptions,
    log: Logger,
    /** Asks a host for its containers live; without it, decisions rest on what the hosts reported. */
    inventory?: InventoryAPI,
    /** Sends `host.evacuate.*`; without it, evacuations are only logged. */
    notifyEvacuation: EvacuationNotify = async () => undefined,
  ) {
    const deps: ConductorDeps = { repo, compute, notify, opts, log };
    this.claims = new Claims(deps);
    this.queries = new Queries(deps);
    this.heartbeats = new Heartbeats(deps);
    const resolver = new ContainerResolver(deps, this.heartbeats, inventory);
    // The timer's actions are the interventions, built after the queue that starts the timer.
    this.queue = new MigrationQueue(deps, this.claims, (ctx, m) => completionTimer(deps, this.interventions, ctx, m));
    this.interventions = new Interventions(deps, this.queries, this.claims, this.queue);
    this.admission = new Admission(deps, this.queries, resolver, this.claims, this.queue);
    this.maintenance = new HostMaintenance(deps, this.queries, resolver, this.admission, this.claims, this.queue, notifyEvacuation);
    this.takeover = new Takeover(deps, this.claims, this.queue, this.maintenance);
  }

  /** Who this conductor is in the claims table. */
  get owner(): string {
    return this.claims.owner;
  }

  // ---- queries ----
  listHosts(now = Date.now()): Promise<ComputeHost[]> {
    return this.queries.listHosts(now);
  }

  listContainers(page: ContainerListRequest = {}): Promise<Container[]> {
    return this.queries.listContainers(page);
  }

  getMigration(uuid: string): Promise<Migration> {
    return this.queries.getMigration(uuid);
  }

  listMigrations(filters: MigrationFilters = {}): Promise<Migration[]> {
    return this.queries.listMigrations(filters);
  }

  // ---- what hosts report ----
  /**
   * A heartbeat: the host's facts and full inventory, taken at `takenAt` (the host's clock;
   * default now). `sender`: the bus user that sent it, when the bus says (reporter.ts).
   */
  reportState(host: string, state: HostState, takenAt?: string | null, sender: string | null = null): Promise<void> {
    return this.heartbeats.reportState(host, state, takenAt, sender);
  }

  /** One container event from a host (a cast, sent as it happens). Returns whether it changed the record. */
  containerEvent(host: string, event: ContainerEvent, sender: string | null = null): Promise<boolean> {
    return this.heartbeats.containerEvent(host, event, sender);
  }

  // ---- migrate, force-complete, abort ----
  /** Decide a migrate request on live state (admission.ts). */
  migrateOnLiveState(ctx: RequestContext, containerRef: string, requestedHost?: string | null, opts: MigrateOptions = {}): Promise<Migration> {
    return this.admission.migrateOnLiveState(ctx, containerRef, requestedHost, opts);
  }

  /** Nova's force-complete: switch to the memory mode that ends the soonest, before the freeze (interventions.ts). */
  forceComplete(ctx: RequestContext, uuid: string): Promise<Migration> {
    return this.interventions.forceComplete(ctx, uuid);
  }

  abort(ctx: RequestContext, uuid: string): Promise<Migration> {
    return this.interventions.abort(ctx, uuid);
  }

  // ---- host maintenance ----
  /** Enable or disable a host (Nova's `compute service set --enable|--disable`); enabling clears the reason. */
  setHostStatus(name: string, status: HostStatus, reason?: string | null): Promise<ComputeHost> {
    return this.maintenance.setHostStatus(name, status, reason);
  }

  getEvacuation(uuid: string): Promise<Evacuation> {
    return this.maintenance.getEvacuation(uuid);
  }

  listEvacuations(filters: { host?: string; limit?: number } = {}): Promise<Evacuation[]> {
    return this.maintenance.listEvacuations(filters);
  }

  /** Empty `host`: every running container live-migrated away (maintenance.ts). */
  evacuate(ctx: RequestContext, host: string, req: EvacuateRequest = {}): Promise<Evacuation> {
    return this.maintenance.evacuate(ctx, host, req);
  }

  /** Resolves with the evacuation's final record once this conductor has driven it to its end. */
  whenEvacuated(uuid: string): Promise<Evacuation> {
    return this.maintenance.whenEvacuated(uuid);
  }

  // ---- the queue, claims and takeover ----
  /** How many migrations run now from or to each host (for tests and logs). */
  activeByHost(): Map<string, number> {
    return this.queue.activeByHost();
  }

  /** Resume what previous conductors left unfinished, then renew claims and scan for unclaimed work (takeover.ts). */
  recover(): Promise<number> {
    return this.takeover.recover();
  }

  /** Stop renewing claims and scanning (at shutdown; a test's way to let a conductor "die"). */
  stopClaims(): void {
    this.takeover.stopClaims();
  }

  /** At shutdown, before the database closes: no claim renewed, no migration started; the flows in flight are left to the next conductor. */
  stop(): void {
    this.takeover.stopClaims();
    this.queue.stop();
  }

  /** Resolves when no flow runs and none is queued (used at shutdown and by tests). */
  whenIdle(): Promise<void> {
    return this.queue.whenIdle();
  }
}
