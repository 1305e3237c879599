/**
 * Which container a migrate request names, and whether it runs: the recorded state when it is
 * fresh, else what the hosts concerned say when asked now (a live check).
 */
import type { RequestContext } from '../common/context.js';
import { ContainerNotFound, InvalidInput, InvalidMigrationState } from '../common/errors.js';
import type { InventoryAPI } from '../compute/inventory.js';
import type { Heartbeats } from './heartbeats.js';
import { toComputeHost } from './hosts.js';
import type { ConductorDeps } from './options.js';
import type { ContainerRecord, HostRecord } from './repository.js';

/** What a live check of some hosts found: per host, when its inventory was taken, or why it did not answer. */
export type LiveCheck = Map<string, { ok: true; taken_at: string } | { ok: false; error: string }>;

/** "0.4 s", "12 s", "3 min": how old a reported state is. */
export function age(ms: number): string {
  if (ms < 10_000) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

export class ContainerResolver {
  constructor(
    private readonly deps: ConductorDeps,
    private readonly heartbeats: Heartbeats,
    /** Asks a host for its containers live; without it, decisions rest on what the hosts reported. */
    readonly inventory?: InventoryAPI,
  ) {}

  /**
   * The containers `ref` names: by ID or name, else (hex) by ID prefix; by host, name, id. Indexed lookups.
   * `project`: only that project's containers exist for this lookup (another project's are never
   * matched, so no answer can tell them from containers that do not exist).
   */
  async matches(ref: string, project?: string | null): Promise<ContainerRecord[]> {
    const repo = this.deps.repo;
    const mine = (cs: ContainerRecord[]) => (project === undefined || project === null ? cs : cs.filter((c) => c.project_id === project));
    // Compared again here: MariaDB's equality ignores trailing spaces, and SQLite's LIKE ignores case.
    const exact = mine(await repo.findContainers(ref, [ref, `/${ref}`])).filter((c) => c.id === ref || c.name === ref || c.name === `/${ref}`);
    if (exact.length === 0 && /^[0-9a-f]{4,63}$/.test(ref)) return mine(await repo.containersByIdPrefix(ref)).filter((c) => c.id.startsWith(ref));
    return exact;
  }

  /** The hosts to ask before deciding on a container (`matches`: what `ref` names); none when the reported state is fresh and says running. */
  async hostsToAsk(matches: ContainerRecord[], now: number): Promise<string[]> {
    const { repo, opts } = this.deps;
    const isUp = (r: HostRecord | null) => r !== null && toComputeHost(r, now, opts.serviceDownTime).state === 'up';
    if (matches.length === 0) {
      // Not known (yet): it may be on any host.
      return (await repo.listHostRecords()).filter(isUp).map((r) => r.name);
    }
    const running = matches.filter((c) => c.status === 'running');
    const maxAgeMs = (opts.containerStateMaxAge ?? 1) * 1000;
    if (running.length === 1 && now - Date.parse(running[0].updated_at) <= maxAgeMs) return [];
    const hosts = [...new Set(matches.map((c) => c.host))];
    const up = await Promise.all(hosts.map(async (h) => isUp(await repo.getHostRecord(h))));
    return hosts.filter((_, i) => up[i]);
  }

  /** Ask hosts for their containers now and record what they say. */
  async checkLive(ctx: RequestContext, hosts: string[]): Promise<LiveCheck> {
    const out: LiveCheck = new Map();
    const inventory = this.inventory;
    if (!inventory) return out;
    await Promise.all(
      hosts.map(async (h) => {
        try {
          out.set(h, { ok: true, taken_at: await this.heartbeats.saveInventory(await inventory.inventory(ctx, h), h) });
        } catch (e) {
          out.set(h, { ok: false, error: (e as Error).message });
          this.deps.log.warn({ host: h, err: (e as Error).message }, 'live container-state check failed');
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
  async resolveContainer(ref: string, live?: LiveCheck, found?: ContainerRecord[]): Promise<ContainerRecord> {
    const now = Date.now();
    const matches = found ?? (await this.matches(ref));
    if (matches.length === 0) {
      const entries = live ? [...live] : [];
      const asked = entries
        .filter(([, r]) => r.ok)
        .map(([h]) => h)
        .sort();
      const silent = entries
        .filter(([, r]) => !r.ok)
        .map(([h]) => h)
        .sort();
      let basis = asked.length ? `asked ${asked.join(', ')} just now` : 'as the hosts last reported';
      if (silent.length) basis += `; ${silent.join(', ')} did not answer and may have it`;
      throw new ContainerNotFound(`container "${ref}" was not found on any compute host (${basis}); see GET /v1/containers`);
    }
    const running = matches.filter((c) => c.status === 'running');
    if (running.length > 1) {
      throw new InvalidInput(
        `"${ref}" matches ${running.length} running containers (${running.map((c) => `${c.id.slice(0, 12)} on ${c.host}`).join(', ')}); use the full ID`,
      );
    }
    const c = running[0] ?? matches[0];
    if (c.status !== 'running') {
      throw new InvalidMigrationState(`${this.notRunning(c, live, now)}; only running containers are live-migrated`, {
        container: c.id,
        status: c.status,
        state_age_ms: now - Date.parse(c.updated_at),
        live_checked: live?.get(c.host)?.ok === true,
      });
    }
    return c;
  }
}
