/**
 * The service version, as Nova's: one integer for the whole of Ferry's code, raised by one in
 * every release that changes what services say to each other (RPC versions, heartbeat fields,
 * database use). Every running service records it in the database, so an operator and
 * the conductor can tell which releases are running during a rolling upgrade, and `[upgrade_levels]
 * ... = auto` can pick the RPC version every running peer understands.
 *
 * History (append a line and an entry to SERVICE_VERSION_HISTORY with each bump; never change one):
 *   1: the release before service versions were recorded: ferry-compute sends no version in its
 *      heartbeat and the conductor none of its own; conductor RPC 1.4, compute RPC 1.2.
 *   2: services record their service and RPC versions (schema 8: `services`, `compute_hosts.service_version`); the heartbeat carries
 *      `service_version` and `rpc_version`; `[upgrade_levels]`; `ferry-status upgrade check`.
 */

export interface ServiceVersionEntry {
  /** The compute agent's RPC API version in that release (src/compute/methods.ts COMPUTE_RPC_VERSION). */
  compute_rpc: string;
  /** The conductor's RPC API version in that release (src/conductor/methods.ts CONDUCTOR_RPC_VERSION). */
  conductor_rpc: string;
}

/** Index = service version; entry 0 is unused (there never was a version 0). */
export const SERVICE_VERSION_HISTORY: readonly (ServiceVersionEntry | null)[] = [
  null,
  { compute_rpc: '1.2', conductor_rpc: '1.4' },
  { compute_rpc: '1.2', conductor_rpc: '1.4' },
];

/** This code's service version. */
export const SERVICE_VERSION = SERVICE_VERSION_HISTORY.length - 1;

/**
 * The oldest service version this code still works with during a rolling upgrade (the previous
 * release): a service older than this must be upgraded before this release's services start.
 */
export const MIN_SUPPORTED_SERVICE_VERSION = 1;

/** What a service that records no version (an agent of the release before versions) counts as. */
export const UNRECORDED_SERVICE_VERSION = 1;

export type ServiceTopic = 'ferry-compute' | 'ferry-conductor';

/** The RPC version of `topic` a service of `version` speaks, or null for a version this code does not know. */
export function rpcVersionOf(topic: ServiceTopic, version: number): string | null {
  const e = Number.isInteger(version) ? SERVICE_VERSION_HISTORY[version] : undefined;
  if (!e) return null;
  return topic === 'ferry-compute' ? e.compute_rpc : e.conductor_rpc;
}
