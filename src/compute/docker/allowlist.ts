/**
 * The allow-list of what Ferry knows how to move: the Docker create body and the volume options
 * a target builds, field by field, from a spec a source sent. Nothing of the sent objects is
 * passed through: every value in the result was checked and copied here, and every field not
 * named below (at any depth) is refused by name. The same rules run in the source's pre-check,
 * the target's pre-check and again when the target creates the container and its volumes.
 *
 * What is refused is what would reach beyond the container on a target: privileges, host
 * namespaces, capabilities past Docker's defaults, relaxed confinement, devices, host cgroups and
 * sysctls, log and volume drivers that reach other hosts, and host paths outside shared storage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ContainerSpecRefused } from '../../common/errors.js';
import type { ContainerSpec, Refusal, VolumeSpec } from '../driver.js';

/** One offending field: its path in the spec (e.g. `create.HostConfig.CapAdd[0]`) and what to change. */
export interface SpecProblem {
  field: string;
  problem: string;
}

/** The body of POST /volumes/create the target sends, built from a checked VolumeSpec. */
export interface VolumeCreateBody {
  Name: string;
  Driver: 'local';
  DriverOpts: Record<string, string>;
  Labels: Record<string, string>;
}

/** Docker's default capabilities (moby oci/caps/defaults.go): adding one of these grants nothing new. */
export const DEFAULT_CAPABILITIES = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
]);

const ULIMIT_NAMES = new Set([
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
]);
const LOG_DRIVERS = new Set(['json-file', 'local', 'none']);
const LOG_OPTIONS = new Set(['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag']);
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
const PORT_KEY = /^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/;
const HOST_PORT = /^(\d{1,5}(-\d{1,5})?)?$/;
const IP = /^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;
const MAC = /^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/;

const OUT = 'the target builds what it creates from the fields Ferry knows how to move';

type Rule = (value: unknown, field: string, c: Check) => unknown;

/** Collects problems while rules rebuild the value; a refused value comes back undefined. */
class Check {
  readonly problems: SpecProblem[] = [];
  constructor(readonly shared: string[]) {}
  refuse(field: string, problem: string): undefined {
    this.problems.push({ field, problem });
    return undefined;
  }
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- rule builders ----

function str(opts: { pattern?: RegExp; max?: number; hint?: string } = {}): Rule {
  return (v, field, c) => {
    if (typeof v !== 'string') return c.refuse(field, `must be a string, not ${show(v)}`);
    if (v.length > (opts.max ?? 4096) || v.includes('\0')) return c.refuse(field, `is too long or holds a NUL byte`);
    if (opts.pattern && !opts.pattern.test(v)) return c.refuse(field, `${show(v)} is not allowed${opts.hint ? `: ${opts.hint}` : ''}`);
    return v;
  };
}

function oneOf(values: readonly string[], hint: string): Rule {
  return (v, field, c) => (typeof v === 'string' && values.includes(v) ? v : c.refuse(field, `is ${show(v)}: ${hint}`));
}

function bool(only?: boolean, hint?: string): Rule {
  return (v, field, c) => {
    if (typeof v !== 'boolean') return c.refuse(field, `must be true or false, not ${show(v)}`);
    if (only !== undefined && v !== only) return c.refuse(field, `is ${String(v)}: ${hint ?? `only ${String(only)} is allowed`}`);
    return v;
  };
}

function int(min: number, max = Number.MAX_SAFE_INTEGER, hint?: string): Rule {
  return (v, field, c) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) return c.refuse(field, `must be an integer, not ${show(v)}`);
    if (v < min || v > max) return c.refuse(field, `is ${v}: ${hint ?? `allowed from ${min} to ${max}`}`);
    return v;
  };
}

/** Only Docker's neutral value (absent, empty, false, zero) is accepted; anything else is refused with `hint`. */
function neutral(hint: string): Rule {
  return (v, field, c) => {
    const empty = v === '' || v === false || v === 0 || (Array.isArray(v) && v.length === 0) || (isRecord(v) && Object.keys(v).length === 0);
    if (!empty) return c.refuse(field, `is ${show(v)}: ${hint}`);
    return Array.isArray(v) ? [] : isRecord(v) ? {} : v;
  };
}

