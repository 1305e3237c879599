/**
 * What hosts report: heartbeats (a host's facts and full inventory), container events as they
 * happen, and inventories taken on request (live checks). Remembers per host when its newest
 * full inventory was taken, so that older events are dropped.
 */
import { InvalidInput } from '../common/errors.js';
import type { ContainerEvent } from '../compute/events.js';
import type { Inventory } from '../compute/inventory.js';
import { projectOf, type ContainerSummary, type HostState } from '../objects/host.js';
import type { ConductorDeps } from './options.js';
import { checkEventHost, checkReportAgainstRecord, checkReportedVersions, checkSender } from './reporter.js';

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

export class Heartbeats {
  /** Per host: when its newest full inventory was taken; events older than that are already in it. */
  private readonly inventoryAt = new Map<string, string>();

  constructor(private readonly deps: ConductorDeps) {}

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
    checkSender({ host, sender, perHostBusUsers: this.deps.opts.perHostBusUsers ?? false });
    checkReportAgainstRecord(host, state.migration_address, await this.deps.repo.getHostRecord(host), Date.now(), this.deps.opts.serviceDownTime);
    await this.deps.repo.saveHostReport(host, state, now, taken);
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
    checkSender({ host, sender, perHostBusUsers: this.deps.opts.perHostBusUsers ?? false });
    if (!this.inventoryAt.has(host)) checkEventHost(host, await this.deps.repo.getHostRecord(host));
    // Already part of a newer full inventory of this host (e.g. one sent after a reconnect).
    const inv = this.inventoryAt.get(host);
    if (inv && at < inv) return false;
    const changed = await this.deps.repo.applyContainerChange(host, change);
    this.deps.log.debug({ host, kind: event.kind, container: event.id.slice(0, 12), status: change.status, changed }, 'container event');
    return changed;
  }

  /** A host's inventory taken on request (live check): recorded like a heartbeat's, the host's facts untouched. */
  async saveInventory(inv: Inventory, host: string): Promise<string> {
    const taken = isoOrNull(inv?.taken_at);
    if (!taken || !Array.isArray(inv?.containers)) throw new InvalidInput(`the inventory ${host} sent is malformed`);
    const containers: ContainerSummary[] = inv.containers.filter(
      (c) => typeof c?.id === 'string' && typeof c.name === 'string' && typeof c.image === 'string' && typeof c.status === 'string',
    );
    await this.deps.repo.saveInventory(host, containers, taken);
    this.noteInventory(host, taken);
    return taken;
  }
}
