/**
 * The conductor's domain service: accepts migrations, queues them per source host, runs
 * their flows, answers queries, records heartbeats and container events, and on start brings
 * every migration a previous run left mid-way to a definite end. A migrate request is decided
 * on live state: when what the hosts reported is older than a small bound, or disagrees with
 * the request, the hosts concerned are asked first. No AMQP here: manager.ts exposes it on the bus.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { RequestContext } from '../common/context.js';
import {
  ClaimLost,
  ContainerNotFound,
  EvacuationNotFound,
  HostDown,
  HostNotFound,
  InvalidInput,
  NoValidHost,
  PostCopyUnsupported,
  InvalidMigrationState,
  MigrationInProgress,
  MigrationNotFound,
} from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ContainerEvent } from '../compute/events.js';
import type { Inventory, InventoryAPI } from '../compute/inventory.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import { MAX_PARALLEL_LIMIT, type Evacuation } from '../objects/evacuation.js';
import { HOST_STATUSES, projectOf, type ComputeHost, type Container, type ContainerSummary, type HostState, type HostStatus } from '../objects/host.js';
import { isFinal, newMigration, type Migration } from '../objects/migration.js';
import { MigrationFlow, type FlowDeps, type RetryPolicy } from './flow.js';
import { EvacuationRunner, planContainers } from './evacuation.js';
import { chooseTarget, ineligibility, toComputeHost } from './hosts.js';
import { checkEventHost, checkReportAgainstRecord, checkReportedVersions, checkSender } from './reporter.js';
import type { EvacuationNotify } from './notifications.js';
import type { ContainerListRequest, MigrationFilters } from './interface.js';
import type { ClaimKind, ContainerRecord, HostRecord, Repository } from './repository.js';
import { isBeforeFreeze } from './statemachine.js';
import { chooseMode } from '../compute/precopy.js';

/**
 * Several conductors at once: each migration and evacuation is driven by the one conductor
 * that holds its claim in the database, renewed every lease/3; another one's scan takes over
 * what nobody holds (a conductor that died) and resumes it as recover() does.
 */
export interface ClaimOptions {
  /** This conductor in the claims table: `<host>:<pid>` (the host part names its previous processes). */
  owner: string;
  /** How long a claim lasts without renewal, ms. */
  leaseMs: number;
  /** How often claims nobody holds are looked for, ms (default: a third of the lease). */
  scanMs?: number;
  /** At start, the leases of owners whose name starts with this end at once: this host's previous processes ('' = every owner: a single conductor). */
  takeOverPrefix: string;
}

export interface ConductorOptions {
  /** Default: a lone conductor (owner host:pid, 60 s lease, takes every claim over at recover()). */
  claims?: ClaimOptions;
  /** Migrations running at once on one host, as source or as target; the others queue. */
  maxConcurrentPerHost: number;
  serviceDownTime: number; // seconds
  /** Seconds a reported container state is trusted for a migrate decision (default 1). */
  containerStateMaxAge?: number;
  /** How long a step with an unknown outcome is asked again (flow.ts DEFAULT_RETRY when unset). */
  retry?: RetryPolicy;
  /** Seconds a migration may take before `timeoutAction` (0 = no limit), as Nova's live_migration_completion_timeout. */
  completionTimeout?: number;
  timeoutAction?: 'abort' | 'force_complete';
  /** Hosts report as bus users named like them ([conductor] per_host_bus_users): see reporter.ts. */
  perHostBusUsers?: boolean;
}

/** Options of one migrate request beyond the container and the target. */
export interface MigrateOptions {
  /** Move memory after the restore (lazy pages): refused when either host cannot or may not. */
  post_copy?: boolean | null;
  /**
   * Only a container of this project (its PROJECT_LABEL) may be named: any other, or one without
   * the label, is "not found" exactly like a container that does not exist. Absent: any container
   * (a caller who may act on every project's).
   */
  project_id?: string | null;
}

/** What an evacuation request asks for (checked by the manager's schema and again here). */
export interface EvacuateRequest {
  target_host?: string | null;
  max_parallel?: number | null;
  post_copy?: boolean | null;
}

/** The longest disabled_reason kept. */
export const MAX_REASON_LENGTH = 255;

/** What a live check of some hosts found: per host, when its inventory was taken, or why it did not answer. */
export type LiveCheck = Map<string, { ok: true; taken_at: string } | { ok: false; error: string }>;

/**
 * A migration this conductor holds the claim of and has not started yet, with what deciding to
 * start it needs, so that a pass over the queue reads the database only for the one it starts.
 */
interface Queued {
  uuid: string;
  /** Its source and its target. */
  hosts: string[];
  /** It needs slots on its hosts first (still `accepted`, no abort asked), as far as this conductor last read. */
  admission: boolean;
}

const EVENT_KINDS = new Set(['create', 'start', 'die', 'destroy', 'rename', 'pause', 'unpause', 'checkpoint', 'restore']);
const ID_RE = /^[0-9a-f]{12,64}$/;