function list(item: Rule, max = 1024): Rule {
  return (v, field, c) => {
    if (!Array.isArray(v)) return c.refuse(field, `must be a list, not ${show(v)}`);
    if (v.length > max) return c.refuse(field, `has ${v.length} entries (at most ${max})`);
    const out: unknown[] = [];
    v.forEach((x, i) => {
      const got = item(x, `${field}[${i}]`, c);
      if (got !== undefined) out.push(got);
    });
    return out;
  };
}

function map(key: Rule, value: Rule, max = 1024): Rule {
  return (v, field, c) => {
    if (!isRecord(v)) return c.refuse(field, `must be an object, not ${show(v)}`);
    const entries = Object.entries(v);
    if (entries.length > max) return c.refuse(field, `has ${entries.length} entries (at most ${max})`);
    const out: Record<string, unknown> = {};
    for (const [k, x] of entries) {
      const f = `${field}[${JSON.stringify(k)}]`;
      if (k === '__proto__') {
        c.refuse(f, 'is not a key Ferry accepts');
        continue;
      }
      if (key(k, f, c) === undefined) continue;
      const got = value(x, f, c);
      if (got !== undefined) out[k] = got;
    }
    return out;
  };
}

/** An object with only the named fields; null counts as absent (Docker's default), any other field is refused by name. */
function obj(shape: Record<string, Rule>): Rule {
  return (v, field, c) => {
    if (!isRecord(v)) return c.refuse(field, `must be an object, not ${show(v)}`);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const f = field ? `${field}.${k}` : k;
      const rule = Object.prototype.hasOwnProperty.call(shape, k) ? shape[k] : undefined;
      if (!rule) {
        c.refuse(f, `is a field Ferry does not know how to move (${OUT}): recreate the container without it`);
        continue;
      }
      if (x === null || x === undefined) continue;
      const got = rule(x, f, c);
      if (got !== undefined) out[k] = got;
    }
    return out;
  };
}

const emptyObject: Rule = (v, field, c) => (isRecord(v) && Object.keys(v).length === 0 ? {} : c.refuse(field, `must be {}, not ${show(v)}`));

// ---- paths ----

/** A path inside the container: absolute, no `..`. */
const containerPath: Rule = (v, field, c) => {
  if (typeof v !== 'string' || !v.startsWith('/') || v.length > 4096 || v.includes('\0')) return c.refuse(field, `must be an absolute path, not ${show(v)}`);
  if (v.split('/').includes('..')) return c.refuse(field, `${show(v)} holds "..": give the path without it`);
  return v;
};

function sharedHint(shared: string[]): string {
  return `move it to shared storage (${shared.join(', ') || 'none configured'}), add its path to [compute] shared_storage_paths if it is shared, or use a named volume`;
}

/** Is `p` equal to or under one of the shared storage roots? (lexical; see realPathProblems for links) */
export function underShared(p: string, shared: string[]): boolean {
  const n = path.posix.normalize(p);
  return shared.some((s) => {
    const r = path.posix.normalize(s).replace(/\/+$/, '');
    return r !== '' && (n === r || n.startsWith(r + '/'));
  });
}

/** A host path: absolute, no `..` at all, under the shared storage roots. */
function hostPath(v: unknown, field: string, c: Check): string | undefined {
  if (typeof v !== 'string' || !v.startsWith('/') || v.length > 4096 || v.includes('\0'))
    return c.refuse(field, `must be an absolute host path, not ${show(v)}`);
  if (v.split('/').includes('..')) return c.refuse(field, `host path ${show(v)} holds "..": give the path without it`);
  if (!underShared(v, c.shared)) return c.refuse(field, `host path ${v} is not on shared storage: ${sharedHint(c.shared)}`);
  return v;
}

const BIND_OPTIONS = new Set(['ro', 'rw', 'nocopy', 'private', 'rprivate', 'slave', 'rslave']);

