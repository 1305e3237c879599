/**
 * Config capture (docker inspect -> ContainerSpec) and recreate (ContainerSpec -> the body of
 * POST /containers/create on the target). Pure functions: unit-tested without an engine.
 */
import type { BindSpec, ContainerSpec, NetworkAttachment, PortSpec, VolumeSpec } from '../driver.js';

/** The parts of `docker inspect` (API 1.41) that migration reads. */
export interface DockerInspect {
  Id: string;
  Name: string;
  Image: string;
  State: { Status: string; Running: boolean; Paused?: boolean; Pid: number };
  Config: {
    Hostname?: string;
    Domainname?: string;
    User?: string;
    ExposedPorts?: Record<string, object> | null;
    Tty?: boolean;
    OpenStdin?: boolean;
    StdinOnce?: boolean;
    Env?: string[] | null;
    Cmd?: string[] | null;
    Image?: string;
    Volumes?: Record<string, object> | null;
    WorkingDir?: string;
    Entrypoint?: string[] | string | null;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    StopTimeout?: number;
    Healthcheck?: unknown;
    MacAddress?: string;
  };
  HostConfig: Record<string, unknown> & {
    Binds?: string[] | null;
    NetworkMode?: string;
    PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> | null;
    Privileged?: boolean;
    AutoRemove?: boolean;
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
    Devices?: { PathOnHost: string; PathInContainer: string }[] | null;
    Mounts?: { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean }[] | null;
  };
  Mounts?: { Type: string; Name?: string; Source: string; Destination: string; Driver?: string; RW: boolean }[];
  NetworkSettings?: {
    Networks?: Record<string, { IPAddress?: string; MacAddress?: string; Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string } | null }>;
  };
  GraphDriver?: { Name?: string; Data?: Record<string, string> | null };
}

/** HostConfig fields carried to the target as they are (resources, restart policy, ports, ...). */
export const HOST_CONFIG_KEYS = [
  'Binds',
  'PortBindings',
  'PublishAllPorts',
  'RestartPolicy',
  'NetworkMode',
  'Memory',
  'MemorySwap',
  'MemoryReservation',
  'KernelMemory',
  'NanoCpus',
  'CpuShares',
  'CpuPeriod',
  'CpuQuota',
  'CpuRealtimePeriod',
  'CpuRealtimeRuntime',
  'CpusetCpus',
  'CpusetMems',
  'BlkioWeight',
  'PidsLimit',
  'Ulimits',
  'ShmSize',
  'OomKillDisable',
  'OomScoreAdj',
  'MemorySwappiness',
  'CapAdd',
  'CapDrop',
  'Dns',
  'DnsOptions',
  'DnsSearch',
  'ExtraHosts',
  'GroupAdd',
  'IpcMode',
  'UTSMode',
  'Init',
  'LogConfig',
  'ReadonlyRootfs',
  'SecurityOpt',
  'Sysctls',
  'Tmpfs',
  'Mounts',
  'CgroupParent',
  // Carried so that the source judges them with the target's allow-list (allowlist.ts): refused
  // unless Docker's neutral value, instead of silently left behind. (Not CgroupnsMode: its
  // default is the host's on cgroup v1 and each target picks its own.)
  'Privileged',
  'AutoRemove',
  'PidMode',
  'UsernsMode',
  'Devices',
  'DeviceRequests',
  'DeviceCgroupRules',
  'VolumeDriver',
  'VolumesFrom',
  'Runtime',
] as const;

/** Config fields carried as they are. */
export const CONFIG_KEYS = [
  'Hostname',
  'Domainname',
  'User',
  'ExposedPorts',
  'Tty',
  'OpenStdin',
  'StdinOnce',
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'Labels',
  'StopSignal',
  'StopTimeout',
  'Healthcheck',
] as const;

const DEFAULT_NETWORKS = new Set(['default', 'bridge']);

export function primaryNetwork(mode: string | undefined): string {
  const m = mode || 'default';
  return m === 'default' ? 'bridge' : m;
}

function parseBind(b: string): { source: string; destination: string; ro: boolean } {
  // "src:dst[:opts]"; src is a host path (absolute) or a volume name.
  const parts = b.split(':');
  const opts = parts.length >= 3 ? parts.slice(2).join(':').split(',') : [];
  return { source: parts[0], destination: parts[1] ?? '', ro: opts.includes('ro') };
}

/**
 * inspect -> ContainerSpec. `fabric` lists the shared tenant networks; `imageRef` is the tag
 * to carry (null when the container's Config.Image no longer names its image ID).
 */
