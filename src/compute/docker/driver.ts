/** The Docker Engine (API 1.41, experimental) + CRIU implementation of the engine driver. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import { ContainerNotFound, EngineError, ImageNotFound, RestoreFailed, TransferFailed } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { PROJECT_LABEL, projectOf, type ContainerSummary } from '../../objects/host.js';
import type {
  CheckpointResult,
  ContainerSpec,
  EngineDriver,
  HostFacts,
  ImageTransferResult,
  MemoryUse,
  OwnedResources,
  PartSource,
  Refusal,
  RestoreResult,
  VolumeSpec,
} from '../driver.js';
import { withListenersQuiesced } from './quiesce.js';
import { canStartFromImages, checkpointDir, checkpointName, dockerCheckpoint, fastCheckpoint, startFromCheckpoint, startFromImages } from './checkpoint.js';
import { MIGRATION_LABEL, buildCreateBody, captureSpec, connectionsPreserved, endpointFor, secondaryNetworks, type DockerInspect } from './config.js';
import { criuStatus } from './criu.js';
import { engineMessage, engineStatus } from './engineerror.js';
import { DockerLazyPages } from './lazypages.js';
import { withRuncConfShared } from './runcconf.js';
import { gratuitousArp } from './network.js';
import { decideDestination, decideSource, type TargetState } from './prechecks.js';
import { allowedCreateBody, allowedVolumeBody, realPathRefusals, requireRealPaths, taggableRef } from './allowlist.js';
import { untaggedImage } from './imagetar.js';
import { checkCpuinfo, compareCpuinfo, cpuRefusals, decodeCpuinfoImage, dumpCpuinfo, type CpuComparison } from './cpuinfo.js';
import { emptyDir, mergeInto, replaceDir, treeBytes } from './tree.js';
import { canReadForeignLimits, foreignCredentialsRefusal, ownCapEff, processTree } from './rlimits.js';
import { sleep } from '../../common/sleep.js';

const log = getLogger('compute.docker');

export interface DockerDriverOptions {
  host: string; // this compute host's name
  dockerUrl: string; // unix:///path or tcp://host:port
  dockerRoot?: string; // empty = ask the engine
  workDir: string;
  criuBinary: string;
  criuMinVersion: string;
  sharedStoragePaths: string[];
  fabricNetworks: string[];
  fastCheckpoint: boolean;
  /**
   * Restore without the images' round trip through containerd's content store (startFromImages in
   * checkpoint.ts); default true. Holds runc.conf's lock exclusively during each restore.
   */
  fastRestore?: boolean;
  containerdAddress: string;
  /** Largest image archive a target loads ([compute] max_image_bytes); default 16 GiB. */
  maxImageBytes?: number;
  /** Largest manifest.json / index.json in such an archive ([compute] max_image_manifest_bytes); default 1 MiB. */
  maxImageManifestBytes?: number;
  /**
   * The engine's network namespace (a /run/netns/NAME path) when it is not this process's (the dev
   * cloud); post-copy's page server then listens there, behind a relay on this host's address.
   */
  engineNetns?: string;
}

export function dockerFromUrl(url: string): Docker {
  if (url.startsWith('unix://')) return new Docker({ socketPath: url.slice('unix://'.length) });
  const u = new URL(url.replace(/^tcp:/, 'http:'));
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
}

export class DockerDriver implements EngineDriver {
  readonly host: string;
  readonly docker: Docker;
  private rootDir: string | null;
  private readonly fabric: string[];
  private readonly shared: string[];
  /** Post-copy: the lazy-pages capability (lazypages.ts). */
  readonly lazyPages: DockerLazyPages;
  /**
   * Fast checkpoints whose exit Docker has not processed yet, by full container ID: every later
   * look at such a container waits for it (partsToMove, in the freeze, does not need to).
   */
  private readonly exits = new Map<string, Promise<void>>();
  /**
   * Writable layers of containers checkpointed here, read before the freeze: inspecting the
   * container right after a fast checkpoint waits for Docker's exit bookkeeping (it holds the
   * container while it cleans up).
   */
  private readonly upperDirs = new Map<string, string>();
  /** The init PID each spec describeContainer returned was captured with: the source's pre-check needs no second inspect. */
  private readonly initPids = new WeakMap<ContainerSpec, number>();
  /** This process's effective capabilities: fixed for its life, so read from /proc once. */
  private capEff: string | null = null;
  /** This CPU's cpuinfo.img (a minute: a microcode update can take features away, e.g. TSX). */
  private cpuCache: { at: number; image: Buffer | null } | null = null;

