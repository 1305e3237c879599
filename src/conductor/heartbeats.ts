/**
 * What hosts report: heartbeats (a host's facts and full inventory), container events as they
 * happen, and inventories taken on request (live checks). Remembers per host when its newest
 * full inventory was taken, so that older events are dropped.
 */
import { InvalidInput } from '../common/errors.js';
import type { ContainerEvent } from '../compute/events.js';
import type { Inventory } from '../compute/inventory.js';
import type { ContainerSummary, HostState } from '../objects/host.js';
import type { ConductorDeps } from './options.js';
import { checkEventHost, checkReportAgainstRecord, checkSender } from './reporter.js';

/** A time an inventory taken on request says it was taken, as toISOString writes it; null when it is none. */
function isoOrNull(v: unknown): string | null {
  if (typeof v !== 'string' || v.length > 40) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

export class Heartbeats {
  /** Per host: when its newest full inventory was taken; events older than that are already in it. */
  private readonly inventoryAt = new Map<string, string>();

  constructor(private readonly deps: ConductorDeps) {}

  /**
   * A heartbeat: the host's facts and full inventory, taken at `takenAt` (the host's clock;
   * default now), in toISOString's form. `sender`: the bus user that sent it, when the bus says
   * (reporter.ts). Its shape was checked against report_state's schema (methods.ts).
   */
  async reportState(host: string, state: HostState, takenAt?: string | null, sender: string | null = null): Promise<void> {
    const now = new Date().toISOString();
    const taken = takenAt ?? now;
    checkSender({ host, sender, perHostBusUsers: this.deps.opts.perHostBusUsers ?? false });
    checkReportAgainstRecord(host, state.migration_address, await this.deps.repo.getHostRecord(host), Date.now(), this.deps.opts.serviceDownTime);
    await this.deps.repo.saveHostReport(host, state, now, taken);
    this.noteInventory(host, taken);
  }

  private noteInventory(host: string, takenAt: string): void {
    const prev = this.inventoryAt.get(host);
    if (!prev || prev < takenAt) this.inventoryAt.set(host, takenAt);
  }

  /**
   * One container event from a host (a cast, sent as it happens), checked against container_event's
   * schema (methods.ts), its time in toISOString's form. Returns whether it changed the record.
   */
  async containerEvent(host: string, event: ContainerEvent, sender: string | null = null): Promise<boolean> {
    const at = event.at;
    const change = { id: event.id, name: event.name, image: event.image, status: event.status, project_id: event.project_id, at };
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
