/**
 * The engine driver: what any container engine must offer for Ferry to migrate a running
 * container. Everything crossing this interface is plain JSON-serialisable data, so that the
 * step results can travel over RPC unchanged. The Docker + CRIU implementation is
 * src/compute/docker/driver.ts.
 */
import type { Readable } from 'node:stream';
import type { ContainerSummary, HostModes, ModeSupport } from '../objects/host.js';
import type { PageTunnelSecurity } from './pagetunnel.js';

export type { HostModes, ModeSupport };

export interface LazyCheckpointRequest {
  pageServerPort: number;
  bindAddress?: string;
  tunnel: PageTunnelSecurity;
}

/** Largest CPU features image a source may send (a real CRIU cpuinfo.img is ~110 bytes). */
export const MAX_CPUINFO_IMAGE_BYTES = 4096;

/** What a host can do, as the pre-checks and the heartbeat need it. */
export interface HostFacts {
  host: string;
  architecture: string; // the engine's (x86_64, aarch64, ...)
  kernel: string;
  engine: string; // "docker"
  engine_version: string;
  api_version: string;
  experimental: boolean;
  criu_version: string | null;
  criu_ok: boolean;
  /** Why CRIU is not usable (missing, too old, `criu check` output), null when it is. */
  criu_error: string | null;
  fast_checkpoint: boolean;
  /** host:port of this host's migration data channel. */
  migration_address: string;
  free_disk_bytes: number | null;
  /** The ways of moving memory beyond stop-and-copy this host offers, and why not (absent: none). */
  modes?: HostModes;
  /**
   * The source's CPU features (CRIU's cpuinfo.img, base64), only in check_can_migrate_source's
   * answer: the target checks them against its own CPU. Absent or null: not known (not x86, an
   * older agent); the target then skips that check.
   */
  cpuinfo?: string | null;
}

export interface NetworkAttachment {
  name: string;
  /** true for the shared tenant networks (fabric): IP and MAC are kept, TCP connections survive. */
  shared: boolean;
  ip: string | null;
  mac: string | null;
  aliases: string[];
}

export interface VolumeSpec {
  name: string;
  destination: string;
  driver: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  read_only: boolean;
}

export interface BindSpec {
  source: string;
  destination: string;
  read_only: boolean;
}

export interface PortSpec {
  container_port: string; // "8080/tcp"
  host_ip: string;
  host_port: string; // "" = engine picks one
}

/**
 * Everything needed to recreate the container elsewhere: a snapshot of its configuration
 * taken on the source (pre-check time), engine-neutral metadata plus the engine's own
 * create body in `create`.
 */
export interface ContainerSpec {
  id: string;
  name: string;
  image: { id: string; ref: string | null };
  running: boolean;
  tty: boolean;
  privileged: boolean;
  auto_remove: boolean;
  network_mode: string;
  networks: NetworkAttachment[];
  volumes: VolumeSpec[];
  binds: BindSpec[];
  ports: PortSpec[];
  devices: string[];
  restart_policy: string;
  memory_bytes_estimate: number | null;
  /** The engine's create request (for Docker: the body of POST /containers/create, without the name). */
  create: Record<string, unknown>;
}

export interface Refusal {
  /** Stable machine-readable reason, e.g. "criu_too_old", "tty_attached". */
  reason: string;
  /** What is wrong and what to change. */
  message: string;
}

export interface CheckpointResult {
  name: string;
  dir: string; // where the checkpoint images are on this host
  bytes: number;
  checkpoint_ms: number;
  fast: boolean;
}

export interface RestoreResult {
  container_id: string;
  pid: number;
  restore_ms: number;
}

export interface ImageTransferResult {
  bytes: number;
  ms: number;
}

/** A directory tree to move (checkpoint images, writable-layer diff, volume data). */
export interface PartSource {
  part: string; // "checkpoint", "rootfs", "volume/<name>"
  dir: string;
  /** The rootfs diff carries overlay whiteouts (char 0:0) and opaque-dir xattrs. */
  kind: 'checkpoint' | 'rootfs' | 'volume';
}

/** Memory on a host: what its containers use and what it has (null when the engine cannot tell). */
export interface MemoryUse {
  used_bytes: number | null;
  total_bytes: number | null;
}

/**
 * Whether a host can move memory after the restore (post-copy), and why not. `pre_copy` only
 * reports whether the kernel could track dirty memory: no driver can pre-dump, so pre-copy is
 * never offered (docs/architecture.md).
 */
