/** Host liveness and the scheduler: plain functions over what heartbeats reported. */
import { HostDisabled, HostDown, HostNotFound, InvalidInput, NoValidHost } from '../common/errors.js';
import type { ComputeHost } from '../objects/host.js';
import type { HostRecord } from './repository.js';

export function hostIsUp(rec: HostRecord, now: number, serviceDownTimeS: number): boolean {
  return now - Date.parse(rec.updated_at) <= serviceDownTimeS * 1000;
}

export function toComputeHost(rec: HostRecord, now: number, serviceDownTimeS: number): ComputeHost {
  const r = rec.report;
  return {
    name: rec.name,
    state: hostIsUp(rec, now, serviceDownTimeS) ? 'up' : 'down',
    status: rec.status,
    disabled_reason: rec.disabled_reason,
    docker_version: r.docker_version ?? null,
    criu_version: r.criu_version ?? null,
    criu_ok: Boolean(r.criu_ok),
    architecture: r.architecture ?? null,
    migration_address: r.migration_address ?? null,
    containers: r.containers.length,
    memory_used_bytes: typeof r.memory_used_bytes === 'number' && Number.isFinite(r.memory_used_bytes) ? r.memory_used_bytes : null,
    updated_at: rec.updated_at,
  };
}

/** Why `h` cannot take a migration from `source`, or null when it can. */
export function ineligibility(h: ComputeHost, src: ComputeHost | undefined): string | null {
  if (h.status === 'disabled') return `${h.name} is disabled${h.disabled_reason ? ` (${h.disabled_reason})` : ''}`;
  if (h.state !== 'up') return `${h.name} is down (no heartbeat since ${h.updated_at})`;
  if (!h.criu_ok) return `${h.name} has no working CRIU (criu ${h.criu_version ?? 'missing'})`;
  if (src?.architecture && h.architecture && h.architecture !== src.architecture) {
    return `${h.name} is ${h.architecture}, the container's host is ${src.architecture}`;
  }
  return null;
}

/** Less loaded first: fewer containers, then less memory in use (when both hosts report it), then by name. */
export function byLoad(a: ComputeHost, b: ComputeHost): number {
  if (a.containers !== b.containers) return a.containers - b.containers;
  if (a.memory_used_bytes !== null && b.memory_used_bytes !== null && a.memory_used_bytes !== b.memory_used_bytes) {
    return a.memory_used_bytes - b.memory_used_bytes;
  }
  return a.name.localeCompare(b.name);
}

/**
 * The target for a migration: the requested one after checking it, or, among the enabled up
 * hosts with working CRIU and the source's architecture, the least loaded (`byLoad`). A
 * disabled host is never chosen; named, it is refused with its reason. `hosts[].containers`
 * should already count the migrations on their way to each host (the caller knows them).
 * How many migrations a host runs at once is not decided here: the conductor queues.
 */
export function chooseTarget(hosts: ComputeHost[], source: string, requested: string | null | undefined): string {
  const src = hosts.find((h) => h.name === source);
  if (requested) {
    const h = hosts.find((x) => x.name === requested);
    if (!h) throw new HostNotFound(`compute host "${requested}" is not known; see GET /v1/hosts`);
    if (h.name === source) {
      throw new InvalidInput(`the container already runs on "${source}"; choose another target host or leave "host" out`);
    }
    if (h.status === 'disabled') {
      throw new HostDisabled(
        `compute host "${requested}" is disabled${h.disabled_reason ? ` (${h.disabled_reason})` : ''}; enable it (openstack container host set --enable ${requested}) or choose another host`,
        { host: requested, disabled_reason: h.disabled_reason },
      );
    }
    if (h.state !== 'up') throw new HostDown(`compute host "${requested}" is down (no heartbeat since ${h.updated_at})`);
    if (!h.criu_ok) throw new NoValidHost(`compute host "${requested}" has no working CRIU (criu ${h.criu_version ?? 'missing'})`);
    return h.name;
  }
  const others = hosts.filter((h) => h.name !== source);
  const candidates = others.filter((h) => ineligibility(h, src) === null).sort(byLoad);
  if (candidates.length === 0) {
    const why = others.map((h) => ineligibility(h, src)).filter((r): r is string => r !== null);
    throw new NoValidHost(
      `no valid host to migrate to from "${source}": ${why.length ? why.join('; ') : 'it is the only compute host'}; nowhere to migrate to`,
      { source, reasons: why },
    );
  }
  return candidates[0].name;
}
