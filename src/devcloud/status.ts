/** The description of a running development cloud, as `ferry-devcloud status --json` prints it. */
import type { BrokerStatus } from './rabbit.js';

export interface CloudCredentials {
  username: string;
  password: string;
  project_name: string;
  user_domain_name: string;
  project_domain_name: string;
}

export interface CloudHost {
  name: string;
  docker_host: string; // unix:///.../docker.sock
  netns: string;
  data_root: string;
  exec_root: string;
  state: 'up' | 'down';
  /** ferry-compute's data channel address for this host (reachable from the root namespace). */
  migration_address: string;
}

export interface CloudStatus {
  state_dir: string;
  keystone: { auth_url: string; admin: CloudCredentials; demo: CloudCredentials; reader: CloudCredentials; service: CloudCredentials; state: 'up' | 'down' };
  /**
   * RabbitMQ. `transport_url` is the first broker alone: what clients of the cloud use (Python
   * oslo.messaging shuffles the hosts of a URL, so with both brokers it would land on either one
   * while Ferry's services are on the first); it is plain AMQP. `services_transport_url` lists
   * both brokers' TLS ports with `?ssl=1&ssl_ca_file=` (`ca_file`, the dev cloud's CA), as the
   * services' config files do. `state` is up when every broker is (both listeners); each one in
   * `brokers`, with its `tls_port` and `tls_transport_url`.
   */
  rabbit: {
    transport_url: string;
    admin_transport_url: string;
    services_transport_url: string;
    ca_file: string;
    state: 'up' | 'down';
    brokers: BrokerStatus[];
    /** 1: independent brokers; 3: one cluster (`up --rabbit-cluster 3`), quorum queues. */
    cluster_size: 1 | 3;
    /** The nodes of the layout, each with its plain and TLS ports and its Erlang PID (null when down). */
    nodes: { name: string; node: string; port: number; tls_port: number; pid: number | null }[];
  };
  api?: { url: string; state: 'up' | 'down' };
  /** Horizon with Ferry's panel, when Horizon is installed. */
  horizon?: { url: string; state: 'up' | 'down' };
  /** Neutron (`up --neutron`): its URL, PIDs and the provider and tenant networks. */
  neutron?: NeutronStatus;
  hosts: CloudHost[];
  fabric: { network: string; subnet: string; gateway: string; client_netns: string; client_ip: string; bridge_netns: string };
  criu: { binary: string; version: string };
  config_files: Record<string, string>;
  /** Ferry's own services (those built), by name. */
  services: Record<string, 'up' | 'down'>;
  /**
   * The services that run another release's code than this checkout's (`up --release`, until
   * `upgrade` replaces them), by name; absent when every service runs this checkout's.
   */
  releases?: Record<string, { revision: string; commit: string; dir: string }>;
  /** The conductors' database (password hidden) and how many conductors run; MariaDB's server when it is the database or still runs; Galera's nodes when it is the database. */
  database: {
    kind: 'sqlite' | 'mariadb' | 'galera';
    connection: string;
    conductors: number;
    mariadb?: { state: 'up' | 'down'; pid: number | null; port: number; datadir: string };
    galera?: { name: string; port: number; pid: number | null; state: string | null; cluster_size: number | null }[];
  };
}

/** One of the networks `up --neutron` makes. */
export interface NeutronNetworkInfo {
  id: string;
  name: string;
  network_type: string;
  segmentation_id: number | null;
  physical_network: string | null;
  subnet: string;
  project_id: string;
}

/** Neutron in the dev cloud: its URL, the PIDs of its server and agents, its networks. */
export interface NeutronStatus {
  url: string;
  state: 'up' | 'down';
  pid: number | null;
  agents: { host: string; pid: number | null }[];
  networks: Partial<Record<'provider' | 'tenant', NeutronNetworkInfo>>;
}