/** "source:destination[:options]" where source is a named volume or a host path on shared storage. */
const bindString: Rule = (v, field, c) => {
  if (typeof v !== 'string') return c.refuse(field, `must be a string, not ${show(v)}`);
  const parts = v.split(':');
  if (parts.length < 2 || parts.length > 3) return c.refuse(field, `${show(v)} is not "source:destination[:options]"`);
  const [source, destination, options = ''] = parts;
  const before = c.problems.length;
  if (source.startsWith('/')) hostPath(source, field, c);
  else if (!NAME.test(source)) c.refuse(field, `volume name ${show(source)} is not a plain name`);
  containerPath(destination, field, c);
  for (const o of options ? options.split(',') : []) {
    if (!BIND_OPTIONS.has(o))
      c.refuse(field, `bind option ${show(o)} is not allowed: use only ${[...BIND_OPTIONS].join(', ')} (no shared propagation, no relabelling)`);
  }
  return c.problems.length === before ? v : undefined;
};

const mountRule: Rule = (v, field, c) => {
  if (!isRecord(v)) return c.refuse(field, `must be an object, not ${show(v)}`);
  const common = {
    Type: str(),
    Target: containerPath,
    ReadOnly: bool(),
    Consistency: oneOf(['', 'default', 'consistent', 'cached', 'delegated'], 'use the default'),
  };
  switch (v.Type) {
    case 'volume':
      return obj({
        ...common,
        Source: str({ pattern: NAME, hint: 'a volume mount names its volume' }),
        VolumeOptions: obj({
          NoCopy: bool(),
          Labels: map(str({ max: 255 }), str()),
          DriverConfig: neutral('a volume mount may not choose a volume driver: use a named local volume'),
        }),
      })(v, field, c);
    case 'bind':
      return obj({
        ...common,
        Source: (s, f, cc) => hostPath(s, f, cc),
        BindOptions: obj({
          Propagation: oneOf(['', 'private', 'rprivate', 'slave', 'rslave'], 'shared propagation reaches the host: use private'),
          NonRecursive: bool(),
        }),
      })(v, field, c);
    case 'tmpfs':
      return obj({ ...common, Source: neutral('a tmpfs mount has no source'), TmpfsOptions: obj({ SizeBytes: int(0), Mode: int(0, 0o7777) }) })(v, field, c);
    default:
      return c.refuse(`${field}.Type`, `is ${show(v.Type)}: only volume, bind (on shared storage) and tmpfs mounts move`);
  }
};

const TMPFS_OPTION = /^(size=\d+[kmgKMG%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmgKMG]?|noexec|exec|nosuid|suid|nodev|ro|rw)$/;
const tmpfsOptions: Rule = (v, field, c) => {
  if (typeof v !== 'string') return c.refuse(field, `must be a string, not ${show(v)}`);
  const bad = v === '' ? [] : v.split(',').filter((o) => !TMPFS_OPTION.test(o));
  return bad.length === 0
    ? v
    : c.refuse(field, `tmpfs options ${bad.join(',')} are not allowed: use size, mode, uid, gid, nr_inodes, noexec, nosuid, nodev, ro`);
};

// ---- host-reaching fields ----

const networkName: Rule = (v, field, c) =>
  v === 'host'
    ? c.refuse(field, `is the host's network: its sockets belong to another namespace; use a bridge or the shared tenant network`)
    : str({ pattern: NAME, max: 255 })(v, field, c);

const networkMode: Rule = (v, field, c) => {
  if (typeof v !== 'string') return c.refuse(field, `must be a string, not ${show(v)}`);
  if (v === 'host' || v.startsWith('container:'))
    return c.refuse(field, `is "${v}": its sockets belong to another namespace; use a bridge or the shared tenant network`);
  if (!NAME.test(v)) return c.refuse(field, `${show(v)} is not a network name`);
  return v;
};

function capName(v: string): string {
  return v.toUpperCase().replace(/^CAP_/, '');
}

const capAdd: Rule = (v, field, c) => {
  if (typeof v !== 'string') return c.refuse(field, `must be a string, not ${show(v)}`);
  if (!DEFAULT_CAPABILITIES.has(capName(v))) {
    return c.refuse(
      field,
      `adds capability ${show(v)} beyond Docker's defaults: recreate the container without --cap-add ${v} (a target grants no more than Docker's default set)`,
    );
  }
  return v;
};