export interface PostCopySupport {
  ok: boolean;
  /** Why post-copy is impossible here (null when ok). */
  reason: string | null;
  pre_copy: { ok: boolean; reason: string | null };
}

/** A lazy checkpoint: the images without memory pages, and the page server that holds them. */
export interface LazyCheckpointResult extends CheckpointResult {
  /** `carrier_pid`: the process holding the connection to CRIU's page server (pagecarrier). */
  page_server: { port: number; pid: number | null; carrier_pid?: number | null };
}

export interface PageServerStatus {
  name: string;
  /** serving: waiting for / answering the target; done: every page fetched, the source exited; peer-lost: the target went away mid-stream, the source is frozen and whole. */
  state: 'serving' | 'done' | 'failed' | 'peer-lost' | 'unknown';
  port: number | null;
  pid: number | null;
  error: string | null;
}

export interface LazyRestoreResult extends RestoreResult {
  /** Starting the lazy-pages daemon until its socket was there. */
  daemon_ms: number;
  /** The lazy-pages daemon's PID (the faults and the tests end it by PID). */
  daemon_pid?: number | null;
}

export interface PostCopyStatus {
  name: string;
  /** fetching: the container runs, pages still arriving; complete: all arrived; failed: the container was stopped. */
  state: 'fetching' | 'complete' | 'failed' | 'unknown';
  error: string | null;
  completed_at: number | null;
}

/** The engine operations migration is made of. Source-side and target-side. */
export interface EngineDriver {
  readonly host: string;

  hostFacts(): Promise<HostFacts>;
  /** This host's CPU features as CRIU records them (base64 cpuinfo.img), null when CRIU cannot tell; optional. */
  cpuInfo?(): Promise<string | null>;
  /** Every container the engine has, running or not (the heartbeat's inventory). */
  listContainers(): Promise<ContainerSummary[]>;
  /** Memory its running containers use and the host's total, for the scheduler (optional: without it memory is left out). */
  memoryUse?(): Promise<MemoryUse>;
  /** Snapshot of a container's configuration; ContainerNotFound if there is none. */
  describeContainer(idOrName: string): Promise<ContainerSpec>;
  /** Refusals on the source side (container and host); empty when migration may go on. */
  sourceRefusals(spec: ContainerSpec, dest: HostFacts | null, destHost: string): Promise<Refusal[]>;
  /** Refusals on the target side (host facts vs source, name/port/IP/volume clashes). */
  destinationRefusals(source: HostFacts | null, sourceHost: string, spec: ContainerSpec | null, own?: OwnedResources): Promise<Refusal[]>;

  /**
   * At the agent's start: end what an earlier run of the agent left running that no step will
   * come back for (a lazy restore still waiting for pages); returns what was ended.
   */
  endLeftovers(): Promise<string[]>;

  hasImage(imageId: string): Promise<boolean>;
  /** `docker save` of the image (by its tag when the tag names that ID, so the tag travels too). */
  exportImage(image: ContainerSpec['image']): Promise<Readable>;
  /** `docker load`; returns bytes read. Verifies the ID is there afterwards. */
  importImage(image: ContainerSpec['image'], stream: Readable): Promise<ImageTransferResult>;
  removeImage(imageId: string): Promise<boolean>;

  /** Create the container shell (not started) with the source's config, marked with the migration; returns its ID. */
  createShell(spec: ContainerSpec, migrationId: string): Promise<string>;
  /** IDs of the shells a migration created here (found by their mark, even when the agent died before noting the ID). */
  shellsOf(migrationId: string): Promise<string[]>;
  createVolume(v: VolumeSpec): Promise<void>;
  volumeExists(name: string): Promise<boolean>;
  removeVolume(name: string): Promise<boolean>;

  /** Where received trees are staged: on the same mount as the engine's data, so placing them is a rename. */
  stagingRoot(): Promise<string>;
  /** Stop the engine from restarting the container by itself (while it is frozen it must not run twice). */
  holdRestarts(spec: ContainerSpec): Promise<void>;
  /** Give the container back the restart behaviour the spec recorded (after a rollback). */
  releaseRestarts(containerId: string, spec: ContainerSpec): Promise<void>;
  /** The checkpoint's name for a migration: chosen by each host from the migration ID, never taken from a peer. */
  checkpointName(migrationId: string): string;
  /** Whether the container's TCP connections survive a move between hosts (all its networks are shared ones). */
  connectionsPreserved(spec: ContainerSpec): boolean;

