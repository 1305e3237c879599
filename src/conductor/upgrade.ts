/**
 * Rolling upgrades on the conductor's side: which RPC version `[upgrade_levels] ... = auto`
 * stands for (the lowest one the running services of a topic report, as Nova's), and the
 * conductor's own service record, refreshed like a heartbeat so that others can see it runs.
 */
import type { Logger } from '../common/log.js';
import { rpcVersionOf, SERVICE_VERSION, UNRECORDED_SERVICE_VERSION, type ServiceTopic } from '../common/service-version.js';
import { AUTO } from '../conf/upgrade_levels.js';
import { oldestVersion } from '../bus/version.js';
import type { HostRecord, Repository, ServiceRecord } from './repository.js';

/** What the choice of a topic's version is made from. */
export interface RunningServices {
  services: readonly ServiceRecord[];
  /** Compute hosts by their heartbeats: an up host without a service record runs an agent older than service versions. */
  hosts: readonly HostRecord[];
  now: number;
  /** Seconds without a record's refresh after which a service counts as not running ([conductor] service_down_time). */
  serviceDownTimeS: number;
}

/** As hostIsUp (hosts.ts): refreshed within the down time. */
function isUp(updatedAt: string, now: number, downS: number): boolean {
  return now - Date.parse(updatedAt) <= downS * 1000;
}

/** The RPC version each running service of `topic` speaks, by `binary host`. */
export function runningVersions(topic: ServiceTopic, r: RunningServices): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of r.services) {
    if (s.topic !== topic || !isUp(s.updated_at, r.now, r.serviceDownTimeS)) continue;
    const v = s.rpc_version ?? rpcVersionOf(topic, s.service_version);
    if (v) out.set(`${s.binary} ${s.host}`, v);
  }
  if (topic === 'ferry-compute') {
    const recorded = new Set(r.services.filter((s) => s.topic === topic).map((s) => s.host));
    const old = rpcVersionOf(topic, UNRECORDED_SERVICE_VERSION) as string;
    for (const h of r.hosts) {
      if (!recorded.has(h.name) && isUp(h.updated_at, r.now, r.serviceDownTimeS)) out.set(`${topic} ${h.name}`, old);
    }
  }
  return out;
}

/**
 * The cap `setting` (`[upgrade_levels] <topic>`) stands for: an explicit X.Y as it is; `auto`,
 * the lowest version the running services of `topic` report, or undefined (no cap: this code's
 * version, as before upgrade levels) when none runs.
 */
export function resolveVersionCap(setting: string, topic: ServiceTopic, r: RunningServices): string | undefined {
  if (setting !== AUTO) return setting;
  return oldestVersion(runningVersions(topic, r).values());
}

/** The cap an explicit setting gives, for services that cannot see the records (auto: none). */
export function explicitVersionCap(setting: string): string | undefined {
  return setting === AUTO ? undefined : setting;
}

export interface ConductorRecordOptions {
  host: string;
  rpcVersion: string;
  /** `[upgrade_levels] compute`. */
  computeLevel: string;
  serviceDownTimeS: number;
  /** Seconds between refreshes of the record and of the compute cap. */
  intervalS: number;
}

/**
 * Keeps the conductor's service record fresh and `[upgrade_levels] compute` resolved. The cap is
 * read at every compute call (`computeCap`), refreshed every `intervalS`; a failed refresh keeps
 * the last value and is logged, never fatal.
 */
export class ConductorUpgradeState {
  private cap: string | undefined;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly repo: Repository,
    private readonly opts: ConductorRecordOptions,
    private readonly log: Logger,
  ) {
    this.cap = explicitVersionCap(opts.computeLevel);
  }

  /** The compute cap as last resolved. */
  computeCap = (): string | undefined => this.cap;

  async refresh(): Promise<void> {
    const now = Date.now();
    await this.repo.saveService(
      { binary: 'ferry-conductor', host: this.opts.host, topic: 'ferry-conductor', service_version: SERVICE_VERSION, rpc_version: this.opts.rpcVersion },
      new Date(now).toISOString(),
    );
    if (this.opts.computeLevel !== AUTO) return;
    const [services, hosts] = await Promise.all([this.repo.listServices(), this.repo.listHostRecords()]);
    const cap = resolveVersionCap(AUTO, 'ferry-compute', { services, hosts, now, serviceDownTimeS: this.opts.serviceDownTimeS });
    if (cap !== this.cap) this.log.info({ compute_rpc_cap: cap ?? 'none' }, '[upgrade_levels] compute = auto resolved');
    this.cap = cap;
  }

  /** First refresh now (its failure is the caller's), then every interval. */
  async start(): Promise<void> {
    await this.refresh();
    const tick = () => {
      this.refresh()
        .catch((e: Error) => this.log.warn({ err: e.message }, 'service record refresh failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.opts.intervalS * 1000);
        });
    };
    this.timer = setTimeout(tick, this.opts.intervalS * 1000);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
