/** Host liveness and the scheduler: plain functions over what heartbeats reported. */
import { HostDown, HostNotFound, InvalidInput, NoValidHost } from '../common/errors.js';
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
    docker_version: r.docker_version ?? null,
    criu_version: r.criu_version ?? null,
    criu_ok: Boolean(r.criu_ok),
    architecture: r.architecture ?? null,
    migration_address: r.migration_address ?? null,
    containers: r.containers.length,
    updated_at: rec.updated_at,
  };
}

/**
 * The target for a migration: the requested one after checking it, or the up host with
 * working CRIU, the same architecture and the fewest containers (then by name, for a stable choice).
 */
export function chooseTarget(hosts: ComputeHost[], source: string, requested: string | null | undefined): string {
  const src = hosts.find((h) => h.name === source);
  if (requested) {
    const h = hosts.find((x) => x.name === requested);
    if (!h) throw new HostNotFound(`compute host "${requested}" is not known; see GET /v1/hosts`);
    if (h.name === source) {
      throw new InvalidInput(`the container already runs on "${source}"; choose another target host or leave "host" out`);
    }
    if (h.state !== 'up') throw new HostDown(`compute host "${requested}" is down (no heartbeat since ${h.updated_at})`);
    if (!h.criu_ok) throw new NoValidHost(`compute host "${requested}" has no working CRIU (criu ${h.criu_version ?? 'missing'})`);
    return h.name;
  }
  const candidates = hosts
    .filter((h) => h.name !== source && h.state === 'up' && h.criu_ok)
    .filter((h) => !src?.architecture || !h.architecture || h.architecture === src.architecture)
    .sort((a, b) => a.containers - b.containers || a.name.localeCompare(b.name));
  if (candidates.length === 0) {
    throw new NoValidHost(`no compute host other than "${source}" is up with a working CRIU; nowhere to migrate to`);
  }
  return candidates[0].name;
}