const capDrop = str({ pattern: /^(CAP_)?[A-Za-z_]{2,40}$|^ALL$/i });

const securityOpt: Rule = (v, field, c) => {
  if (typeof v !== 'string') return c.refuse(field, `must be a string, not ${show(v)}`);
  if (/^no-new-privileges([:=]true)?$/.test(v)) return v;
  return c.refuse(
    field,
    `${show(v)}: only no-new-privileges is allowed; remove --security-opt ${v} (a target keeps its default seccomp, AppArmor and SELinux confinement)`,
  );
};

/** Sysctls Docker namespaces per container; the rest are the host's. */
const NAMESPACED_SYSCTL = /^(net\.[A-Za-z0-9_.-]+|kernel\.(shmmax|shmall|shmmni|shm_rmid_forced|msgmax|msgmnb|msgmni|sem)|fs\.mqueue\.[A-Za-z0-9_.-]+)$/;
const sysctlKey: Rule = (v, field, c) =>
  typeof v === 'string' && NAMESPACED_SYSCTL.test(v)
    ? v
    : c.refuse(field, `sysctl ${show(v)} is the host's, not the container's: remove --sysctl ${String(v)}`);

const logConfig: Rule = (v, field, c) => {
  const got = obj({ Type: str(), Config: map(str(), str()) })(v, field, c) as Record<string, unknown> | undefined;
  if (!got) return undefined;
  const type = (got.Type as string | undefined) ?? '';
  if (type !== '' && !LOG_DRIVERS.has(type))
    return c.refuse(`${field}.Type`, `log driver ${show(type)} sends logs off the container's host: use json-file or local (remove --log-driver)`);
  for (const k of Object.keys((got.Config as Record<string, string> | undefined) ?? {})) {
    if (!LOG_OPTIONS.has(k)) return c.refuse(`${field}.Config.${k}`, `log option ${show(k)} is not allowed: use ${[...LOG_OPTIONS].join(', ')}`);
  }
  return got;
};

const restartPolicy = obj({
  Name: oneOf(['', 'no', 'always', 'unless-stopped', 'on-failure'], 'use no, always, unless-stopped or on-failure'),
  MaximumRetryCount: int(0),
});