  /** Freeze and dump the running container; it stops. */
  checkpoint(containerId: string, name: string): Promise<CheckpointResult>;
  /** The directories whose content moves: checkpoint images, writable-layer diff, volumes. */
  partsToMove(containerId: string, checkpoint: CheckpointResult, spec: ContainerSpec): Promise<PartSource[]>;

  /** Place received trees into the shell: checkpoint, rootfs diff, volume data. */
  placeCheckpoint(containerId: string, name: string, stagedDir: string): Promise<void>;
  applyRootfs(containerId: string, stagedDir: string): Promise<void>;
  applyVolume(name: string, stagedDir: string): Promise<void>;

  /** Start from the checkpoint; RestoreFailed when the engine refuses. */
  restore(containerId: string, checkpointName: string): Promise<RestoreResult>;
  /** Gratuitous ARP from the container's namespace for each shared-network address. */
  announce(containerId: string, spec: ContainerSpec): Promise<boolean>;
  /** Running, and still running a moment later. */
  verifyRunning(containerId: string, settleMs?: number): Promise<{ running: boolean; pid: number; status: string }>;
  /** Plain start (last resort when no checkpoint is usable). */
  start(containerId: string): Promise<void>;
  containerState(containerId: string): Promise<{ exists: boolean; running: boolean; status: string; name: string | null }>;
  checkpointExists(containerId: string, name: string): Promise<boolean>;
  removeContainer(containerId: string): Promise<boolean>;
  /** IDs of the containers (other than `except`) that use a volume. */
  volumeUsers(name: string, except?: string): Promise<string[]>;

  /** One container's memory in use (a post-copy target's grows as its pages arrive); optional. */
  containerMemory?(containerId: string): Promise<number | null>;

  /** Post-copy (lazy pages); absent: the engine cannot do it. */
  readonly lazyPages?: LazyPagesCapability;
}

/** Target side of a lazy restore: where the source's page server is, and how long to wait for it. */
export interface LazyRestoreRequest {
  sourceAddress: string;
  port: number;
  /** The tunnel's certificates and token; `peerHost` is the source host its certificate must name. */
  tunnel: PageTunnelSecurity;
  /** Upper bound for the whole post-copy after the restore; the daemon is ended after it. */
  completionTimeoutMs?: number;
  /** Upper bound for `docker start --checkpoint`; at it the daemon and CRIU's restore are ended. */
  restoreTimeoutMs?: number;
  /** After the restore: how long no page may arrive before the daemon is ended (a stopped daemon, a stuck peer). */
  stallTimeoutMs?: number;
}

/**
 * An engine's lazy pages (post-copy): the source freezes the container into images without its
 * memory pages and serves them; the target starts the container and fetches them as touched.
 * Everything here is keyed by the checkpoint's name.
 */
export interface LazyPagesCapability {
  /** Whether this host can do post-copy, and why not (and, for the report only, pre-copy). */
  postCopySupport(): Promise<PostCopySupport>;
  /** Source: freeze and dump all but memory; resolves when the images are written and the page server waits. */
  checkpointLazy(containerId: string, name: string, opts: LazyCheckpointRequest): Promise<LazyCheckpointResult>;
  pageServerStatus(name: string): PageServerStatus;
  /** Source: resolves when every page was fetched and the source exited; PostCopyFailed otherwise. */
  waitPageServer(name: string): Promise<PageServerStatus>;
  abortPageServer(name: string): Promise<void>;
  /** Source: end the page server and resume the frozen container (only while no target has run it). */
  rollbackLazyCheckpoint(containerId: string, name: string): Promise<void>;
  /** Target: restore from the placed lazy checkpoint, fetching pages from the source; resolves when the process runs. */
  restoreLazy(containerId: string, name: string, opts: LazyRestoreRequest): Promise<LazyRestoreResult>;
  postCopyStatus(name: string): PostCopyStatus;
  /** Target: resolves when every page arrived; PostCopyFailed (container stopped) when it cannot finish. */
  waitPostCopy(name: string): Promise<PostCopyStatus>;
  abortPostCopy(name: string): Promise<void>;
  /** At the agent's start: end the lazy restores an earlier run left (they wait for pages that never come). */
  endLeftovers(): Promise<string[]>;
}

/** What a target created for a migration (so that checks and rollback recognise their own). */
export interface OwnedResources {
  container_id?: string | null;
  volumes?: string[];
}