  constructor(readonly opts: DockerDriverOptions) {
    this.host = opts.host;
    this.docker = dockerFromUrl(opts.dockerUrl);
    this.rootDir = opts.dockerRoot || null;
    this.fabric = opts.fabricNetworks;
    this.shared = opts.sharedStoragePaths;
    this.lazyPages = new DockerLazyPages(this);
  }

  async dockerRoot(): Promise<string> {
    if (!this.rootDir) this.rootDir = ((await this.docker.info()) as { DockerRootDir: string }).DockerRootDir;
    return this.rootDir;
  }

  async hostFacts(): Promise<HostFacts> {
    let info: Record<string, unknown>;
    let version: Record<string, unknown>;
    try {
      [info, version] = await Promise.all([
        this.docker.info() as Promise<Record<string, unknown>>,
        this.docker.version() as Promise<unknown> as Promise<Record<string, unknown>>,
      ]);
    } catch (e) {
      throw new EngineError(`Docker engine of ${this.host} unreachable at ${this.opts.dockerUrl}: ${engineMessage(e)}`);
    }
    const criu = await criuStatus(this.opts.criuBinary, this.opts.criuMinVersion);
    const root = (info.DockerRootDir as string) || (await this.dockerRoot());
    let free: number | null = null;
    try {
      const s = fs.statfsSync(root);
      free = s.bavail * s.bsize;
    } catch {
      free = null;
    }
    return {
      host: this.host,
      architecture: String(info.Architecture ?? os.arch()),
      kernel: String(info.KernelVersion ?? os.release()),
      engine: 'docker',
      engine_version: String(version.Version ?? info.ServerVersion ?? ''),
      api_version: String(version.ApiVersion ?? ''),
      experimental: Boolean(info.ExperimentalBuild),
      criu_version: criu.version,
      criu_ok: criu.ok,
      criu_error: criu.error,
      fast_checkpoint: this.opts.fastCheckpoint,
      migration_address: '',
      free_disk_bytes: free,
    };
  }

  /** The container as Docker shows it, once Docker has seen the exit of a fast checkpoint of it. */
  async inspect(idOrName: string): Promise<DockerInspect> {
    await this.exitSeen(idOrName);
    return this.inspectNow(idOrName);
  }

  /** Resolves once Docker has seen the exit of any fast checkpoint of this container still pending. */
  private async exitSeen(idOrName: string): Promise<void> {
    for (const [id, seen] of this.exits) if (id === idOrName || id.startsWith(idOrName)) await seen;
  }

  private async inspectNow(idOrName: string): Promise<DockerInspect> {
    try {
      return (await this.docker.getContainer(idOrName).inspect()) as unknown as DockerInspect;
    } catch (e) {
      if (engineStatus(e) === 404) throw new ContainerNotFound(`no container ${idOrName} on ${this.host}`, { container: idOrName, host: this.host });
      throw new EngineError(`inspect ${idOrName} on ${this.host}: ${engineMessage(e)}`);
    }
  }