const HOST_CONFIG = obj({
  Binds: list(bindString),
  Mounts: list(mountRule),
  Tmpfs: map(containerPath, tmpfsOptions),
  PortBindings: map(str({ pattern: PORT_KEY }), list(obj({ HostIp: str({ pattern: /^[0-9A-Fa-f:.]*$/ }), HostPort: str({ pattern: HOST_PORT }) }))),
  PublishAllPorts: bool(),
  RestartPolicy: restartPolicy,
  NetworkMode: networkMode,
  Memory: int(0),
  MemorySwap: int(-1),
  MemoryReservation: int(0),
  KernelMemory: int(0),
  MemorySwappiness: int(-1, 100),
  NanoCpus: int(0),
  CpuShares: int(0),
  CpuPeriod: int(0),
  CpuQuota: int(-1),
  CpuRealtimePeriod: int(0, 0, "real-time CPU time is the host scheduler's: remove --cpu-rt-period"),
  CpuRealtimeRuntime: int(0, 0, "real-time CPU time is the host scheduler's: remove --cpu-rt-runtime"),
  CpusetCpus: str({ pattern: /^[0-9,-]*$/ }),
  CpusetMems: str({ pattern: /^[0-9,-]*$/ }),
  BlkioWeight: int(0, 1000),
  PidsLimit: int(-1),
  ShmSize: int(0),
  Ulimits: list(obj({ Name: oneOf([...ULIMIT_NAMES], 'not a ulimit name'), Soft: int(-1), Hard: int(-1) })),
  OomKillDisable: bool(false, 'a container the OOM killer may not kill can starve the host: remove --oom-kill-disable'),
  OomScoreAdj: int(0, 1000, "a negative score shields the container at the host's expense: remove --oom-score-adj or make it 0 or more"),
  Init: bool(),
  ReadonlyRootfs: bool(),
  CapAdd: list(capAdd),
  CapDrop: list(capDrop),
  SecurityOpt: list(securityOpt),
  Sysctls: map(sysctlKey, str({ max: 1024 })),
  Dns: list(str({ pattern: IP })),
  DnsOptions: list(str({ pattern: /^[A-Za-z0-9_.:-]+$/ })),
  DnsSearch: list(str({ pattern: /^[A-Za-z0-9_.-]+$/ })),
  ExtraHosts: list(str({ pattern: /^[A-Za-z0-9_.-]+[:=]([0-9A-Fa-f:.]+|host-gateway)$/ })),
  GroupAdd: list(str({ pattern: /^[A-Za-z0-9_.-]+$/ })),
  LogConfig: logConfig,
  IpcMode: oneOf(['', 'private', 'shareable', 'none'], "the host's or another container's IPC namespace does not move: remove --ipc"),
  UTSMode: oneOf([''], "the host's UTS namespace is not the container's: remove --uts"),
  PidMode: oneOf([''], "the host's or another container's PID namespace does not move: remove --pid"),
  UsernsMode: oneOf([''], "the host's user namespace does not move: remove --userns"),
  CgroupnsMode: oneOf(['', 'private'], "the host's cgroup namespace does not move: remove --cgroupns"),
  CgroupParent: oneOf([''], 'the target places containers in its own cgroup: remove --cgroup-parent'),
  Privileged: bool(false, 'its host devices and capabilities do not restore elsewhere; recreate it without --privileged (use --cap-add for what it needs)'),
  Devices: neutral('host devices do not move: remove --device'),
  DeviceRequests: neutral('host devices (GPUs) do not move: remove --gpus / --device'),
  DeviceCgroupRules: neutral('access to host devices does not move: remove --device-cgroup-rule'),
  VolumeDriver: oneOf(['', 'local'], 'only local volumes move: remove --volume-driver'),
  VolumesFrom: neutral("another container's volumes do not move with this one: mount the named volumes instead of --volumes-from"),
  AutoRemove: bool(false, 'the engine would delete it (and its checkpoint) when it is frozen; recreate it without --rm'),
  Runtime: oneOf(['', 'runc'], 'only runc restores checkpoints: remove --runtime'),
});

const ENDPOINT = obj({
  IPAMConfig: obj({ IPv4Address: str({ pattern: IP }), IPv6Address: str({ pattern: IP }) }),
  Aliases: list(str({ pattern: NAME })),
  MacAddress: str({ pattern: MAC }),
});

const CREATE_BODY = obj({
  Image: str({ max: 512 }), // replaced by the target with the image it checked
  Hostname: str({ pattern: /^[A-Za-z0-9_.-]{0,253}$/ }),
  Domainname: str({ pattern: /^[A-Za-z0-9_.-]{0,253}$/ }),
  User: str({ pattern: /^[A-Za-z0-9_.:-]{0,255}$/ }),
  ExposedPorts: map(str({ pattern: PORT_KEY }), emptyObject),
  Tty: bool(false, 'CRIU cannot carry a terminal across hosts; recreate it without -t'),
  OpenStdin: bool(),
  StdinOnce: bool(),
  Env: list(str({ max: 131072 }), 4096),
  Cmd: list(str({ max: 131072 })),
  Entrypoint: (v, f, c) => (typeof v === 'string' ? str({ max: 131072 })(v, f, c) : list(str({ max: 131072 }))(v, f, c)),
  WorkingDir: containerPath,
  Labels: map(str({ max: 1024 }), str({ max: 65536 })),
  StopSignal: str({ pattern: /^[A-Z0-9+-]{1,16}$/ }),
  StopTimeout: int(0),
  Healthcheck: obj({ Test: list(str({ max: 65536 })), Interval: int(0), Timeout: int(0), StartPeriod: int(0), StartInterval: int(0), Retries: int(0) }),
  MacAddress: str({ pattern: MAC }),
  HostConfig: HOST_CONFIG,
  NetworkingConfig: obj({ EndpointsConfig: map(networkName, ENDPOINT) }),
});