export function captureSpec(
  ins: DockerInspect,
  opts: {
    fabric: string[];
    imageRef: string | null;
    volumes?: Record<string, { driver: string; labels: Record<string, string>; options: Record<string, string> }>;
    memoryEstimate?: number | null;
  },
): ContainerSpec {
  const hc = ins.HostConfig;
  const name = ins.Name.replace(/^\//, '');
  const mode = hc.NetworkMode || 'default';
  const networks: NetworkAttachment[] = Object.entries(ins.NetworkSettings?.Networks ?? {}).map(([net, ep]) => {
    const shared = opts.fabric.includes(net);
    return {
      name: net,
      shared,
      ip: ep.IPAMConfig?.IPv4Address || ep.IPAddress || null,
      mac: ep.MacAddress || null,
      // Docker adds the short ID as an alias by itself; the target's ID differs.
      aliases: (ep.Aliases ?? []).filter((a) => a !== ins.Id.slice(0, 12)),
    };
  });

  const volumes: VolumeSpec[] = [];
  const binds: BindSpec[] = [];
  for (const m of ins.Mounts ?? []) {
    if (m.Type === 'volume' && m.Name) {
      const meta = opts.volumes?.[m.Name];
      volumes.push({
        name: m.Name,
        destination: m.Destination,
        driver: meta?.driver ?? m.Driver ?? 'local',
        labels: meta?.labels ?? {},
        options: meta?.options ?? {},
        read_only: !m.RW,
      });
    } else if (m.Type === 'bind') {
      binds.push({ source: m.Source, destination: m.Destination, read_only: !m.RW });
    }
  }

  const ports: PortSpec[] = [];
  for (const [cport, bindings] of Object.entries(hc.PortBindings ?? {})) {
    for (const b of bindings ?? []) ports.push({ container_port: cport, host_ip: b.HostIp ?? '', host_port: b.HostPort ?? '' });
  }

  const config: Record<string, unknown> = {};
  for (const k of CONFIG_KEYS) {
    const v = (ins.Config as Record<string, unknown>)[k];
    if (v !== undefined && v !== null && v !== '') config[k] = v;
  }
  const hostConfig: Record<string, unknown> = {};
  for (const k of HOST_CONFIG_KEYS) {
    const v = hc[k];
    if (v !== undefined && v !== null && v !== '') hostConfig[k] = v;
  }
  // Volumes the container uses but does not name in Binds/Mounts (anonymous, or from the
  // image's VOLUME) are bound by name on the target, so their data lands in a volume of the
  // same name instead of a fresh anonymous one.
  const named = new Set<string>();
  for (const b of hc.Binds ?? []) named.add(parseBind(b).source);
  for (const m of hc.Mounts ?? []) if (m.Type === 'volume' && m.Source) named.add(m.Source);
  const extraBinds = volumes.filter((v) => !named.has(v.name)).map((v) => `${v.name}:${v.destination}${v.read_only ? ':ro' : ''}`);
  if (extraBinds.length > 0) hostConfig.Binds = [...((hostConfig.Binds as string[] | undefined) ?? []), ...extraBinds];

  const primary = primaryNetwork(mode);
  const endpoints: Record<string, unknown> = {};
  const pnet = networks.find((n) => n.name === primary);
  if (pnet && !DEFAULT_NETWORKS.has(primary)) {
    endpoints[primary] = {
      ...(pnet.shared && pnet.ip ? { IPAMConfig: { IPv4Address: pnet.ip } } : {}),
      ...(pnet.aliases.length > 0 ? { Aliases: pnet.aliases } : {}),
    };
    // API 1.41: the MAC of the primary endpoint is Config.MacAddress (docs/platform-facts.md).
    if (pnet.shared && pnet.mac) config.MacAddress = pnet.mac;
  }

  return {
    id: ins.Id,
    name,
    image: { id: ins.Image, ref: opts.imageRef },
    running: ins.State.Running && !ins.State.Paused,
    tty: Boolean(ins.Config.Tty),
    privileged: Boolean(hc.Privileged),
    auto_remove: Boolean(hc.AutoRemove),
    network_mode: mode,
    networks,
    volumes,
    binds,
    ports,
    devices: (hc.Devices ?? []).map((d) => d.PathOnHost),
    restart_policy: hc.RestartPolicy?.Name || 'no',
    memory_bytes_estimate: opts.memoryEstimate ?? null,
    create: { ...config, HostConfig: hostConfig, NetworkingConfig: { EndpointsConfig: endpoints } },
  };
}

/** The other (non-primary) networks the target must connect before the restore. */
export function secondaryNetworks(spec: ContainerSpec): NetworkAttachment[] {
  const primary = primaryNetwork(spec.network_mode);
  return spec.networks.filter((n) => n.name !== primary);
}

/** ContainerSpec -> POST /containers/create body for the target (name included). */
/** The label that marks a target's shell with the migration that made it (so rollback finds it after a crash). */
export const MIGRATION_LABEL = 'org.openstack.ferry.migration';

export function buildCreateBody(spec: ContainerSpec, image: string, migrationId: string): Record<string, unknown> {
  const create = structuredClone(spec.create);
  const labels = { ...((create.Labels as Record<string, string> | null | undefined) ?? {}), [MIGRATION_LABEL]: migrationId };
  return { ...create, Labels: labels, Image: image, name: spec.name };
}

/** Endpoint config for connecting a secondary network on the target. */
export function endpointFor(n: NetworkAttachment): Record<string, unknown> {
  return {
    ...(n.shared && n.ip ? { IPAMConfig: { IPv4Address: n.ip } } : {}),
    ...(n.aliases.length > 0 ? { Aliases: n.aliases } : {}),
  };
}

/** Whether every established connection can be carried: all networks shared (or none at all). */
export function connectionsPreserved(spec: ContainerSpec): boolean {
  const nets = spec.networks.filter((n) => n.name !== 'none');
  return nets.every((n) => n.shared);
}
