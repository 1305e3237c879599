/**
 * Pre-check decisions: pure functions from facts to refusals, each saying what to change.
 * The driver gathers the facts (docker info, criu, the target's containers); these decide.
 */
import type { ContainerSpec, HostFacts, Refusal } from '../driver.js';
import { specRefusals, underShared } from './allowlist.js';

function hostRefusals(f: HostFacts, side: 'source' | 'target'): Refusal[] {
  const out: Refusal[] = [];
  if (!f.criu_ok) {
    out.push({ reason: 'criu_unusable', message: `CRIU on ${side} host ${f.host}: ${f.criu_error ?? 'not usable'}` });
  }
  if (!f.experimental) {
    out.push({
      reason: 'experimental_off',
      message: `Docker on ${side} host ${f.host} runs without experimental features: set "experimental": true in its daemon.json and restart dockerd (checkpoint/restore needs it)`,
    });
  }
  return out;
}

export { underShared };

/** Source side: the container and the source host, optionally against the target's facts. */
export function decideSource(args: { source: HostFacts; dest: HostFacts | null; destHost: string; spec: ContainerSpec; sharedStorage: string[] }): Refusal[] {
  const { source, dest, destHost, spec } = args;
  const out: Refusal[] = [];
  if (destHost === source.host) {
    out.push({ reason: 'same_host', message: `container ${spec.name} is already on ${source.host}: choose another target host` });
  }
  out.push(...hostRefusals(source, 'source'));
  if (dest) {
    if (dest.architecture !== source.architecture) {
      out.push({
        reason: 'architecture_mismatch',
        message: `CPU architecture differs (source ${source.architecture}, target ${dest.host} ${dest.architecture}): choose a target with ${source.architecture}`,
      });
    }
  }
  out.push(...containerRefusals(spec, args.sharedStorage));
  return out;
}

/** What CRIU (through Docker) cannot carry, detected from the container's config. */
export function containerRefusals(spec: ContainerSpec, sharedStorage: string[]): Refusal[] {
  const out: Refusal[] = [];
  if (!spec.running) {
    out.push({ reason: 'not_running', message: `container ${spec.name} is not running: start it first (only running containers are live-migrated)` });
  }
  if (spec.tty) {
    out.push({
      reason: 'tty_attached',
      message: `container ${spec.name} has a TTY attached (-t): CRIU cannot carry a terminal across hosts; recreate it without -t`,
    });
  }
  if (spec.privileged) {
    out.push({
      reason: 'privileged',
      message: `container ${spec.name} is privileged: its host devices and capabilities do not restore elsewhere; recreate it without --privileged (use --cap-add for what it needs)`,
    });
  }
  if (spec.auto_remove) {
    out.push({
      reason: 'auto_remove',
      message: `container ${spec.name} was started with --rm: the engine would delete it (and its checkpoint) when it is frozen; recreate it without --rm`,
    });
  }
  const mode = spec.network_mode;
  if (mode === 'host' || mode.startsWith('container:')) {
    out.push({
      reason: 'network_mode',
      message: `container ${spec.name} uses network mode "${mode}": its sockets belong to another namespace; use a bridge or the shared tenant network`,
    });
  }
  if (spec.devices.length > 0) {
    out.push({
      reason: 'host_devices',
      message: `container ${spec.name} maps host devices (${spec.devices.join(', ')}): remove --device to migrate it`,
    });
  }
  for (const b of spec.binds) {
    if (!underShared(b.source, sharedStorage)) {
      out.push({
        reason: 'host_bind_mount',
        message: `bind mount ${b.source} -> ${b.destination} is host-local: move it to shared storage (${sharedStorage.join(', ') || 'none configured'}), add its path to [compute] shared_storage_paths if it is shared, or use a named volume`,
      });
    }
  }
  // The summary above gives the familiar reasons; the create body and volume options are what a
  // target creates from, so they are judged field by field against the allow-list too.
  out.push(...specRefusals(spec, sharedStorage));
  return out;
}

/** What the target already has that the container would clash with. */
export interface TargetState {
  names: string[]; // container names on the target (without "/")
  usedHostPorts: { host_ip: string; host_port: string; proto: string }[];
  /** IPs in use on each network on the target. */
  networkIps: Record<string, string[]>;
  networks: string[];
  volumes: string[];
  imagePresent: boolean;
}

function ipClash(a: string, b: string): boolean {
  const any = (x: string) => x === '' || x === '0.0.0.0' || x === '::';
  return any(a) || any(b) || a === b;
}

/** Target side: host facts vs the source, and the container's needs vs what is there. */
export function decideDestination(args: {
  dest: HostFacts;
  source: HostFacts | null;
  sourceHost: string;
  spec: ContainerSpec | null;
  state: TargetState | null;
  freeBytesNeeded?: number;
  /** The target's own [compute] shared_storage_paths (none: every host bind mount is refused). */
  sharedStorage?: string[];
}): Refusal[] {
  const { dest, source, spec, state } = args;
  const out: Refusal[] = [];
  if (args.sourceHost === dest.host) {
    out.push({ reason: 'same_host', message: `source and target are both ${dest.host}: choose another target host` });
  }
  out.push(...hostRefusals(dest, 'target'));
  if (source && source.architecture !== dest.architecture) {
    out.push({
      reason: 'architecture_mismatch',
      message: `CPU architecture differs (source ${source.architecture}, target ${dest.host} ${dest.architecture}): choose a target with ${source.architecture}`,
    });
  }
  if (args.freeBytesNeeded && dest.free_disk_bytes !== null && dest.free_disk_bytes < args.freeBytesNeeded) {
    out.push({
      reason: 'disk_full',
      message: `target ${dest.host} has ${dest.free_disk_bytes} bytes free, about ${args.freeBytesNeeded} are needed: free space there or choose another host`,
    });
  }
  // The target never trusts the source's checks: the same container rules, with its own shared storage.
  if (spec) out.push(...containerRefusals(spec, args.sharedStorage ?? []));
  if (!spec || !state) return out;
  if (state.names.includes(spec.name)) {
    out.push({
      reason: 'name_taken',
      message: `a container named ${spec.name} already exists on ${dest.host}: rename or remove it there`,
    });
  }
  for (const p of spec.ports) {
    if (!p.host_port) continue;
    const proto = p.container_port.split('/')[1] ?? 'tcp';
    const clash = state.usedHostPorts.find((u) => u.host_port === p.host_port && u.proto === proto && ipClash(u.host_ip, p.host_ip));
    if (clash) {
      out.push({
        reason: 'port_in_use',
        message: `host port ${p.host_port}/${proto} is already published on ${dest.host}: free it there or republish the container on another port`,
      });
    }
  }
  for (const n of spec.networks) {
    if (n.name === 'bridge' || n.name === 'none' || n.name === 'host') continue;
    if (!state.networks.includes(n.name)) {
      out.push({ reason: 'network_missing', message: `network ${n.name} does not exist on ${dest.host}: create it there (same subnet) first` });
    } else if (n.shared && n.ip && (state.networkIps[n.name] ?? []).includes(n.ip)) {
      out.push({ reason: 'ip_in_use', message: `address ${n.ip} on ${n.name} is already used by a container on ${dest.host}: free it there` });
    }
  }
  for (const v of spec.volumes) {
    if (state.volumes.includes(v.name)) {
      out.push({
        reason: 'volume_exists',
        message: `a volume named ${v.name} already exists on ${dest.host}: remove or rename it there (its data would be overwritten)`,
      });
    }
  }
  return out;
}
