/** A compute host as the conductor knows it from heartbeats. */

export interface ModeSupport {
  ok: boolean;
  /** Why not (null when ok). */
  reason: string | null;
}

/** Stop-and-copy works wherever CRIU does; these need more (kernel features, the deployment's permission). */
export interface HostModes {
  post_copy: ModeSupport;
  /**
   * Reported, never offered: no engine driver can pre-dump. Agents send it (the hosts API shows it,
   * conductors of 0.1 require it); the conductor decides nothing by it and accepts a heartbeat without it.
   */
  pre_copy?: ModeSupport;
}

/** A host's service status, set by the operator (Nova's `compute service set --disable`). */
export const HOST_STATUSES = ['enabled', 'disabled'] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];

export interface ComputeHost {
  name: string;
  state: 'up' | 'down';
  /** `disabled`: the scheduler never chooses it as a target (its containers run on and may be moved away). */
  status: HostStatus;
  disabled_reason: string | null;
  docker_version: string | null;
  criu_version: string | null;
  criu_ok: boolean;
  architecture: string | null;
  migration_address: string | null; // host:port of its data channel
  containers: number;
  /** Memory the host's containers use, when its agent reports it (the scheduler weighs it against the total). */
  memory_used_bytes: number | null;
  /** The host's memory, when its agent reports it. */
  memory_total_bytes: number | null;
  /** Ways of moving memory beyond stop-and-copy, and why not (null: the agent did not say). */
  modes: HostModes | null;
  updated_at: string | null;
}

/** What `report_state` carries from a compute agent. */
export interface HostState {
  docker_version: string;
  api_version: string;
  criu_version: string | null;
  criu_ok: boolean;
  architecture: string;
  migration_address: string;
  containers: ContainerSummary[];
  /** Memory the containers use, bytes (optional: agents that do not report it leave memory out of the choice). */
  memory_used_bytes?: number | null;
  /** Post-copy and pre-copy support (optional: older agents do not report it). */
  modes?: HostModes | null;
  /** The host's memory, bytes (optional, as above). */
  memory_total_bytes?: number | null;
  /** The agent's service version (src/common/service-version.ts); absent from agents older than service versions. */
  service_version?: number | null;
  /** The compute RPC API version the agent serves (absent from the same older agents). */
  rpc_version?: string | null;
}

/** What a host reports of itself: its report without the container list. */
export type HostFacts = Omit<HostState, 'containers'>;

/**
 * The Docker label that says which OpenStack project a container belongs to, set by whoever
 * creates the container (Ferry never sets or changes it; it moves with the container's config).
 * Project-scoped callers see and migrate only containers labelled with their project.
 */
export const PROJECT_LABEL = 'org.openstack.project_id';

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  status: string; // Docker's State (running, exited, ...)
  /** The container's PROJECT_LABEL; null (or absent, from older agents): not labelled, no project's. */
  project_id?: string | null;
}

/** A label value as a project id: a non-empty string of at most 255 characters, else null (not any project's). */
export function projectOf(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= 255 ? v : null;
}

export interface Container extends ContainerSummary {
  host: string;
}