function isoOrNull(v: unknown): string | null {
  if (typeof v !== 'string' || v.length > 40) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

function optString(v: unknown, what: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length > 255) throw new InvalidInput(`container_event: "${what}" must be a string of at most 255 characters, or null`);
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "0.4 s", "12 s", "3 min": how old a reported state is. */
export function age(ms: number): string {
  if (ms < 10_000) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

export class ConductorService {
  private readonly active = new Map<string, number>(); // host -> migrations in flight from or to it
  private readonly running = new Set<string>(); // uuids with a flow in progress
  private readonly queue: Queued[] = [];
  private pumping: Promise<void> = Promise.resolve();
  private readonly idle: (() => void)[] = [];
  /** Called once when the next migration flow ends (evacuations wait on it to start the next container). */
  private readonly flowEnded: (() => void)[] = [];
  /** Per host: when its newest full inventory was taken; events older than that are already in it. */
  private readonly inventoryAt = new Map<string, string>();

  constructor(
    private readonly repo: Repository,
    private readonly compute: ComputeAPI,
    private readonly notify: FlowDeps['notify'],
    private readonly opts: ConductorOptions,
    private readonly log: Logger,
    /** Asks a host for its containers live; without it, decisions rest on what the hosts reported. */
    private readonly inventory?: InventoryAPI,
    /** Sends `host.evacuate.*`; without it, evacuations are only logged. */
    private readonly notifyEvacuation: EvacuationNotify = async () => undefined,
  ) {}
  /** Evacuations this conductor drives now (uuid -> their end). */
  private readonly evacuating = new Map<string, Promise<Evacuation>>();
  private defaultClaims?: ClaimOptions;
  private get claims(): ClaimOptions {
    this.defaultClaims ??= this.opts.claims ?? { owner: `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, leaseMs: 60_000, takeOverPrefix: '' };
    return this.defaultClaims;
  }
  private timers: NodeJS.Timeout[] = [];

  /** Who this conductor is in the claims table. */
  get owner(): string {
    return this.claims.owner;
  }

  // ---- queries ----
  async listHosts(now = Date.now()): Promise<ComputeHost[]> {
    return (await this.repo.listHostRecords()).map((r) => toComputeHost(r, now, this.opts.serviceDownTime));
  }

  async listContainers(page: ContainerListRequest = {}): Promise<Container[]> {
    return (await this.repo.listContainers(page)).map(({ id, name, host, image, status, project_id }) => ({ id, name, host, image, status, project_id: project_id ?? null }));
  }

  async getMigration(uuid: string): Promise<Migration> {
    const m = await this.repo.getMigration(uuid);
    if (!m) throw new MigrationNotFound(`migration ${uuid} could not be found`);
    return m;
  }

  listMigrations(filters: MigrationFilters = {}): Promise<Migration[]> {
    return this.repo.listMigrations(filters);
  }

  /**
   * A heartbeat: the host's facts and full inventory, taken at `takenAt` (the host's clock;
   * default now). `sender`: the bus user that sent it, when the bus says (reporter.ts).
   */
  async reportState(host: string, state: HostState, takenAt?: string | null, sender: string | null = null): Promise<void> {
    if (!host || typeof state !== 'object' || !Array.isArray(state?.containers)) {
      throw new InvalidInput('report_state needs a host name and a state with a containers list');
    }
    const bad = state.containers.findIndex(
      (c: unknown) => !isRecord(c) || !['id', 'name', 'image', 'status'].every((k) => typeof c[k] === 'string'),
    );
    if (bad >= 0) throw new InvalidInput(`report_state: containers[${bad}] must be an object with string id, name, image and status`);
    checkReportedVersions(state);
    const now = new Date().toISOString();
    const taken = takenAt === undefined || takenAt === null ? now : isoOrNull(takenAt);
    if (!taken) throw new InvalidInput('report_state: "taken_at" must be an ISO 8601 time');
    checkSender({ host, sender, perHostBusUsers: this.opts.perHostBusUsers ?? false });
    checkReportAgainstRecord(host, state.migration_address, await this.repo.getHostRecord(host), Date.now(), this.opts.serviceDownTime);
    await this.repo.saveHostReport(host, state, now, taken);
    this.noteInventory(host, taken);
  }

  private noteInventory(host: string, takenAt: string): void {
    const prev = this.inventoryAt.get(host);
    if (!prev || prev < takenAt) this.inventoryAt.set(host, takenAt);
  }

  /** One container event from a host (a cast, sent as it happens). Returns whether it changed the record. */
  async containerEvent(host: string, event: ContainerEvent, sender: string | null = null): Promise<boolean> {
    if (!host || typeof host !== 'string') throw new InvalidInput('container_event needs a host name');
    if (typeof event !== 'object' || event === null) throw new InvalidInput('container_event needs an event object');
    if (!EVENT_KINDS.has(event.kind)) throw new InvalidInput(`container_event: unknown kind "${String(event.kind)}"`);
    if (typeof event.id !== 'string' || !ID_RE.test(event.id)) throw new InvalidInput('container_event: "id" must be a container ID (hex)');
    const at = isoOrNull(event.at);
    if (!at) throw new InvalidInput('container_event: "at" must be an ISO 8601 time');
    const change = {
      id: event.id,
      name: optString(event.name, 'name'),
      image: optString(event.image, 'image'),
      status: optString(event.status, 'status'),
      project_id: projectOf(event.project_id),
      at,
    };
    checkSender({ host, sender, perHostBusUsers: this.opts.perHostBusUsers ?? false });
    if (!this.inventoryAt.has(host)) checkEventHost(host, await this.repo.getHostRecord(host));
    // Already part of a newer full inventory of this host (e.g. one sent after a reconnect).
    const inv = this.inventoryAt.get(host);
    if (inv && at < inv) return false;
    const changed = await this.repo.applyContainerChange(host, change);
    this.log.debug({ host, kind: event.kind, container: event.id.slice(0, 12), status: change.status, changed }, 'container event');
    return changed;
  }

  /** A host's inventory taken on request (live check): recorded like a heartbeat's, the host's facts untouched. */
  private async saveInventory(inv: Inventory, host: string): Promise<string> {
    const taken = isoOrNull(inv?.taken_at);
    if (!taken || !Array.isArray(inv?.containers)) throw new InvalidInput(`the inventory ${host} sent is malformed`);
    const containers: ContainerSummary[] = inv.containers.filter(
      (c) => typeof c?.id === 'string' && typeof c.name === 'string' && typeof c.image === 'string' && typeof c.status === 'string',
    );
    await this.repo.saveInventory(host, containers, taken);
    this.noteInventory(host, taken);
    return taken;
  }

  // ---- migrate / abort ----
  /**
   * The containers `ref` names: by ID or name, else (hex) by ID prefix; by host, name, id. Indexed lookups.
   * `project`: only that project's containers exist for this lookup (another project's are never
   * matched, so no answer can tell them from containers that do not exist).
   */
  private async matches(ref: string, project?: string | null): Promise<ContainerRecord[]> {
    const mine = (cs: ContainerRecord[]) => (project === undefined || project === null ? cs : cs.filter((c) => c.project_id === project));
    // Compared again here: MariaDB's equality ignores trailing spaces, and SQLite's LIKE ignores case.
    const exact = mine(await this.repo.findContainers(ref, [ref, `/${ref}`])).filter((c) => c.id === ref || c.name === ref || c.name === `/${ref}`);
    if (exact.length === 0 && /^[0-9a-f]{4,63}$/.test(ref)) return mine(await this.repo.containersByIdPrefix(ref)).filter((c) => c.id.startsWith(ref));
    return exact;
  }

  /** The hosts to ask before deciding on a container (`matches`: what `ref` names); none when the reported state is fresh and says running. */
  private async hostsToAsk(matches: ContainerRecord[], now: number): Promise<string[]> {
    const isUp = (r: HostRecord | null) => r !== null && toComputeHost(r, now, this.opts.serviceDownTime).state === 'up';
    if (matches.length === 0) {
      // Not known (yet): it may be on any host.
      return (await this.repo.listHostRecords()).filter(isUp).map((r) => r.name);
    }
    const running = matches.filter((c) => c.status === 'running');
    const maxAgeMs = (this.opts.containerStateMaxAge ?? 1) * 1000;
    if (running.length === 1 && now - Date.parse(running[0].updated_at) <= maxAgeMs) return [];
    const hosts = [...new Set(matches.map((c) => c.host))];
    const up = await Promise.all(hosts.map(async (h) => isUp(await this.repo.getHostRecord(h))));
    return hosts.filter((_, i) => up[i]);
  }

  /** Ask hosts for their containers now and record what they say. */
  private async checkLive(ctx: RequestContext, hosts: string[]): Promise<LiveCheck> {
    const out: LiveCheck = new Map();
    const inventory = this.inventory;
    if (!inventory) return out;
    await Promise.all(
      hosts.map(async (h) => {
        try {
          out.set(h, { ok: true, taken_at: await this.saveInventory(await inventory.inventory(ctx, h), h) });
        } catch (e) {
          out.set(h, { ok: false, error: (e as Error).message });
          this.log.warn({ host: h, err: (e as Error).message }, 'live container-state check failed');
        }
      }),
    );
    return out;
  }

  /**
   * Why `c` is refused as not running, and what that rests on: a live check just now, or a
   * report of some age (then it only says what the host reported, never that it is not running now).
   */
  private notRunning(c: ContainerRecord, live: LiveCheck | undefined, now: number): string {
    const r = live?.get(c.host);
    if (r?.ok) return `container "${c.name}" on ${c.host} is ${c.status}, not running (checked on ${c.host} just now)`;
    const said = `container "${c.name}" on ${c.host} was ${c.status} when ${c.host} last reported, ${age(now - Date.parse(c.updated_at))} ago`;
    return r ? `${said}; ${c.host} did not answer a live check (${r.error}), so whether it runs now is not known` : said;
  }

  /** The one container `ref` names (`found`: its matches when just read). */
  private async resolveContainer(ref: string, live?: LiveCheck, found?: ContainerRecord[]): Promise<ContainerRecord> {
    if (!ref || typeof ref !== 'string') throw new InvalidInput('a container ID or name is required');
    const now = Date.now();
    const matches = found ?? (await this.matches(ref));
    if (matches.length === 0) {
      const entries = live ? [...live] : [];
      const asked = entries.filter(([, r]) => r.ok).map(([h]) => h).sort();
      const silent = entries.filter(([, r]) => !r.ok).map(([h]) => h).sort();
      let basis = asked.length ? `asked ${asked.join(', ')} just now` : 'as the hosts last reported';
      if (silent.length) basis += `; ${silent.join(', ')} did not answer and may have it`;
      throw new ContainerNotFound(`container "${ref}" was not found on any compute host (${basis}); see GET /v1/containers`);
    }
    const running = matches.filter((c) => c.status === 'running');
    if (running.length > 1) {
      throw new InvalidInput(`"${ref}" matches ${running.length} running containers (${running.map((c) => `${c.id.slice(0, 12)} on ${c.host}`).join(', ')}); use the full ID`);
    }
    const c = running[0] ?? matches[0];
    if (c.status !== 'running') {
      throw new InvalidMigrationState(
        `${this.notRunning(c, live, now)}; only running containers are live-migrated`,
        { container: c.id, status: c.status, state_age_ms: now - Date.parse(c.updated_at), live_checked: live?.get(c.host)?.ok === true },
      );
    }
    return c;
  }

  /**
   * Decide a migrate request on live state: when the reported state of the container is older
   * than `containerStateMaxAge`, or is not `running`, or the container is not known, the hosts
   * concerned are asked first, so that a container that runs is never refused as not running.
   */
  async migrateOnLiveState(ctx: RequestContext, containerRef: string, requestedHost?: string | null, opts: MigrateOptions = {}): Promise<Migration> {
    let live: LiveCheck | undefined;
    // What the container reference matches, as recorded now (read again after each live check).
    let found: ContainerRecord[] | undefined;
    if (this.inventory && typeof containerRef === 'string' && containerRef) {
      found = await this.matches(containerRef, opts.project_id);
      const hosts = await this.hostsToAsk(found, Date.now());
      if (hosts.length) {
        live = await this.checkLive(ctx, hosts);
        found = await this.matches(containerRef, opts.project_id);
      }
      if (live && found.length === 0) {
        // Gone from where it was: it may have just been created elsewhere; ask the other hosts before saying "not found".
        const rest = (await this.hostsToAsk(found, Date.now())).filter((h) => !live?.has(h));
        if (rest.length) {
          for (const [h, r] of await this.checkLive(ctx, rest)) live.set(h, r);
          found = await this.matches(containerRef, opts.project_id);
        }
      }
    }
    return this.decide(ctx, containerRef, requestedHost, live, opts, found);
  }

  /** Decide on the state as recorded (`live`: what a live check just found, for the refusals' wording). */
  migrate(ctx: RequestContext, containerRef: string, requestedHost?: string | null, live?: LiveCheck, opts: MigrateOptions = {}): Promise<Migration> {
    return this.decide(ctx, containerRef, requestedHost, live, opts);
  }

  private async decide(
    ctx: RequestContext,
    containerRef: string,
    requestedHost: string | null | undefined,
    live: LiveCheck | undefined,
    opts: MigrateOptions,
    found?: ContainerRecord[],
  ): Promise<Migration> {
    if (requestedHost !== undefined && requestedHost !== null && (typeof requestedHost !== 'string' || requestedHost.trim() === '')) {
      throw new InvalidInput('"host" must be a compute host name or null');
    }
    if (opts.post_copy !== undefined && opts.post_copy !== null && typeof opts.post_copy !== 'boolean') throw new InvalidInput('"post_copy" must be true or false');
    const c = await this.resolveContainer(containerRef, live, found ?? (typeof containerRef === 'string' && containerRef ? await this.matches(containerRef, opts.project_id) : undefined));
    // The host list, read once for the whole decision (after any live check, so its counts include what that found).
    const hosts = await this.listHosts();
    const src = hosts.find((h) => h.name === c.host);
    if (!src || src.state !== 'up') throw new HostDown(`the container's host "${c.host}" is down; it cannot be migrated live`);
    const busy = await this.repo.unfinishedMigrationOf(c.id);
    if (busy) throw new MigrationInProgress(`container "${c.name}" is already being migrated (migration ${busy.uuid}, ${busy.status})`);
    const dest = chooseTarget(await this.withIncoming(hosts), c.host, requestedHost ?? null);
    if (opts.post_copy) this.requirePostCopy(hosts, [c.host, dest]);
    const modesOf = (n: string) => hosts.find((h) => h.name === n)?.modes ?? null;
    const m = newMigration({
      mode: chooseMode(Boolean(opts.post_copy), modesOf(c.host), modesOf(dest)),
      uuid: randomUUID(),
      container_id: c.id,
      container_name: c.name,
      source_host: c.host,
      dest_host: dest,
      request_id: ctx.request_id,
      user_id: ctx.user_id,
      // The container's project when it has one, so that its project's readers see the migration
      // whoever asked (an admin, an evacuation); the caller's otherwise (who asked is user_id).
      project_id: c.project_id ?? ctx.project_id,
    });
    // Claimed before it is recorded: no takeover scan (this conductor's or another's) can see it
    // unclaimed between the two and start a second flow for it.
    await this.claimNew('migration', m.uuid, () => this.repo.createMigration(m));
    this.log.info({ migration: m.uuid, container: c.id, source: c.host, dest }, 'migration accepted');
    this.enqueue(m);
    return m;
  }

  /**
   * The hosts as the scheduler weighs them: each host's containers plus the migrations still on
   * their way to it, so that migrations accepted together (an evacuation) spread over the hosts.
   */
  private async withIncoming(hosts: ComputeHost[]): Promise<ComputeHost[]> {
    const incoming = await this.repo.incomingCounts();
    return hosts.map((h) => ({ ...h, containers: h.containers + (incoming.get(h.name) ?? 0) }));
  }

  /** Post-copy needs both hosts able and permitted (what their last heartbeats said); PostCopyUnsupported says which is not. */
  private requirePostCopy(hosts: ComputeHost[], names: string[]): void {
    const why = names.map((n) => {
      const modes = hosts.find((h) => h.name === n)?.modes;
      if (!modes) return `${n} did not report its migration modes (an older agent?)`;
      return modes.post_copy.ok ? null : (modes.post_copy.reason ?? `${n} cannot do post-copy`);
    });
    const refused = why.filter((w): w is string => w !== null);
    if (refused.length) throw new PostCopyUnsupported(`post-copy is not possible for this migration: ${refused.join('; ')}`, { hosts: names });
  }

  /**
   * Nova's force-complete: switch a migration that has not frozen its container yet to post-copy,
   * so that it completes without waiting for its memory to be copied. After the freeze of a
   * stop-and-copy the memory is already on its way: 409. A post-copy already is one: no change.
   */
  async forceComplete(ctx: RequestContext, uuid: string): Promise<Migration> {
    const m = await this.getMigration(uuid);
    if (isFinal(m.status)) throw new InvalidMigrationState(`migration ${uuid} is already ${m.status}; there is nothing to complete`);
    if (m.mode === 'post-copy') return m;
    if (!isBeforeFreeze(m.status)) {
      throw new InvalidMigrationState(
        `migration ${uuid} is ${m.status}${m.phase ? ` (${m.phase})` : ''}: its container is already frozen and copied stop-and-copy; force-complete switches to post-copy only before the freeze`,
      );
    }
    this.requirePostCopy(await this.listHosts(), [m.source_host, m.dest_host ?? '']);
    // The start goes out beside the switch, not before it: sending must not delay it past the freeze.
    const started = this.notify(ctx, 'live_migration_force_complete.start', m);
    const updated = await this.repo.updateMigration(uuid, { mode: 'post-copy' });
    await started;
    await this.notify(ctx, 'live_migration_force_complete.end', updated);
    this.log.info({ migration: uuid, status: m.status, request: ctx.request_id }, 'force-complete: the migration switches to post-copy');
    return updated;
  }

  // ---- host maintenance ----
  private async knownHost(name: unknown): Promise<ComputeHost> {
    if (typeof name !== 'string' || name.trim() === '' || name.length > 255) throw new InvalidInput('a compute host name (1 to 255 characters) is required');
    const r = await this.repo.getHostRecord(name);
    // Compared again here: MariaDB's equality ignores trailing spaces.
    if (!r || r.name !== name) throw new HostNotFound(`compute host "${name}" is not known; see GET /v1/hosts`, { host: name });
    return toComputeHost(r, Date.now(), this.opts.serviceDownTime);
  }

  /** Enable or disable a host (Nova's `compute service set --enable|--disable`); enabling clears the reason. */
  async setHostStatus(name: string, status: HostStatus, reason?: string | null): Promise<ComputeHost> {
    if (!HOST_STATUSES.includes(status)) throw new InvalidInput(`"status" must be one of ${HOST_STATUSES.join(', ')}`);
    if (reason !== undefined && reason !== null && (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH)) {
      throw new InvalidInput(`"disabled_reason" must be a string of at most ${MAX_REASON_LENGTH} characters, or null`);
    }
    if (status === 'enabled' && reason) throw new InvalidInput('"disabled_reason" is only for "status": "disabled"');
    await this.knownHost(name);
    await this.repo.setHostStatus(name, status, status === 'disabled' ? (reason ?? null) : null);
    this.log.info({ host: name, status, reason: reason ?? null }, 'host status set');
    return this.knownHost(name);
  }

  async getEvacuation(uuid: string): Promise<Evacuation> {
    const e = typeof uuid === 'string' ? await this.repo.getEvacuation(uuid) : null;
    if (!e) throw new EvacuationNotFound(`evacuation ${String(uuid)} could not be found`, { evacuation_id: uuid });
    return e;
  }

  listEvacuations(filters: { host?: string; limit?: number } = {}): Promise<Evacuation[]> {
    return this.repo.listEvacuations(filters);
  }

  /**
   * Empty `host`: every running container is live-migrated through `migrateOnLiveState` (the
   * same checks and flow as a single migrate), at most `max_parallel` unfinished at once. An
   * enabled host is disabled first ("evacuating"), so that no migration lands on it meanwhile;
   * it stays disabled afterwards, for the operator to enable after the maintenance.
   * Refused at once (nothing changed): unknown host (404), bad arguments (400), a host that is
   * down, or no other enabled host able to take containers (409).
   */
  async evacuate(ctx: RequestContext, host: string, req: EvacuateRequest = {}): Promise<Evacuation> {
    const maxParallel = req.max_parallel ?? 1;
    if (!Number.isInteger(maxParallel) || maxParallel < 1 || maxParallel > MAX_PARALLEL_LIMIT) {
      throw new InvalidInput(`"max_parallel" must be an integer from 1 to ${MAX_PARALLEL_LIMIT}`);
    }
    if (req.post_copy !== undefined && req.post_copy !== null && typeof req.post_copy !== 'boolean') throw new InvalidInput('"post_copy" must be true or false');
    const src = await this.knownHost(host);
    if (src.state !== 'up') throw new HostDown(`compute host "${host}" is down (no heartbeat since ${src.updated_at}); its containers cannot be migrated live`);
    const target = req.target_host ?? null;
    const hosts = await this.listHosts();
    if (target !== null) {
      await this.knownHost(target);
      chooseTarget(hosts, host, target); // the named target's refusals (same host, disabled, down, no CRIU)
    } else if (!hosts.some((h) => h.name !== host && ineligibility(h, src) === null)) {
      const why = hosts.filter((h) => h.name !== host).map((h) => ineligibility(h, src) ?? '');
      throw new NoValidHost(`no other enabled compute host can take the containers of "${host}": ${why.length ? why.join('; ') : `"${host}" is the only compute host`}`);
    }
    if (req.post_copy) this.requirePostCopy(hosts, target !== null ? [host, target] : [host]);
    // Any conductor's: the database knows every running evacuation.
    const running = (await this.repo.unfinishedEvacuations()).find((e) => e.host === host);
    if (running) throw new MigrationInProgress(`compute host "${host}" is already being evacuated (evacuation ${running.uuid})`);

    // Fresh state of the host's containers before listing them (a stopped one is listed, never skipped).
    await this.checkLive(ctx, [host]);
    const now = new Date().toISOString();
    const disable = src.status === 'enabled';
    const uuid = randomUUID();
    if (disable) await this.repo.setHostStatus(host, 'disabled', `evacuating (evacuation ${uuid})`);
    const containers = planContainers(await this.repo.hostContainers(host), now);
    await this.claimNew('evacuation', uuid, () => this.repo.createEvacuation({
      uuid,
      host,
      target_host: target,
      max_parallel: maxParallel,
      post_copy: req.post_copy ?? false,
      status: 'running',
      host_disabled: disable,
      error: null,
      request_id: ctx.request_id,
      user_id: ctx.user_id,
      project_id: ctx.project_id,
      created_at: now,
      updated_at: now,
      containers,
    }));
    const e = await this.getEvacuation(uuid);
    this.log.info({ evacuation: uuid, host, target, max_parallel: maxParallel, containers: e.containers.length, disabled: disable }, 'evacuation accepted');
    await this.notifyEvacuation(ctx, 'host.evacuate.start', e);
    this.runEvacuation(ctx, uuid);
    return e;
  }

  private runEvacuation(ctx: RequestContext, uuid: string): void {
    const runner = new EvacuationRunner(
      {
        repo: this.repo.fenced('evacuation', uuid, this.owner),
        migrate: (c, containerId, target, postCopy) => this.migrateOnLiveState(c, containerId, target, { post_copy: postCopy }),
        notify: this.notifyEvacuation,
        log: this.log,
        waitForChange: (ms) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            this.flowEnded.push(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      },
      ctx,
      uuid,
    );
    const done = runner.run().catch(async (err: unknown) => {
      if (err instanceof ClaimLost) {
        // Another conductor took it over (this one stopped renewing for longer than the lease): it goes on there.
        this.log.warn({ evacuation: uuid, err: err.message }, 'evacuation claim lost: another conductor goes on with it');
        return this.getEvacuation(uuid);
      }
      // Only the database can fail here (a refusal is recorded per container): the record says the evacuation broke.
      const message = `the evacuation stopped: ${(err as Error).message}`;
      this.log.error({ evacuation: uuid, err: (err as Error).message }, 'evacuation stopped');
      const e = await this.repo.updateEvacuation(uuid, { status: 'error', error: message });
      await this.notifyEvacuation(ctx, 'host.evacuate.error', e);
      return e;
    });
    this.evacuating.set(uuid, done);
    void done.finally(async () => {
      this.evacuating.delete(uuid);
      await this.release('evacuation', uuid);
    });
  }

  /** Resolves with the evacuation's final record once this conductor has driven it to its end. */
  whenEvacuated(uuid: string): Promise<Evacuation> {
    return this.evacuating.get(uuid) ?? this.getEvacuation(uuid);
  }

  async abort(ctx: RequestContext, uuid: string): Promise<Migration> {
    const m = await this.getMigration(uuid);
    if (isFinal(m.status)) throw new InvalidMigrationState(`migration ${uuid} is already ${m.status}; there is nothing to abort`);
    if (m.status === 'post-migrating') {
      // The restore on the target has begun; rolling back now could leave no running copy.
      throw new InvalidMigrationState(`migration ${uuid} is restoring the container on ${m.dest_host}; too late to abort`);
    }
    if (m.mode === 'post-copy' && m.status === 'running' && (m.phase === 'restore' || m.phase === 'post-copy')) {
      // The target runs (or is starting) the container while its pages still come from the source.
      throw new InvalidMigrationState(`migration ${uuid} runs the container on ${m.dest_host} in post-copy; too late to abort`);
    }
    let updated = await this.repo.updateMigration(uuid, { abort_requested: true });
    await this.notify(ctx, 'live_migration_abort.start', updated);
    // Still queued, here or nowhere (its claim free or ours): no flow runs it, so end it here. Queued
    // at another conductor: that one starts it at its next pass, and its flow cancels at once.
    if (!this.running.has(uuid) && updated.status === 'accepted' && (await this.repo.claim('migration', uuid, this.owner, this.claims.leaseMs))) {
      const i = this.queue.findIndex((q) => q.uuid === uuid);
      if (i >= 0) this.queue.splice(i, 1);
      updated = await this.repo.fenced('migration', uuid, this.owner).updateMigration(uuid, { status: 'cancelled', error: 'aborted by request while queued' });
      await this.release('migration', uuid);
      await this.notify(ctx, 'live_migration_abort.end', updated);
    }
    this.log.info({ migration: uuid, status: updated.status, beforeFreeze: isBeforeFreeze(m.status) }, 'abort requested');
    return updated;
  }

  // ---- scheduling of flows ----
  private enqueue(m: Migration): void {
    this.queue.push(this.queued(m));
    this.pump();
  }

  private queued(m: Migration): Queued {
    return { uuid: m.uuid, hosts: this.hostsOf(m), admission: m.status === 'accepted' && !m.abort_requested };
  }

  private isQueued(uuid: string): boolean {
    return this.queue.some((q) => q.uuid === uuid);
  }

  /** Start what may start now; passes run one after another, so that no migration starts twice. */
  private pump(): void {
    this.pumping = this.pumping.then(
      () => this.pumpOnce(),
      () => this.pumpOnce(),
    );
    this.pumping.catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'could not read queued migrations from the database'));
  }

  /**
   * One pass over the queue, in order. Both ends count: a host runs at most maxConcurrentPerHost
   * migrations, as source or as target, counted over every conductor in the database (admit).
   * One that already passed `accepted` holds its slots: it goes on regardless; so does one asked
   * to abort (its flow only cancels it). A host this conductor alone fills already is not asked
   * about (the database would say no), so a long queue costs nothing while its hosts are busy;
   * only the migration about to start is read again. What other conductors change in queued
   * records (an abort, an end) is read by refreshQueue.
   */
  private async pumpOnce(): Promise<void> {
    const max = this.opts.maxConcurrentPerHost;
    for (const q of [...this.queue]) {
      if (!this.queue.includes(q)) continue; // ended meanwhile (aborted here)
      if (q.admission) {
        if (q.hosts.some((h) => (this.active.get(h) ?? 0) >= max)) continue;
        if (!(await this.repo.admit(q.uuid, this.owner, q.hosts, max))) continue;
      }
      const m = await this.repo.getMigration(q.uuid);
      const at = this.queue.indexOf(q);
      if (at < 0) continue;
      this.queue.splice(at, 1);
      if (!m || isFinal(m.status)) {
        await this.release('migration', q.uuid);
        continue;
      }
      this.start(m);
    }
    if (this.running.size === 0 && this.queue.length === 0) for (const f of this.idle.splice(0)) f();
  }

  /**
   * Read again the status of the migrations waiting for slots (one statement per 200): one
   * another conductor was asked to abort starts at the next pass (its flow cancels it), one that
   * ended is dropped from the queue there.
   */
  private async refreshQueue(): Promise<void> {
    const waiting = this.queue.filter((q) => q.admission);
    if (!waiting.length) return;
    const states = await this.repo.migrationStates(waiting.map((q) => q.uuid));
    for (const q of waiting) {
      const s = states.get(q.uuid);
      q.admission = s !== undefined && s.status === 'accepted' && !s.abort_requested;
    }
  }

  /** The hosts a migration occupies: its source and its target. */
  private hostsOf(m: Migration): string[] {
    return m.dest_host && m.dest_host !== m.source_host ? [m.source_host, m.dest_host] : [m.source_host];
  }

  /** How many migrations run now from or to each host (for tests and logs). */
  activeByHost(): Map<string, number> {
    return new Map([...this.active].filter(([, n]) => n > 0));
  }

  private start(m: Migration): void {
    const hosts = this.hostsOf(m);
    for (const h of hosts) this.active.set(h, (this.active.get(h) ?? 0) + 1);
    this.running.add(m.uuid);
    const ctx = new RequestContext({
      request_id: m.request_id ?? undefined,
      user_id: m.user_id,
      project_id: m.project_id,
      roles: ['admin'],
      is_admin: true,
    });
    const flow = new MigrationFlow(
      {
        repo: this.repo.fenced('migration', m.uuid, this.owner),
        compute: this.compute,
        notify: this.notify,
        log: this.log,
        retry: this.opts.retry,
        stillOwner: async () => (await this.repo.getClaim('migration', m.uuid))?.owner === this.owner,
      },
      ctx,
      m.uuid,
    );
    const timeout = this.completionTimer(ctx, m);
    const release = () => {
      if (timeout) clearTimeout(timeout);
      for (const h of hosts) this.active.set(h, (this.active.get(h) ?? 1) - 1);
      this.running.delete(m.uuid);
      for (const f of this.flowEnded.splice(0)) f();
      this.pump();
    };
    flow.run().then(
      async (final) => {
        this.log.info({ migration: m.uuid, status: final.status, freeze_ms: final.freeze_ms, error: final.error }, 'migration ended');
        await this.release('migration', m.uuid);
        release();
      },
      (e: unknown) => {
        if (e instanceof ClaimLost) {
          this.log.warn({ migration: m.uuid, err: e.message }, 'migration claim lost: this conductor stops, the one that took it over goes on');
        } else {
          // Only the database can fail here: the flow catches everything else. Its claim runs out and a conductor resumes it.
          this.log.error({ migration: m.uuid, err: (e as Error).message }, 'migration flow stopped: its record could not be written');
        }
        release();
      },
    );
  }

  /**
   * `[compute] live_migration_completion_timeout`: a migration still unfinished that long after it
   * was accepted is aborted, or forced to complete in post-copy (Nova's timeout action). The flow
   * sees either between two steps; what cannot apply any more (a post-copy already running) is logged.
   */
  private completionTimer(ctx: RequestContext, m: Migration): NodeJS.Timeout | null {
    const seconds = this.opts.completionTimeout ?? 0;
    if (seconds <= 0) return null;
    const due = Date.parse(m.created_at) + seconds * 1000 - Date.now();
    const timer = setTimeout(() => {
      void (async () => {
        const cur = await this.repo.getMigration(m.uuid);
        if (!cur || isFinal(cur.status)) return;
        const action = this.opts.timeoutAction ?? 'abort';
        this.log.warn({ migration: m.uuid, status: cur.status, phase: cur.phase, seconds, action }, 'migration exceeded live_migration_completion_timeout');
        if (action === 'force_complete') await this.forceComplete(ctx, m.uuid);
        else await this.abort(ctx, m.uuid);
      })().catch((e: unknown) => this.log.warn({ migration: m.uuid, err: (e as Error).message }, 'the completion timeout action could not apply'));
    }, Math.max(0, due));
    timer.unref();
    return timer;
  }

  /**
   * On start: every migration and evacuation a previous conductor left unfinished is resumed to
   * a final status: this host's previous processes' claims end at once (with SQLite, everyone's:
   * there is one conductor), the others' when their lease runs out (the periodic scan). Starts
   * the claims' renewal and that scan.
   */
  async recover(): Promise<number> {
    const ended = await this.repo.expireClaims(this.claims.takeOverPrefix, this.owner);
    if (ended) this.log.info({ claims: ended, of: this.claims.takeOverPrefix ? `${this.claims.takeOverPrefix}*` : 'every conductor' }, 'claims of previous conductor processes ended');
    const taken = await this.takeOver('resuming a migration left unfinished by a previous conductor');
    this.startClaims();
    return taken;
  }

  /** Renew this conductor's claims and look for unclaimed work, periodically (unref'd timers). */
  private startClaims(): void {
    if (this.timers.length) return;
    const renew = setInterval(() => {
      this.repo.renewClaims(this.owner, this.claims.leaseMs).catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'could not renew this conductor\'s claims'));
    }, Math.max(50, Math.floor(this.claims.leaseMs / 3)));
    let scanning = false;
    const scan = setInterval(() => {
      if (scanning) return;
      scanning = true;
      this.takeOver('taking over a migration whose conductor stopped renewing its claim')
        .catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'could not look for unclaimed migrations'))
        .finally(() => {
          scanning = false;
        });
    }, this.claims.scanMs ?? Math.max(50, Math.floor(this.claims.leaseMs / 3)));
    renew.unref();
    scan.unref();
    this.timers = [renew, scan];
  }

  /** Stop renewing claims and scanning (at shutdown; a test's way to let a conductor "die"). */
  stopClaims(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** Claim what nobody holds, resume those migrations (queued) and evacuations; then a pump pass (slots other conductors freed). */
  private async takeOver(why: string): Promise<number> {
    let n = 0;
    await this.refreshQueue();
    for (const uuid of await this.repo.claimable('migration')) {
      if (this.running.has(uuid) || this.isQueued(uuid)) continue;
      if (!(await this.repo.claim('migration', uuid, this.owner, this.claims.leaseMs))) continue;
      const m = await this.repo.getMigration(uuid);
      this.log.warn({ migration: uuid, status: m?.status, phase: m?.phase, owner: this.owner }, why);
      // Gone meanwhile: the next pass drops it and lets its claim go. Admitted by its previous conductor: its slots are held.
      const q: Queued = m ? this.queued(m) : { uuid, hosts: [], admission: false };
      if (q.admission && (await this.repo.getClaim('migration', uuid))?.admitted) q.admission = false;
      this.queue.push(q);
      n++;
    }
    this.pump();
    for (const uuid of await this.repo.claimable('evacuation')) {
      if (this.evacuating.has(uuid) || !(await this.repo.claim('evacuation', uuid, this.owner, this.claims.leaseMs))) continue;
      const e = await this.repo.getEvacuation(uuid);
      if (!e || e.status !== 'running') {
        await this.release('evacuation', uuid);
        continue;
      }
      this.log.warn({ evacuation: e.uuid, host: e.host, owner: this.owner }, why.replace('a migration', 'an evacuation'));
      const ctx = new RequestContext({ request_id: e.request_id ?? undefined, user_id: e.user_id, project_id: e.project_id, roles: ['admin'], is_admin: true });
      this.runEvacuation(ctx, e.uuid);
    }
    return n;
  }

  /** Claims a new record's id, then records it; a record that could not be written lets its claim go. */
  private async claimNew(kind: ClaimKind, id: string, record: () => Promise<unknown>): Promise<void> {
    // A fresh uuid: nobody else can hold it, so the claim is ours.
    await this.repo.claim(kind, id, this.owner, this.claims.leaseMs);
    try {
      await record();
    } catch (e) {
      await this.release(kind, id);
      throw e;
    }
  }

  private async release(kind: ClaimKind, id: string): Promise<void> {
    await this.repo.releaseClaim(kind, id, this.owner).catch((e: unknown) => this.log.warn({ [kind]: id, err: (e as Error).message }, 'could not release a claim'));
  }

  /** Resolves when no flow runs and none is queued (used at shutdown and by tests). */
  whenIdle(): Promise<void> {
    if (this.running.size === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }
}