  async describeContainer(idOrName: string): Promise<ContainerSpec> {
    const ins = await this.inspect(idOrName);
    let imageRef: string | null = null;
    const ref = ins.Config.Image;
    if (ref && !ref.startsWith('sha256:')) {
      try {
        const img = await this.docker.getImage(ref).inspect();
        // A digest reference (or anything a target would refuse to tag) travels as the ID alone.
        if (img.Id === ins.Image) imageRef = taggableRef(ref);
      } catch {
        imageRef = null;
      }
    }
    const volumes: Record<string, { driver: string; labels: Record<string, string>; options: Record<string, string> }> = {};
    for (const m of ins.Mounts ?? []) {
      if (m.Type !== 'volume' || !m.Name) continue;
      try {
        const v = (await this.docker.getVolume(m.Name).inspect()) as {
          Driver: string;
          Labels: Record<string, string> | null;
          Options: Record<string, string> | null;
        };
        volumes[m.Name] = { driver: v.Driver, labels: v.Labels ?? {}, options: v.Options ?? {} };
      } catch {
        /* the mount still tells the driver */
      }
    }
    let memoryEstimate: number | null = null;
    if (ins.State.Running) {
      try {
        const st = (await this.docker.getContainer(ins.Id).stats({ stream: false, 'one-shot': true } as { stream: false })) as {
          memory_stats?: { usage?: number };
        };
        memoryEstimate = st.memory_stats?.usage ?? null;
      } catch {
        memoryEstimate = null;
      }
    }
    const spec = captureSpec(ins, { fabric: this.fabric, imageRef, volumes, memoryEstimate });
    this.initPids.set(spec, ins.State.Pid);
    return spec;
  }

  async sourceRefusals(spec: ContainerSpec, dest: HostFacts | null, destHost: string): Promise<Refusal[]> {
    const source = await this.hostFacts();
    const refusals = [...decideSource({ source, dest, destHost, spec, sharedStorage: this.shared }), ...(await realPathRefusals(spec, this.shared))];
    const credentials = spec.running ? await this.credentialsRefusal(spec) : null;
    return credentials ? [...refusals, credentials] : refusals;
  }

  /** A container whose processes CRIU could not dump here (another user's rlimits), refused before the freeze. */
  private async credentialsRefusal(spec: ContainerSpec): Promise<Refusal | null> {
    // A spec from elsewhere (not described here) has its PID looked up.
    const pid = this.initPids.get(spec) ?? (await this.inspectNow(spec.id)).State.Pid;
    if (!pid) return null;
    const criu = await criuStatus(this.opts.criuBinary, this.opts.criuMinVersion);
    this.capEff ??= ownCapEff();
    return foreignCredentialsRefusal({
      container: spec.name,
      host: this.host,
      processes: processTree(pid),
      canReadForeignLimits: canReadForeignLimits(this.capEff, criu),
    });
  }

