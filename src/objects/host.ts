/** A compute host as the conductor knows it from heartbeats. */
export interface ComputeHost {
  name: string;
  state: 'up' | 'down';
  docker_version: string | null;
  criu_version: string | null;
  criu_ok: boolean;
  architecture: string | null;
  migration_address: string | null; // host:port of its data channel
  containers: number;
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
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  status: string; // Docker's State (running, exited, ...)
}

export interface Container extends ContainerSummary {
  host: string;
}
