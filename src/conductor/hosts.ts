/** Host liveness and the scheduler: plain functions over what heartbeats reported. */
import { HostDisabled, HostDown, HostNotFound, InvalidInput, NoValidHost, PostCopyUnsupported } from '../common/errors.js';
import type { ComputeHost } from '../objects/host.js';
import type { HostRecord } from './repository.js';

export function hostIsUp(rec: HostRecord, now: number, serviceDownTimeS: number): boolean {
  return now - Date.parse(rec.updated_at) <= serviceDownTimeS * 1000;
}

/** A reported byte count, or null when absent or not a usable number. */
function bytes(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
}

export function toComputeHost(rec: HostRecord, now: number, serviceDownTimeS: number): ComputeHost {
  const r = rec.facts;
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
    containers: rec.containers,
    memory_used_bytes: bytes(r.memory_used_bytes),
    memory_total_bytes: bytes(r.memory_total_bytes),
    modes: r.modes ?? null,
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

/**
 * How much each criterion counts in a host's load (as Nova's weigher multipliers): memory is the
 * fraction of the host's memory its containers use, containers the host's count relative to the
 * busiest candidate's; both run from 0 to 1. 0 leaves a criterion out.
 */
export interface LoadWeights {
  memory: number;
  containers: number;
}

export const DEFAULT_LOAD_WEIGHTS: Readonly<LoadWeights> = { memory: 1, containers: 1 };

/** The share of its memory a host's containers use (0..1), or null when it does not report both figures. */
export function memoryFraction(h: ComputeHost): number | null {
  if (h.memory_used_bytes === null || h.memory_total_bytes === null || !(h.memory_total_bytes > 0)) return null;
  return Math.min(1, h.memory_used_bytes / h.memory_total_bytes);
}

/**
 * Each candidate's load, lower is better: memory fraction and container share, weighted. A host
 * that does not report its memory counts as the candidates' mean memory fraction, neither
 * favoured nor avoided. Memory comes from the last heartbeat, so it does not yet include the
 * migrations on their way; the container count does (the caller adds them), which is what
 * spreads a burst of migrations accepted together.
 */
export function loadScores(candidates: ComputeHost[], weights: LoadWeights = DEFAULT_LOAD_WEIGHTS): Map<string, number> {
  const fractions = candidates.map(memoryFraction);
  const known = fractions.filter((f): f is number => f !== null);
  const meanFraction = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 0;
  const busiest = candidates.reduce((m, h) => Math.max(m, h.containers), 1);
  return new Map(candidates.map((h, i) => [h.name, weights.memory * (fractions[i] ?? meanFraction) + (weights.containers * h.containers) / busiest]));
}

/** Ties of load: fewer containers, then less memory in use (when both hosts report it), then by name. */
export function byLoad(a: ComputeHost, b: ComputeHost): number {
  if (a.containers !== b.containers) return a.containers - b.containers;
  if (a.memory_used_bytes !== null && b.memory_used_bytes !== null && a.memory_used_bytes !== b.memory_used_bytes) {
    return a.memory_used_bytes - b.memory_used_bytes;
  }
  return a.name.localeCompare(b.name);
}

/**
 * The target for a migration: the requested one after checking it, or, among the enabled up
 * hosts with working CRIU and the source's architecture, the least loaded (`loadScores`). A
 * disabled host is never chosen; named, it is refused with its reason. `hosts[].containers`
 * should already count the migrations on their way to each host (the caller knows them).
 * How many migrations a host runs at once is not decided here: the conductor queues.
 */
export function chooseTarget(hosts: ComputeHost[], source: string, requested: string | null | undefined, weights: LoadWeights = DEFAULT_LOAD_WEIGHTS): string {
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
  const candidates = others.filter((h) => ineligibility(h, src) === null);
  if (candidates.length === 0) {
    const why = others.map((h) => ineligibility(h, src)).filter((r): r is string => r !== null);
    throw new NoValidHost(
      `no valid host to migrate to from "${source}": ${why.length ? why.join('; ') : 'it is the only compute host'}; nowhere to migrate to`,
      { source, reasons: why },
    );
  }
  // One pass for the least loaded (a thousand hosts: no need to sort them all).
  const score = loadScores(candidates, weights);
  let best = candidates[0];
  for (const h of candidates) {
    const d = (score.get(h.name) as number) - (score.get(best.name) as number);
    if (d < 0 || (d === 0 && byLoad(h, best) < 0)) best = h;
  }
  return best.name;
}

/** Post-copy needs both hosts able and permitted (what their last heartbeats said); PostCopyUnsupported says which is not. */
export function requirePostCopy(hosts: ComputeHost[], names: string[]): void {
  const why = names.map((n) => {
    const modes = hosts.find((h) => h.name === n)?.modes;
    if (!modes) return `${n} did not report its migration modes (an older agent?)`;
    return modes.post_copy.ok ? null : (modes.post_copy.reason ?? `${n} cannot do post-copy`);
  });
  const refused = why.filter((w): w is string => w !== null);
  if (refused.length) throw new PostCopyUnsupported(`post-copy is not possible for this migration: ${refused.join('; ')}`, { hosts: names });
}