/**
 * The create body rebuilt from the allowed fields of `create` (the source's), and every problem
 * found on the way (field paths start with `create.`). The body is new objects all the way down.
 */
export function checkCreateBody(create: unknown, sharedStorage: string[]): { body: Record<string, unknown>; problems: SpecProblem[] } {
  const c = new Check(sharedStorage);
  const body = (CREATE_BODY(create, 'create', c) as Record<string, unknown> | undefined) ?? {};
  return { body, problems: c.problems };
}

const VOLUME_SPEC = obj({
  name: str({ pattern: NAME, hint: 'a volume name is a plain name' }),
  destination: containerPath,
  driver: oneOf(['', 'local'], 'only local volumes move: other volume drivers reach storage the target does not own'),
  labels: map(str({ max: 1024 }), str({ max: 65536 })),
  options: obj({ type: str({ max: 64 }), device: str({ max: 4096 }), o: str({ max: 4096 }) }),
  read_only: bool(),
});

const VOLUME_BIND_OPTIONS = new Set(['bind', 'rbind', 'ro', 'rw']);
const TMPFS_VOLUME_OPTION = /^(size=\d+[kmgKMG%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmgKMG]?|noexec|nosuid|nodev)$/;

/** The volume's options: none, a tmpfs, or a bind of a directory on shared storage (`type=none,o=bind,device=...`). */
function volumeOptions(opts: Record<string, string>, field: string, c: Check): Record<string, string> | undefined {
  const { type, device, o } = opts;
  if (type === undefined && device === undefined && o === undefined) return {};
  if (type === 'tmpfs') {
    const bad = (o ?? '').split(',').filter((x) => x !== '' && !TMPFS_VOLUME_OPTION.test(x));
    if (device !== undefined && device !== 'tmpfs') return c.refuse(`${field}.device`, `a tmpfs volume's device is "tmpfs", not ${show(device)}`);
    if (bad.length > 0)
      return c.refuse(`${field}.o`, `tmpfs options ${bad.join(',')} are not allowed: use size, mode, uid, gid, nr_inodes, noexec, nosuid, nodev`);
    return { type: 'tmpfs', device: 'tmpfs', ...(o ? { o } : {}) };
  }
  if (type === 'none') {
    const flags = (o ?? '').split(',');
    if (!flags.includes('bind') && !flags.includes('rbind')) return c.refuse(`${field}.o`, `a volume of type none must be a bind (o=bind), not ${show(o)}`);
    const bad = flags.filter((x) => !VOLUME_BIND_OPTIONS.has(x));
    if (bad.length > 0) return c.refuse(`${field}.o`, `bind volume options ${bad.join(',')} are not allowed: use bind, ro, rw`);
    const dev = hostPath(device, `${field}.device`, c);
    return dev === undefined ? undefined : { type: 'none', o: o as string, device: dev };
  }
  return c.refuse(`${field}.type`, `volume type ${show(type)} mounts storage from elsewhere: only plain local volumes, tmpfs and binds of shared storage move`);
}

/** The volume create body rebuilt from the allowed fields of one VolumeSpec, and the problems found. */
export function checkVolume(v: unknown, field: string, sharedStorage: string[]): { body: VolumeCreateBody | null; problems: SpecProblem[] } {
  const c = new Check(sharedStorage);
  const got = VOLUME_SPEC(v, field, c) as Partial<VolumeSpec> | undefined;
  const options = got?.options ? volumeOptions(got.options, `${field}.options`, c) : {};
  if (c.problems.length > 0 || !got?.name || !options) return { body: null, problems: c.problems };
  return { body: { Name: got.name, Driver: 'local', DriverOpts: options, Labels: { ...(got.labels ?? {}) } }, problems: [] };
}

// A Docker image reference as the target may tag it: [registry[:port]/]path[:tag], no digest.
const REF_DOMAIN = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?';
const REF_PATH = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_REF = new RegExp(`^(?:${REF_DOMAIN}/)?${REF_PATH}(?:/${REF_PATH})*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`);
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