  async targetState(own: OwnedResources = {}): Promise<TargetState> {
    const containers = await this.docker.listContainers({ all: true });
    const names: string[] = [];
    const usedHostPorts: TargetState['usedHostPorts'] = [];
    for (const c of containers) {
      if (own.container_id && c.Id === own.container_id) continue;
      for (const n of c.Names ?? []) names.push(n.replace(/^\//, ''));
      for (const p of c.Ports ?? []) {
        if (p.PublicPort) usedHostPorts.push({ host_ip: p.IP ?? '', host_port: String(p.PublicPort), proto: p.Type });
      }
    }
    const nets = await this.docker.listNetworks();
    const networkIps: Record<string, string[]> = {};
    for (const n of nets) {
      if (!this.fabric.includes(n.Name)) continue;
      const full = (await this.docker.getNetwork(n.Id).inspect()) as { Containers?: Record<string, { IPv4Address?: string }> };
      networkIps[n.Name] = Object.entries(full.Containers ?? {})
        .filter(([cid]) => cid !== own.container_id)
        .map(([, c]) => (c.IPv4Address ?? '').split('/')[0])
        .filter(Boolean);
    }
    const vols = ((await this.docker.listVolumes()).Volumes ?? []).map((v) => v.Name).filter((n) => !(own.volumes ?? []).includes(n));
    return { names, usedHostPorts, networkIps, networks: nets.map((n) => n.Name), volumes: vols, imagePresent: false };
  }

  async destinationRefusals(source: HostFacts | null, sourceHost: string, spec: ContainerSpec | null, own: OwnedResources = {}): Promise<Refusal[]> {
    const dest = await this.hostFacts();
    const state = spec ? await this.targetState(own) : null;
    const needed = spec?.memory_bytes_estimate ? spec.memory_bytes_estimate * 2 : undefined;
    const refusals = decideDestination({ dest, source, sourceHost, spec, state, freeBytesNeeded: needed, sharedStorage: this.shared });
    if (source?.cpuinfo && dest.criu_ok) refusals.push(...(await this.cpuFeatureRefusals(source.cpuinfo, sourceHost)));
    return spec ? [...refusals, ...(await realPathRefusals(spec, this.shared))] : refusals;
  }

  async cpuInfo(): Promise<string | null> {
    if (!this.cpuCache || Date.now() - this.cpuCache.at > 60_000) {
      const r = await dumpCpuinfo(this.opts.criuBinary, path.join(this.opts.workDir, 'cpuinfo'));
      if (r.error) log.warn({ error: r.error }, 'no CPU features image from CRIU: targets will not check their CPU against this one');
      this.cpuCache = { at: Date.now(), image: r.image };
    }
    return this.cpuCache.image?.toString('base64') ?? null;
  }

  /** `criu cpuinfo check` of the source's CPU features against this CPU; the names from both images decoded. */
  private async cpuFeatureRefusals(sourceImageB64: string, sourceHost: string): Promise<Refusal[]> {
    const image = Buffer.from(sourceImageB64, 'base64');
    const verdict = await checkCpuinfo(this.opts.criuBinary, image, path.join(this.opts.workDir, 'cpuinfo'));
    if (verdict.passed) return [];
    let comparison: CpuComparison | null = null;
    const own = await this.cpuInfo();
    try {
      if (own) comparison = compareCpuinfo(decodeCpuinfoImage(image), decodeCpuinfoImage(Buffer.from(own, 'base64')));
    } catch (e) {
      log.warn({ error: (e as Error).message }, 'cannot decode a CPU features image; the refusal quotes CRIU');
    }
    return cpuRefusals({ sourceHost, targetHost: this.host, criuPassed: false, criuLog: verdict.log, comparison });
  }

  async hasImage(imageId: string): Promise<boolean> {
    try {
      const img = await this.docker.getImage(imageId).inspect();
      return img.Id === imageId;
    } catch {
      return false;
    }
  }

  /** The tag when it names this image ID, else the ID (then the tag is not carried). */
  private async imageName(image: ContainerSpec['image']): Promise<string> {
    if (image.ref) {
      try {
        if ((await this.docker.getImage(image.ref).inspect()).Id === image.id) return image.ref;
      } catch {
        /* fall back to the ID */
      }
    }
    return image.id;
  }

  async exportImage(image: ContainerSpec['image']): Promise<Readable> {
    if (!(await this.hasImage(image.id))) throw new ImageNotFound(`image ${image.id} is not on ${this.host}`);
    return (await this.docker.getImage(await this.imageName(image)).get()) as unknown as Readable;
  }

  async importImage(image: ContainerSpec['image'], stream: Readable): Promise<ImageTransferResult> {
    const t0 = Date.now();
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        bytes += chunk.length;
        cb(null, chunk);
      },
    });
    stream.on('error', (e) => counter.destroy(e));
    // Loaded by ID only (no tag of the archive may move one this host has), and capped.
    const untagged = untaggedImage(stream.pipe(counter), this.opts.maxImageBytes ?? 16 * 1024 ** 3, this.host, this.opts.maxImageManifestBytes);
    const body = new PassThrough();
    let refused: Error | null = null;
    untagged.on('error', (e: Error) => {
      refused ??= e;
      body.end(); // docker load then fails on the short archive; the refusal is what is reported
    });
    untagged.pipe(body);
    let out = '';
    try {
      const res = (await this.docker.loadImage(body, { quiet: true })) as unknown as Readable;
      await pipeline(res, async function* (src) {
        for await (const c of src) out += String(c);
        yield '';
      });
    } catch (e) {
      if (refused) throw refused;
      throw new TransferFailed(`docker load on ${this.host} failed: ${engineMessage(e)}`);
    }
    if (refused) throw refused;
    if (/"error"/.test(out)) throw new TransferFailed(`docker load on ${this.host} failed: ${out.slice(0, 500)}`);
    if (!(await this.hasImage(image.id))) throw new TransferFailed(`image ${image.id} missing on ${this.host} after docker load (${out.slice(0, 300)})`);
    return { bytes, ms: Date.now() - t0 };
  }

  async removeImage(imageId: string): Promise<boolean> {
    const users = await this.docker.listContainers({ all: true, filters: { ancestor: [imageId] } });
    if (users.length > 0) return false;
    try {
      await this.docker.getImage(imageId).remove({ force: true });
      return true;
    } catch (e) {
      if (engineStatus(e) === 404) return false;
      throw new EngineError(`removing image ${imageId} on ${this.host}: ${engineMessage(e)}`);
    }
  }

  async createShell(spec: ContainerSpec, migrationId: string): Promise<string> {
    // Judged again here, as it is about to be created: built from the allow-list, links resolved.
    const allowed = allowedCreateBody(spec, this.shared);
    await requireRealPaths(spec, this.shared);
    let image = spec.image.id;
    if (spec.image.ref) {
      const [repo, tag] = splitRef(spec.image.ref);
      let refId: string | null = null;
      try {
        refId = (await this.docker.getImage(spec.image.ref).inspect()).Id;
      } catch {
        refId = null;
      }
      if (refId === null) {
        await this.docker.getImage(spec.image.id).tag({ repo, tag });
        refId = spec.image.id;
      }
      if (refId === spec.image.id) image = spec.image.ref;
    }
    const body = buildCreateBody({ ...spec, create: allowed }, image, migrationId);
    let id: string;
    try {
      id = (await this.docker.createContainer(body as Docker.ContainerCreateOptions)).id;
    } catch (e) {
      throw new EngineError(`creating ${spec.name} on ${this.host} failed: ${engineMessage(e)}`, { container: spec.name });
    }
    for (const n of secondaryNetworks(spec)) {
      if (n.name === 'none') continue;
      try {
        await this.docker.getNetwork(n.name).connect({ Container: id, EndpointConfig: endpointFor(n) });
      } catch (e) {
        throw new EngineError(`connecting ${spec.name} to ${n.name} on ${this.host} failed: ${engineMessage(e)}`);
      }
    }
    return id;
  }

  async shellsOf(migrationId: string): Promise<string[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${MIGRATION_LABEL}=${migrationId}`] } });
    return list.map((c) => c.Id);
  }

  async createVolume(v: VolumeSpec): Promise<void> {
    await this.docker.createVolume(await allowedVolumeBody(v, this.shared));
  }

  async volumeExists(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).inspect();
      return true;
    } catch {
      return false;
    }
  }

  async removeVolume(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).remove();
      return true;
    } catch (e) {
      if (engineStatus(e) === 404) return false;
      log.warn({ volume: name, err: engineMessage(e) }, 'volume not removed');
      return false;
    }
  }

  private async volumeMountpoint(name: string): Promise<string> {
    const v = (await this.docker.getVolume(name).inspect()) as { Mountpoint: string };
    return v.Mountpoint;
  }

  async stagingRoot(): Promise<string> {
    // Docker bind-mounts its root onto itself: a rename from anywhere else would be EXDEV.
    const dir = path.join(await this.dockerRoot(), 'ferry-staging', this.host);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private async setRestartPolicy(containerId: string, policy: { Name: string; MaximumRetryCount?: number }): Promise<void> {
    try {
      await this.docker.getContainer(containerId).update({ RestartPolicy: { Name: policy.Name, MaximumRetryCount: policy.MaximumRetryCount ?? 0 } });
    } catch (e) {
      throw new EngineError(`setting the restart policy of ${containerId.slice(0, 12)} on ${this.host}: ${engineMessage(e)}`);
    }
  }

  async holdRestarts(spec: ContainerSpec): Promise<void> {
    if (spec.restart_policy !== 'no') await this.setRestartPolicy(spec.id, { Name: 'no' });
  }

  async releaseRestarts(containerId: string, spec: ContainerSpec): Promise<void> {
    const policy = (spec.create.HostConfig as { RestartPolicy?: { Name: string; MaximumRetryCount?: number } } | undefined)?.RestartPolicy;
    if (policy?.Name && policy.Name !== 'no') await this.setRestartPolicy(containerId, policy);
  }

  checkpointName(migrationId: string): string {
    return checkpointName(migrationId);
  }

  connectionsPreserved(spec: ContainerSpec): boolean {
    return connectionsPreserved(spec);
  }

  async checkpoint(containerId: string, name: string): Promise<CheckpointResult> {
    const root = await this.dockerRoot();
    const ins = await this.inspect(containerId);
    const id = ins.Id;
    // The fast path skips Docker's own stop bookkeeping: only for containers Docker would not restart
    // (the agent switches the source's restart policy off before the freeze).
    const fast = this.opts.fastCheckpoint && (ins.HostConfig.RestartPolicy?.Name || 'no') === 'no';
    const upper = ins.GraphDriver?.Data?.UpperDir;
    if (upper) this.upperDirs.set(id, upper);
    const t0 = Date.now();
    let locked = t0;
    let ctrMs: number | null = null;
    // runc.conf must hold its normal content while CRIU runs (a post-copy step changes it under the same lock).
    await withListenersQuiesced(ins.State.Pid, id.slice(0, 12), () =>
      withRuncConfShared(async () => {
        locked = Date.now();
        if (fast) {
          const done = await fastCheckpoint({
            docker: this.docker,
            containerdAddress: this.opts.containerdAddress,
            dockerRoot: root,
            workDir: this.opts.workDir,
            containerId: id,
            name,
          });
          ctrMs = done.ctr_ms;
          this.awaitExit(id, done.exitSeen, Date.now());
        } else {
          await dockerCheckpoint(this.docker, id, name);
        }
      }),
    );
    const ms = Date.now() - t0;
    const dir = checkpointDir(root, id, name);
    const bytes = treeBytes(dir);
    log.debug({ container: id.slice(0, 12), fast, lock_ms: locked - t0, ctr_ms: ctrMs, checkpoint_ms: ms, bytes, at: t0 }, 'checkpoint timings');
    return { name, dir, bytes, checkpoint_ms: ms, fast };
  }

  /** Later looks at the container wait until Docker has seen its exit (see `exits`). */
  private awaitExit(id: string, seen: Promise<void>, since: number): void {
    const tracked = seen.then(
      () => log.debug({ container: id.slice(0, 12), exit_seen_ms: Date.now() - since }, 'Docker saw the checkpointed container exit'),
      (e: unknown) => {
        log.warn({ container: id.slice(0, 12), err: (e as Error).message }, 'Docker did not see the checkpointed container exit');
        throw e;
      },
    );
    tracked
      .catch(() => undefined)
      .finally(() => {
        if (this.exits.get(id) === tracked) this.exits.delete(id);
      });
    this.exits.set(id, tracked);
  }

  async partsToMove(containerId: string, ckpt: CheckpointResult, spec: ContainerSpec): Promise<PartSource[]> {
    // In the freeze: the writable layer as read before it, when this driver took the checkpoint.
    let id = containerId;
    let upper = this.upperDirs.get(containerId);
    if (!upper) {
      const ins = await this.inspect(containerId);
      id = ins.Id;
      upper = ins.GraphDriver?.Data?.UpperDir;
      if (!upper) throw new EngineError(`container ${containerId.slice(0, 12)} has no overlay2 UpperDir (storage driver ${ins.GraphDriver?.Name})`);
    }
    // A repeated send after the freeze knows only the checkpoint's name.
    const ckptDir = ckpt.dir || checkpointDir(await this.dockerRoot(), id, ckpt.name);
    const parts: PartSource[] = [
      { part: 'checkpoint', dir: ckptDir, kind: 'checkpoint' },
      { part: 'rootfs', dir: upper, kind: 'rootfs' },
    ];
    for (const v of spec.volumes) {
      if (v.driver !== 'local' || (v.options.type && v.options.type !== 'none')) continue; // remote/network volumes are shared storage
      parts.push({ part: `volume/${v.name}`, dir: await this.volumeMountpoint(v.name), kind: 'volume' });
    }
    return parts;
  }

  async placeCheckpoint(containerId: string, name: string, stagedDir: string): Promise<void> {
    const t0 = Date.now();
    const root = await this.dockerRoot();
    const ins = await this.inspect(containerId);
    await replaceDir(stagedDir, checkpointDir(root, ins.Id, name));
    log.debug({ container: ins.Id.slice(0, 12), ms: Date.now() - t0, at: t0 }, 'checkpoint placed');
  }

  async applyRootfs(containerId: string, stagedDir: string): Promise<void> {
    const t0 = Date.now();
    const ins = await this.inspect(containerId);
    const upper = ins.GraphDriver?.Data?.UpperDir;
    if (!upper) throw new EngineError(`container ${containerId.slice(0, 12)} on ${this.host} has no overlay2 UpperDir`);
    await mergeInto(stagedDir, upper);
    log.debug({ container: ins.Id.slice(0, 12), ms: Date.now() - t0, at: t0 }, 'rootfs diff applied');
  }

  async applyVolume(name: string, stagedDir: string): Promise<void> {
    const mp = await this.volumeMountpoint(name);
    emptyDir(mp); // Docker may have copied the image's content in at create time
    await mergeInto(stagedDir, mp);
  }

  async restore(containerId: string, checkpointName: string): Promise<RestoreResult> {
    await this.exitSeen(containerId); // a rollback on the source starts it again
    const t0 = Date.now();
    const root = await this.dockerRoot();
    const id = /^[0-9a-f]{64}$/.test(containerId) ? containerId : (await this.inspect(containerId)).Id;
    const direct = this.opts.fastRestore !== false && canStartFromImages(checkpointDir(root, id, checkpointName));
    let lockMs = 0;
    if (direct) {
      lockMs = (await startFromImages(this.docker, root, id, checkpointName)).lock_ms;
    } else {
      await withRuncConfShared(() => {
        lockMs = Date.now() - t0;
        return startFromCheckpoint(this.docker, id, checkpointName);
      });
    }
    const t1 = Date.now();
    const ms = t1 - t0;
    const ins = await this.inspect(id);
    if (!ins.State.Running) throw new RestoreFailed(`container ${containerId.slice(0, 12)} is ${ins.State.Status} right after the restore`);
    log.debug(
      { container: ins.Id.slice(0, 12), images_dir: direct, lock_ms: lockMs, start_ms: ms - lockMs, inspect_ms: Date.now() - t1, at: t0 },
      'restore timings',
    );
    return { container_id: ins.Id, pid: ins.State.Pid, restore_ms: ms };
  }

  async announce(containerId: string, spec: ContainerSpec): Promise<boolean> {
    const ips = spec.networks.filter((n) => n.shared && n.ip).map((n) => n.ip as string);
    if (ips.length === 0) return false;
    const t0 = Date.now();
    const ins = await this.inspect(containerId);
    let ok = true;
    for (const ip of ips) ok = (await gratuitousArp(ins.State.Pid, ip)) && ok;
    log.debug({ container: ins.Id.slice(0, 12), ms: Date.now() - t0, ok, at: t0 }, 'announced');
    return ok;
  }

  async verifyRunning(containerId: string, settleMs = 250): Promise<{ running: boolean; pid: number; status: string }> {
    const a = await this.inspect(containerId);
    if (!a.State.Running) return { running: false, pid: 0, status: a.State.Status };
    await sleep(settleMs);
    const b = await this.inspect(containerId);
    return { running: b.State.Running && b.State.Pid === a.State.Pid, pid: b.State.Pid, status: b.State.Status };
  }

  async start(containerId: string): Promise<void> {
    await this.exitSeen(containerId);
    try {
      await this.docker.getContainer(containerId).start();
    } catch (e) {
      if (engineStatus(e) === 304) return;
      throw new EngineError(`start ${containerId.slice(0, 12)} on ${this.host}: ${engineMessage(e)}`);
    }
  }

  async listContainers(): Promise<ContainerSummary[]> {
    const list = await this.docker.listContainers({ all: true });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
      image: c.Image,
      status: c.State,
      project_id: projectOf(c.Labels?.[PROJECT_LABEL]),
    }));
  }

  /**
   * The running containers' memory as `docker stats` shows it (usage less the inactive file
   * cache, which the kernel reclaims first), and the host's MemTotal. A container whose stats
   * fail is left out; the engine unreachable gives nulls (the heartbeat goes on without them).
   */
  async memoryUse(): Promise<MemoryUse> {
    let total: number | null = null;
    let ids: string[];
    try {
      const info = (await this.docker.info()) as { MemTotal?: number };
      total = typeof info.MemTotal === 'number' && info.MemTotal > 0 ? info.MemTotal : null;
      ids = (await this.docker.listContainers({ filters: { status: ['running'] } })).map((c) => c.Id);
    } catch {
      return { used_bytes: null, total_bytes: total };
    }
    let used = 0;
    // A few at a time: one stats call is cheap, fifty at once are not.
    for (let i = 0; i < ids.length; i += 4) {
      const got = await Promise.all(ids.slice(i, i + 4).map((id) => this.containerMemory(id)));
      for (const b of got) used += b ?? 0;
    }
    return { used_bytes: used, total_bytes: total };
  }

  /** One container's memory as `docker stats` counts it; null when the engine cannot tell. */
  async containerMemory(id: string): Promise<number | null> {
    try {
      const st = (await this.docker.getContainer(id).stats({ stream: false, 'one-shot': true } as { stream: false })) as {
        memory_stats?: { usage?: number; stats?: Record<string, number> };
      };
      const m = st.memory_stats;
      if (typeof m?.usage !== 'number') return null;
      const inactive = m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0;
      return Math.max(0, m.usage - (inactive < m.usage ? inactive : 0));
    } catch {
      return null;
    }
  }

  async containerState(containerId: string): Promise<{ exists: boolean; running: boolean; status: string; name: string | null }> {
    try {
      const ins = await this.inspect(containerId);
      return { exists: true, running: ins.State.Running, status: ins.State.Status, name: ins.Name.replace(/^\//, '') };
    } catch (e) {
      if (e instanceof ContainerNotFound) return { exists: false, running: false, status: 'absent', name: null };
      throw e;
    }
  }

  async checkpointExists(containerId: string, name: string): Promise<boolean> {
    const root = await this.dockerRoot();
    const ins = await this.inspect(containerId);
    return fs.existsSync(path.join(checkpointDir(root, ins.Id, name), 'inventory.img'));
  }

  async removeContainer(containerId: string): Promise<boolean> {
    await this.exitSeen(containerId).catch(() => undefined); // removed either way
    for (const id of this.upperDirs.keys()) if (id.startsWith(containerId)) this.upperDirs.delete(id);
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
      return true;
    } catch (e) {
      if (engineStatus(e) === 404) return false;
      throw new EngineError(`removing ${containerId.slice(0, 12)} on ${this.host}: ${engineMessage(e)}`);
    }
  }

  /** Containers (other than `except`) that use a volume. */
  async volumeUsers(name: string, except?: string): Promise<string[]> {
    const list = await this.docker.listContainers({ all: true, filters: { volume: [name] } });
    return list.map((c) => c.Id).filter((id) => id !== except);
  }

  /**
   * At the agent's start: what an earlier run left of lazy restores (lazypages.ts) is ended;
   * nothing else of this engine outlives its agent.
   */
  async endLeftovers(): Promise<string[]> {
    return this.lazyPages.endLeftovers();
  }
}

export function splitRef(ref: string): [string, string] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return [ref.slice(0, colon), ref.slice(colon + 1)];
  return [ref, 'latest'];
}