/** `ref` as the one name a target may tag (repository:tag, `:latest` added when it has no tag), or null (digest references, anything malformed). */
export function taggableRef(ref: string): string | null {
  const full = ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref : `${ref}:latest`;
  return full.length <= 255 && IMAGE_REF.test(full) ? full : null;
}

/**
 * The image a target may load and the one name it may tag: the ID Docker gives it, and the
 * spec's own reference when it is a well-formed `repo:tag` (no digest). The create body names
 * no other image (the target puts the checked one in it).
 */
export function imageProblems(spec: ContainerSpec): SpecProblem[] {
  const out: SpecProblem[] = [];
  const image = (spec as { image?: unknown }).image as { id?: unknown; ref?: unknown } | undefined;
  if (!isRecord(image) || typeof image.id !== 'string' || !IMAGE_ID.test(image.id)) {
    out.push({ field: 'image.id', problem: `${show(image?.id)} is not an image ID (sha256:<64 hex digits>)` });
  }
  const ref = image?.ref;
  if (ref !== null && ref !== undefined && (typeof ref !== 'string' || ref.length > 255 || !IMAGE_REF.test(ref))) {
    out.push({ field: 'image.ref', problem: `${show(ref)} is not an image name the target may tag (repository:tag, no digest)` });
  }
  const named = isRecord(spec.create) ? spec.create.Image : undefined;
  if (named !== undefined && named !== null && named !== '' && named !== image?.id && named !== ref) {
    out.push({ field: 'create.Image', problem: `${show(named)} is neither the spec's image ID nor its name: a target tags no other name` });
  }
  return out;
}

/** Every problem of a spec's image, create body, volumes and network attachments. */
export function specProblems(spec: ContainerSpec, sharedStorage: string[]): SpecProblem[] {
  const out = [...imageProblems(spec), ...checkCreateBody(spec.create, sharedStorage).problems];
  if (typeof spec.name !== 'string' || !NAME.test(spec.name)) out.push({ field: 'name', problem: `${show(spec.name)} is not a container name` });
  (Array.isArray(spec.volumes) ? spec.volumes : []).forEach((v, i) => out.push(...checkVolume(v, `volumes[${i}]`, sharedStorage).problems));
  (Array.isArray(spec.networks) ? spec.networks : []).forEach((n, i) => {
    const name = (n as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || !NAME.test(name) || name === 'host')
      out.push({ field: `networks[${i}].name`, problem: `${show(name)} cannot be joined: use a bridge or the shared tenant network` });
  });
  return out;
}

function describe(spec: ContainerSpec, p: SpecProblem): string {
  return `container ${String(spec.name)}: ${p.field} ${p.problem}`;
}

/** The pre-checks' view: one `container_spec` refusal per offending field. */
export function specRefusals(spec: ContainerSpec, sharedStorage: string[]): Refusal[] {
  return specProblems(spec, sharedStorage).map((p) => ({ reason: 'container_spec', message: describe(spec, p) }));
}

function refused(spec: ContainerSpec, problems: SpecProblem[]): InstanceType<typeof ContainerSpecRefused> {
  return new ContainerSpecRefused(`container spec refused: ${problems.map((p) => describe(spec, p)).join('; ')}`, {
    container: spec.name,
    fields: problems.map((p) => p.field),
  });
}

/** The create body a target sends, built from the allow-list; ContainerSpecRefused naming every offending field. */
export function allowedCreateBody(spec: ContainerSpec, sharedStorage: string[]): Record<string, unknown> {
  const problems = specProblems(spec, sharedStorage);
  if (problems.length > 0) throw refused(spec, problems);
  return checkCreateBody(spec.create, sharedStorage).body;
}

/** The volume create body a target sends; ContainerSpecRefused naming every offending field. */
export async function allowedVolumeBody(v: VolumeSpec, sharedStorage: string[], realpath?: (p: string) => Promise<string>): Promise<VolumeCreateBody> {
  const field = `volume ${String(v.name)}`;
  const { body, problems } = checkVolume(v, field, sharedStorage);
  if (body?.DriverOpts.device?.startsWith('/'))
    problems.push(...(await realPathProblems([{ field: `${field}.options.device`, path: body.DriverOpts.device }], sharedStorage, realpath)));
  if (!body || problems.length > 0) {
    throw new ContainerSpecRefused(`volume spec refused: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, {
      volume: v.name,
      fields: problems.map((p) => p.field),
    });
  }
  return body;
}

/** The host paths a spec would mount (bind sources and bind-volume devices), with their fields. */
export function hostPathsOf(spec: ContainerSpec): { field: string; path: string }[] {
  const out: { field: string; path: string }[] = [];
  const hc = isRecord(spec.create) && isRecord(spec.create.HostConfig) ? spec.create.HostConfig : {};
  if (Array.isArray(hc.Binds)) {
    hc.Binds.forEach((b, i) => {
      if (typeof b === 'string' && b.startsWith('/')) out.push({ field: `create.HostConfig.Binds[${i}]`, path: b.split(':')[0] });
    });
  }
  if (Array.isArray(hc.Mounts)) {
    hc.Mounts.forEach((m, i) => {
      if (isRecord(m) && m.Type === 'bind' && typeof m.Source === 'string') out.push({ field: `create.HostConfig.Mounts[${i}].Source`, path: m.Source });
    });
  }
  (Array.isArray(spec.volumes) ? spec.volumes : []).forEach((v, i) => {
    const dev = isRecord(v) && isRecord(v.options) ? v.options.device : undefined;
    if (typeof dev === 'string' && dev.startsWith('/')) out.push({ field: `volumes[${i}].options.device`, path: dev });
  });
  return out;
}

/** The real path of `p`, following links in the part that exists (Docker creates a missing bind source). */
async function realPathOf(p: string, realpath: (p: string) => Promise<string>): Promise<string> {
  let existing = path.posix.normalize(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.posix.join(await realpath(existing), ...rest.reverse());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || existing === '/') throw e;
      // Missing, or a link to something missing: the latter would be followed when Docker creates it.
      const dangling = await fs.promises.lstat(existing).then(
        () => true,
        () => false,
      );
      if (dangling) throw new Error(`${existing} is a link to a path that does not exist`);
      rest.push(path.posix.basename(existing));
      existing = path.posix.dirname(existing);
    }
  }
}

/**
 * Host paths whose links lead out of shared storage, checked on the host that mounts them, with
 * the shared roots resolved too (a root may itself sit behind a link).
 */
export async function realPathProblems(
  paths: { field: string; path: string }[],
  sharedStorage: string[],
  realpath: (p: string) => Promise<string> = (p) => fs.promises.realpath(p),
): Promise<SpecProblem[]> {
  if (paths.length === 0) return [];
  const roots = await Promise.all(sharedStorage.map((s) => realPathOf(s, realpath).catch(() => path.posix.normalize(s))));
  const out: SpecProblem[] = [];
  for (const { field, path: p } of paths) {
    if (!underShared(p, sharedStorage)) continue; // refused already, by name, by the lexical rule every caller runs first
    let real: string;
    try {
      real = await realPathOf(p, realpath);
    } catch (e) {
      out.push({ field, problem: `host path ${p} cannot be resolved (${(e as Error).message}): ${sharedHint(sharedStorage)}` });
      continue;
    }
    if (!underShared(real, roots))
      out.push({ field, problem: `host path ${p} leads to ${real} through a link, outside shared storage: ${sharedHint(sharedStorage)}` });
  }
  return out;
}

/** realPathProblems as pre-check refusals. */
export async function realPathRefusals(spec: ContainerSpec, sharedStorage: string[]): Promise<Refusal[]> {
  return (await realPathProblems(hostPathsOf(spec), sharedStorage)).map((p) => ({ reason: 'container_spec', message: describe(spec, p) }));
}

/** Throws ContainerSpecRefused when a host path leads out of shared storage (at create time, on the target). */
export async function requireRealPaths(spec: ContainerSpec, sharedStorage: string[], realpath?: (p: string) => Promise<string>): Promise<void> {
  const problems = await realPathProblems(hostPathsOf(spec), sharedStorage, realpath);
  if (problems.length > 0) throw refused(spec, problems);
}
