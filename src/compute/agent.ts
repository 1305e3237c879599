/**
 * MigrationAgent: the steps one compute host runs for a migration, as the conductor asks for
 * them (manager.ts is their RPC endpoint). Engine work goes through EngineDriver, bytes through
 * MigrationTransfer, memory of past steps through AgentRecordStore; this file only tells the
 * story of each step and keeps the rules that make it safe:
 *  - every step can be asked again: a step that already happened answers from the record;
 *  - one step of a migration at a time on this host: the same step asked twice joins the run
 *    in progress, another step waits for it (a rollback never runs beside a checkpoint);
 *  - the agent never rolls back on its own: the conductor decides, target first;
 *  - a target that runs the restored container refuses to be rolled back;
 *  - on start, records left by a previous run are brought in line with what the engine shows.
 */
import path from 'node:path';
import {
  CheckpointFailed,
  EngineError,
  FerryError,
  InvalidInput,
  InvalidMigrationState,
  MigrationNotFound,
  MigrationPreCheckError,
  RestoreFailed,
  RollbackFailed,
  TargetRunsContainer,
  TransferFailed,
} from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { SYNC_PREFIX, type Manifest, type PartReceipt } from './datachannel/protocol.js';
import type { EngineDriver, HostFacts, HostModes, Refusal } from './driver.js';
import { MemoryModes, type Frozen, type ModeOptions } from './modes/index.js';
import { AgentRecordStore, advance, isSettled, type AgentRecord } from './records.js';
import type {
  CheckDestinationResult,
  CheckSourceResult,
  CleanupSourceResult,
  LiveMigrationResult,
  MemoryArrivalResult,
  PostMigrationResult,
  PreMigrationResult,
  PrecopyReport,
  RollbackDestinationResult,
  RollbackSourceResult,
} from './steps.js';
import type {
  CheckDestinationRequest,
  CheckSourceRequest,
  CleanupSourceRequest,
  LiveMigrationRequest,
  PostMigrationRequest,
  PreMigrationRequest,
  RollbackDestinationRequest,
  RollbackSourceRequest,
} from './methods.js';
import type { TlsMaterial } from './datachannel/tls.js';
import { DiskPrecopy, type PrecopyOptions } from './disksync/precopy.js';
import { MigrationTransfer, expectedParts, type ChannelSettings } from './transfer.js';

const log = getLogger('compute.agent');

/** The agent's options; the memory modes' own are in modes/ (ModeOptions). */
export interface AgentOptions extends ModeOptions {
  driver: EngineDriver;
  workDir: string;
  bindHost: string;
  port: number; // 0 = any free port
  /** Address peers use for this host's data channel; default bind host and the bound port. */
  advertiseHost?: string;
  maxTransferBytes: number;
  /** Data channel TLS, token lifetime, compression, bandwidth (transfer.ts); absent = plain HTTP. */
  channel?: ChannelSettings;
  /** Pre-copy the disk of containers leaving this host ([compute] disk_precopy); absent or null: it moves in the freeze. */
  diskPrecopy?: PrecopyOptions | null;
}

/** The modes a host offers are re-checked this often (`criu check` takes a while). */
const MODES_TTL_MS = 60_000;

export function refusalError(side: string, refusals: Refusal[]): FerryError {
  return new MigrationPreCheckError(`migration refused by the ${side}: ${refusals.map((r) => r.message).join('; ')}`, {
    refusals,
    reasons: refusals.map((r) => r.reason),
  });
}

export class MigrationAgent {
  readonly driver: EngineDriver;
  readonly records: AgentRecordStore;
  readonly transfer: MigrationTransfer;
  /** The step running for each migration on this host (at most one). */
  private readonly lanes = new Map<string, { step: string; done: Promise<unknown> }>();
  private modesCache: { at: number; value: HostModes } | null = null;
  /** How each way of moving memory does its part of a step (modes/). */
  private readonly memoryModes: MemoryModes;
  /** The disk pre-copy: the rounds of containers leaving (when this host pre-copies) and the copies of those arriving. */
  private readonly disk: DiskPrecopy;
  private readonly precopyDisk: boolean;

  constructor(opts: AgentOptions) {
    this.driver = opts.driver;
    this.records = new AgentRecordStore(path.join(opts.workDir, 'migrations'));
    const tunnelTls: TlsMaterial | null = opts.channel?.tls ?? null; // the data channel's certificates also guard memory pages
    this.memoryModes = new MemoryModes(
      {
        host: opts.driver.host,
        driver: this.driver,
        records: this.records,
        tunnelTls,
        advertisedHost: () => this.advertisedHost(),
        offered: () => this.modes(),
      },
      opts,
    );
    this.transfer = new MigrationTransfer(opts, {
      committed: (id, manifest, received) => this.onCommitted(id, manifest, received),
      exportImage: async (id) => {
        const r = this.records.load(id);
        if (!r || r.role !== 'source' || !r.spec) throw new MigrationNotFound(`no outgoing migration ${id} on ${this.host}`);
        return this.driver.exportImage(r.spec.image);
      },
    });
    // A target applies the rounds a source sends whatever its own switch says: the switch is the leaving side's.
    this.disk = new DiskPrecopy(this.transfer, opts.diskPrecopy ?? { maxRounds: 0 });
    this.precopyDisk = Boolean(opts.diskPrecopy);
  }

  /** Drop what is still arriving, staged or pre-copied for a migration on this host. */
  private dropTransfer(id: string): void {
    this.transfer.forget(id);
    this.disk.forget(id);
  }

  get host(): string {
    return this.driver.host;
  }

  async start(): Promise<string> {
    // The channel first (resume clears staging through it); the RPC endpoint starts only after this returns.
    const address = await this.transfer.start(await this.driver.stagingRoot());
    // Before any container is looked at: a hung restore left by an earlier run holds its container in the engine.
    const ended = await this.driver.endLeftovers();
    if (ended.length) log.warn({ host: this.host, ended }, 'ended what an earlier run of this agent left running');
    await this.resume();
    this.pruneRecords();
    log.info({ host: this.host, address }, 'migration data channel listening');
    return address;
  }

  async stop(): Promise<void> {
    await this.transfer.stop();
  }

  get address(): string {
    return this.transfer.address;
  }

  async hostFacts(): Promise<HostFacts> {
    let address = '';
    try {
      address = this.transfer.address;
    } catch {
      address = '';
    }
    return { ...(await this.driver.hostFacts()), migration_address: address, modes: await this.modes() };
  }

  /** The memory-moving modes this host offers beyond stop-and-copy (modes/index.ts), re-checked each minute. */
  async modes(): Promise<HostModes> {
    if (this.modesCache && Date.now() - this.modesCache.at < MODES_TTL_MS) return this.modesCache.value;
    const value = await this.memoryModes.offered();
    this.modesCache = { at: Date.now(), value };
    return value;
  }

  /** The address (without port) peers reach this host at: where the page server listens. */
  private advertisedHost(): string {
    const a = this.transfer.address;
    const colon = a.lastIndexOf(':');
    return (colon > 0 ? a.slice(0, colon) : a).replace(/^\[|\]$/g, '');
  }

  /** This host's record of a migration (tests and the conductor's checks read it). */
  load(id: string): AgentRecord | null {
    return this.records.load(id);
  }

  /**
   * Run one step of a migration: the same step asked again while it runs gets that run's
   * outcome; any other step of the migration waits until the running one has settled.
   */
  serialize<T>(id: string, step: string, run: () => Promise<T>): Promise<T> {
    const current = this.lanes.get(id);
    if (current && current.step === step) return current.done as Promise<T>;
    const before = current ? current.done.catch(() => undefined) : Promise.resolve();
    const done = before.then(run);
    const lane = { step, done };
    this.lanes.set(id, lane);
    const clear = () => {
      if (this.lanes.get(id) === lane) this.lanes.delete(id);
    };
    done.then(clear, clear);
    return done;
  }

  private forget(id: string): void {
    this.dropTransfer(id);
    this.records.remove(id);
  }

  /**
   * Records of finished migrations (restored here, rolled back here) are kept a day so that
   * a repeated step still finds its answer, then removed.
   */
  pruneRecords(maxAgeMs = 24 * 3600_000): string[] {
    const removed: string[] = [];
    for (const r of this.records.all()) {
      if (isSettled(r) && Date.now() - Date.parse(r.updated_at) > maxAgeMs) {
        this.forget(r.migration_id);
        removed.push(r.migration_id);
      }
    }
    return removed;
  }

  /**
   * After a restart: bring each unfinished record in line with the engine. A target whose
   * container runs was restored (the agent died before noting it); a source whose container
   * still runs was never frozen (the checkpoint did not happen) and gets its restart policy
   * back. A frozen source with its checkpoint stays frozen: the conductor goes on or rolls back.
   */
  async resume(): Promise<string[]> {
    const touched: string[] = [];
    for (const r of this.records.all()) {
      if (isSettled(r) || !r.container_id) continue;
      let state;
      try {
        state = await this.driver.containerState(r.container_id);
      } catch (e) {
        log.warn({ migration: r.migration_id, err: (e as Error).message }, 'cannot read the container while resuming');
        continue;
      }
      if (r.role === 'target' && r.stage === 'received' && state.running && r.spec) {
        r.post = {
          container_id: r.container_id,
          running: true,
          restored_at: Date.parse(r.updated_at),
          place_ms: 0,
          restore_ms: 0,
          garp_sent: await this.driver.announce(r.container_id, r.spec).catch(() => false),
          connections_preserved: this.driver.connectionsPreserved(r.spec),
          ...this.memoryModes.of(r).restoredTraits(),
        };
        advance(r, 'restored');
        this.records.save(r);
        this.dropTransfer(r.migration_id);
        touched.push(r.migration_id);
        log.warn({ migration: r.migration_id }, 'resumed: the container runs here, the restore had happened');
      } else if (r.role === 'source' && r.stage === 'frozen' && this.memoryModes.of(r).abandonAfterRestart(r)) {
        // What the mode kept running for the frozen source died with the earlier run (the mode logged it).
        this.records.save(r);
        touched.push(r.migration_id);
      } else if (r.role === 'source' && r.stage === 'frozen' && state.running && r.spec) {
        await this.driver.releaseRestarts(r.container_id, r.spec);
        advance(r, 'checked');
        this.records.save(r);
        touched.push(r.migration_id);
        log.warn({ migration: r.migration_id }, 'resumed: the container still runs here, it was never frozen');
      } else {
        log.warn({ migration: r.migration_id, role: r.role, stage: r.stage, container: state.status }, 'unfinished migration found; waiting for the conductor');
      }
    }
    return touched;
  }

  // ---------------- source: check_can_migrate_source ----------------
  async checkCanMigrateSource(req: CheckSourceRequest): Promise<CheckSourceResult> {
    const spec = await this.driver.describeContainer(req.container);
    const refusals = await this.driver.sourceRefusals(spec, req.dest ?? null, req.dest_host);
    if (refusals.length > 0) throw refusalError(`source ${this.host}`, refusals);
    const r = this.records.load(req.migration_id) ?? this.records.create(req.migration_id, 'source', req.dest_host);
    if (r.role !== 'source') throw new InvalidMigrationState(`migration ${req.migration_id} is incoming on ${this.host}, not outgoing`);
    r.spec = spec;
    r.container_id = spec.id;
    r.container_name = spec.name;
    this.records.save(r);
    // The CPU's features go to the target with the facts: it refuses when its CPU lacks some.
    const cpuinfo = (await this.driver.cpuInfo?.()) ?? null;
    return { source: { ...(await this.hostFacts()), cpuinfo }, spec, export: this.transfer.grantExport(req.migration_id, req.dest_host) };
  }

  // ---------------- target: check_can_migrate_destination ----------------
  async checkCanMigrateDestination(req: CheckDestinationRequest): Promise<CheckDestinationResult> {
    const own = this.records.load(req.migration_id);
    const marked = own?.container_id ? [] : await this.driver.shellsOf(req.migration_id);
    const refusals = await this.driver.destinationRefusals(req.source ?? null, req.source_host, req.spec ?? null, {
      container_id: own?.container_id ?? marked[0],
      volumes: own?.created_volumes,
    });
    if (refusals.length > 0) throw refusalError(`target ${this.host}`, refusals);
    return { dest: await this.hostFacts(), image_present: req.spec ? await this.driver.hasImage(req.spec.image.id) : null };
  }

  // ---------------- target: pre_migration ----------------
  async preMigration(req: PreMigrationRequest): Promise<PreMigrationResult> {
    const id = req.migration_id;
    let r = this.records.load(id);
    if (r && r.role !== 'target') throw new InvalidMigrationState(`migration ${id} is outgoing on ${this.host}`);
    if (r && r.stage !== 'checked' && r.stage !== 'prepared') throw new InvalidMigrationState(`migration ${id} is already ${r.stage} on ${this.host}`);
    if (r?.stage === 'prepared' && r.pre && r.container_id && (await this.driver.containerState(r.container_id)).exists) {
      return { ...r.pre, upload: this.transfer.grantUpload(id, req.source_host, expectedParts(r.created_volumes)) }; // asked again: the shell is there
    }
    // A shell an earlier try of this step made (the agent died before noting it) is ours, not a name clash: it goes.
    const stale = (await this.driver.shellsOf(id)).filter((cid) => cid !== r?.container_id);
    // The spec is re-checked before anything is kept or made here: a refused one leaves no trace.
    const refusals = await this.driver.destinationRefusals(req.source ?? null, req.source_host, req.spec, {
      container_id: r?.container_id ?? stale[0],
      volumes: r?.created_volumes,
    });
    if (refusals.length > 0) throw refusalError(`target ${this.host}`, refusals);
    for (const cid of stale) {
      if ((await this.driver.containerState(cid)).running)
        throw new TargetRunsContainer(`a container of migration ${id} already runs on ${this.host}`, { container_id: cid });
      await this.driver.removeContainer(cid);
    }
    r ??= this.records.create(id, 'target', req.source_host);
    r.spec = req.spec;
    r.container_name = req.spec.name;
    this.records.save(r);

    let imageBytes = 0;
    let imageMs = 0;
    let transferred = false;
    if (!(await this.driver.hasImage(req.spec.image.id))) {
      const t0 = Date.now();
      const stream = await this.transfer.fetchImage(id, req.export, req.source_host);
      r.image_loaded = true; // from here on, rollback removes the image again
      this.records.save(r);
      imageBytes = (await this.driver.importImage(req.spec.image, stream)).bytes;
      imageMs = Date.now() - t0;
      transferred = true;
    }
    const t1 = Date.now();
    for (const v of req.spec.volumes) {
      if (r.created_volumes.includes(v.name)) continue;
      if (await this.driver.volumeExists(v.name)) {
        throw refusalError(`target ${this.host}`, [
          { reason: 'volume_exists', message: `a volume named ${v.name} already exists on ${this.host}: remove or rename it there` },
        ]);
      }
      await this.driver.createVolume(v);
      r.created_volumes.push(v.name);
      this.records.save(r);
    }
    r.container_id = await this.driver.createShell(req.spec, id);
    r.pre = {
      dest_host: this.host,
      container_id: r.container_id,
      image_transferred: transferred,
      image_bytes: imageBytes,
      image_ms: imageMs,
      create_ms: Date.now() - t1,
      connections_preserved: this.driver.connectionsPreserved(req.spec),
    };
    r.checkpoint_name = this.driver.checkpointName(id);
    advance(r, 'prepared');
    this.records.save(r);
    return { ...r.pre, upload: this.transfer.grantUpload(id, req.source_host, expectedParts(r.created_volumes)) };
  }

  // ---------------- source: live_migration ----------------
  /**
   * The freeze, the checkpoint and the send. What the checkpoint holds, and so what travels now,
   * is the mode's (modes/): the whole memory, or all but the pages the source keeps serving
   * until the target has fetched them (the source must stay up meanwhile: its memory is the only copy).
   */
  async liveMigration(req: LiveMigrationRequest): Promise<LiveMigrationResult> {
    const id = req.migration_id;
    const r = this.records.load(id);
    if (!r || !r.spec || !r.container_id) throw new MigrationNotFound(`no outgoing migration ${id} on ${this.host} (check_can_migrate_source first)`);
    if (r.role !== 'source') throw new InvalidMigrationState(`migration ${id} is incoming on ${this.host}`);
    if (r.stage === 'sent' && r.live) return r.live;
    if (r.stage === 'rolled_back') throw new InvalidMigrationState(`migration ${id} was rolled back on ${this.host}`);
    const spec = r.spec;
    const name = this.driver.checkpointName(id);
    // Once frozen, the mode it was frozen with goes on, whatever a repeated request says.
    const mode = await this.memoryModes.requested(r.stage === 'frozen' && r.mode ? r.mode : req.mode);
    await mode.require();
    r.checkpoint_name = name;
    r.mode = mode.name;
    this.records.save(r);

    const state = await this.driver.containerState(spec.id);
    let frozen: Frozen;
    if (r.stage === 'frozen' && mode.continueFrozen) {
      // Asked again after the freeze, in a mode that keeps the source frozen its own way.
      frozen = mode.continueFrozen(r, name);
    } else if (state.running) {
      await this.precopyBeforeFreeze(r, req, name);
      advance(r, 'frozen'); // from here on, only the conductor's rollback may start it here again
      this.records.save(r);
      // The engine must not restart the frozen source behind our back (it would run twice).
      await this.driver.holdRestarts(spec);
      const frozenAt = Date.now();
      frozen = { ...(await mode.freeze(r, spec.id, name)), frozenAt };
    } else if (state.exists && r.stage === 'frozen' && (await this.driver.checkpointExists(spec.id, name))) {
      // Asked again after the freeze (the agent or the bus went away): the checkpoint is there, send it again.
      frozen = {
        checkpoint: { name, dir: '', bytes: 0, checkpoint_ms: 0, fast: false },
        frozenAt: r.live?.frozen_at ?? Date.parse(r.updated_at),
        pageServer: null,
      };
    } else {
      throw new CheckpointFailed(`container ${spec.name} on ${this.host} is ${state.status} and has no checkpoint ${name}`);
    }
    const ckpt = frozen.checkpoint;
    const t1 = Date.now();
    let parts = await this.driver.partsToMove(spec.id, ckpt, spec);
    let precopy: PrecopyReport | null = null;
    if (this.disk.precopied(id)) {
      // The disk went before the freeze: now only its last round, checked by the target against its manifest.
      const last = await this.disk.finalParts(id);
      parts = [...parts.filter((p) => p.part === 'checkpoint'), ...last.parts];
      precopy = last.report;
    }
    let receipts: PartReceipt[];
    try {
      ({ receipts } = await this.transfer.send(id, req.upload, r.peer_host ?? '', name, parts));
    } catch (e) {
      throw e instanceof FerryError ? e : new TransferFailed(`sending ${spec.name} to ${r.peer_host ?? 'the target'} failed: ${(e as Error).message}`);
    }
    const sum = (pred: (p: string) => boolean) => receipts.filter((x) => pred(x.part)).reduce((a, x) => a + x.bytes, 0);
    const memoryBytes = ckpt.bytes || sum((p) => p === 'checkpoint');
    const result: LiveMigrationResult = {
      mode: mode.name,
      page_server: frozen.pageServer,
      memory_total_bytes: mode.memoryTotal(r, memoryBytes),
      container_id: spec.id,
      checkpoint_name: name,
      fast_checkpoint: ckpt.fast,
      frozen_at: frozen.frozenAt,
      checkpoint_ms: ckpt.checkpoint_ms,
      transfer_ms: Date.now() - t1,
      memory_bytes: memoryBytes,
      rootfs_bytes: sum((p) => p === 'rootfs' || p === `${SYNC_PREFIX}rootfs`),
      volume_bytes: sum((p) => p.startsWith('volume/') || p.startsWith(`${SYNC_PREFIX}volume/`)),
      transferred_bytes: sum(() => true),
      parts: receipts.map((x) => ({ part: x.part, bytes: x.bytes, sha256: x.sha256 })),
      disk_precopy: precopy,
    };
    r.live = result;
    advance(r, 'sent');
    this.records.save(r);
    log.info({ migration: id, mode: mode.name, checkpoint_ms: result.checkpoint_ms, transfer_ms: result.transfer_ms, bytes: result.transferred_bytes }, 'sent');
    return result;
  }

  /**
   * Before the freeze, when this host pre-copies: send the writable layer and local volumes in
   * rounds while the container runs. A round that fails (a target that does not take them) is
   * not fatal: the disk then moves in the freeze, as without the pre-copy.
   */
  private async precopyBeforeFreeze(r: AgentRecord, req: LiveMigrationRequest, name: string): Promise<void> {
    const id = r.migration_id;
    const spec = r.spec;
    if (!this.precopyDisk || !spec) return;
    const noCheckpoint = { name, dir: '', bytes: 0, checkpoint_ms: 0, fast: false };
    const trees = (await this.driver.partsToMove(spec.id, noCheckpoint, spec)).filter((p) => p.part !== 'checkpoint');
    try {
      const report = await this.disk.live(id, req.upload, r.peer_host ?? '', name, trees);
      log.info({ migration: id, ...report }, 'disk pre-copied while the container ran');
    } catch (e) {
      this.disk.forget(id);
      log.warn({ migration: id, err: (e as Error).message }, 'disk pre-copy failed; the disk moves in the freeze');
    }
  }

  private async onCommitted(id: string, _manifest: Manifest, received: PartReceipt[]): Promise<void> {
    const r = this.records.load(id);
    if (!r || r.role !== 'target' || !r.container_id) throw new MigrationNotFound(`no incoming migration ${id} on ${this.host}`);
    if (r.stage !== 'prepared' && r.stage !== 'received') throw new InvalidMigrationState(`migration ${id} is ${r.stage} on ${this.host}`);
    await this.disk.received(id, received);
    if (!received.some((p) => p.part === 'checkpoint')) return; // a disk pre-copy round: the migration stays prepared
    // The freeze's send: each pre-copied tree must be the source's before anything is restored from it.
    this.disk.finish(id, received);
    r.received = received;
    advance(r, 'received');
    this.records.save(r);
  }

  // ---------------- target: post_migration_at_destination ----------------
  /**
   * Place what was received and start the container from it, the way the request's mode restores
   * (modes/): from a whole checkpoint, or fetching the memory from the source as the process
   * touches it. The step answers once the process runs; memory still arriving is the mode's.
   */
  async postMigrationAtDestination(req: PostMigrationRequest): Promise<PostMigrationResult> {
    const id = req.migration_id;
    const r = this.records.load(id);
    if (!r || r.role !== 'target') throw new MigrationNotFound(`no incoming migration ${id} on ${this.host}`);
    if (r.stage === 'restored' && r.post) return r.post;
    if (r.stage !== 'received' || !r.container_id || !r.spec) {
      throw new InvalidMigrationState(`migration ${id} on ${this.host} is ${r.stage}: nothing complete was received`);
    }
    const mode = this.memoryModes.forRestore(req);
    await mode.require();
    mode.checkRestore(r, req);
    const cid = r.container_id;
    const name = r.checkpoint_name ?? this.driver.checkpointName(id);
    const t0 = Date.now();
    try {
      const ckpt = this.transfer.stagedPart(id, 'checkpoint');
      if (ckpt) await this.driver.placeCheckpoint(cid, name, ckpt);
      const rootfs = this.transfer.stagedPart(id, 'rootfs');
      if (rootfs) await this.driver.applyRootfs(cid, rootfs);
      for (const v of r.created_volumes) {
        const dir = this.transfer.stagedPart(id, `volume/${v}`);
        if (dir) await this.driver.applyVolume(v, dir);
      }
    } catch (e) {
      throw new RestoreFailed(`placing the migrated state on ${this.host} failed: ${(e as Error).message}`);
    }
    const placeMs = Date.now() - t0;
    r.mode = mode.name;
    this.records.save(r);
    const restored = await mode.restore(r, cid, name, req);
    const restoredAt = Date.now();
    const garp = await this.driver.announce(cid, r.spec).catch((e: unknown) => {
      log.warn({ migration: id, err: (e as Error).message }, 'gratuitous ARP failed');
      return false;
    });
    const v = await this.driver.verifyRunning(cid);
    if (!v.running) throw new RestoreFailed(`container ${r.spec.name} on ${this.host} is ${v.status} after the restore`);
    r.post = {
      container_id: cid,
      running: true,
      restored_at: restoredAt,
      place_ms: placeMs,
      restore_ms: restored.restore_ms,
      garp_sent: garp,
      connections_preserved: this.driver.connectionsPreserved(r.spec),
      ...mode.restoredTraits(),
    };
    advance(r, 'restored');
    this.records.save(r);
    this.dropTransfer(id);
    return r.post;
  }

  // ---------------- target: memory still arriving after the restore ----------------
  /** How memory still arriving after the restore comes in here (the record's mode answers; `unknown` when it lost track). */
  async memoryArrival(req: { migration_id: string }): Promise<MemoryArrivalResult> {
    const r = this.records.load(req.migration_id);
    if (!r || r.role !== 'target') throw new MigrationNotFound(`no incoming migration ${req.migration_id} on ${this.host}`);
    const mode = this.memoryModes.of(r);
    if (!mode.arrival)
      throw new InvalidMigrationState(`migration ${req.migration_id} moved its memory by ${mode.name} on ${this.host}: none arrives after the restore`);
    return mode.arrival(r, r.checkpoint_name ?? this.driver.checkpointName(req.migration_id));
  }

  /** A container the caller names for a migration must be the one this host's record has. */
  private ownContainer(r: AgentRecord, named: string | null | undefined): void {
    if (named && r.container_id && named !== r.container_id) {
      throw new InvalidInput(
        `container ${named.slice(0, 12)} is not the one migration ${r.migration_id} moves from ${this.host} (${r.container_id.slice(0, 12)})`,
        {
          container_id: named,
        },
      );
    }
  }

  // ---------------- source: cleanup ----------------
  async cleanupSource(req: CleanupSourceRequest): Promise<CleanupSourceResult> {
    const r = this.records.load(req.migration_id);
    // Only what this host sent for this migration is removed: without its record (never here, or
    // already cleaned up) there is nothing of it to remove, whatever container the caller names.
    if (!r || r.role !== 'source') return { container_removed: false, volumes_removed: [] };
    this.ownContainer(r, req.container_id);
    const cid = r.container_id;
    if (!cid) return { container_removed: false, volumes_removed: [] };
    await this.memoryModes.of(r).settleSource(r);
    const st = await this.driver.containerState(cid);
    if (st.running) {
      throw new InvalidMigrationState(`container ${st.name} is running on ${this.host}: the source is removed only after the target runs it`);
    }
    const removed = st.exists ? await this.driver.removeContainer(cid) : false;
    const volumes: string[] = [];
    for (const v of r.spec?.volumes ?? []) {
      if (r.live && !r.live.parts.some((p) => p.part === `volume/${v.name}`)) continue; // not moved (shared): keep
      if ((await this.driver.volumeUsers(v.name, cid)).length > 0) continue;
      if (await this.driver.removeVolume(v.name)) volumes.push(v.name);
    }
    this.forget(req.migration_id);
    return { container_removed: removed, volumes_removed: volumes };
  }

  // ---------------- target: rollback ----------------
  async rollbackAtDestination(req: RollbackDestinationRequest): Promise<RollbackDestinationResult> {
    const id = req.migration_id;
    const r = this.records.load(id);
    const out: RollbackDestinationResult = { container_removed: false, volumes_removed: [], image_removed: false };
    if (r && r.role !== 'target') throw new InvalidMigrationState(`migration ${id} is outgoing on ${this.host}`);
    try {
      // What the mode still runs for a restore that did not finish is ended first (it may hold the container).
      if (r && r.stage !== 'restored') await this.memoryModes.of(r).rollbackTarget(r, r.checkpoint_name ?? this.driver.checkpointName(id));
      // The shells this migration made, by record and by their mark (the agent may have died before noting the ID).
      const shells = new Set(await this.driver.shellsOf(id));
      if (r?.container_id) shells.add(r.container_id);
      for (const cid of shells) {
        const st = await this.driver.containerState(cid);
        if (st.running) {
          // Never roll back once the target runs: removing it would leave no running copy.
          throw new TargetRunsContainer(
            `container ${st.name ?? cid.slice(0, 12)} already runs on ${this.host} for migration ${id}; it must not be rolled back`,
            {
              container_id: cid,
            },
          );
        }
      }
      for (const cid of shells) out.container_removed = (await this.driver.removeContainer(cid)) || out.container_removed;
      for (const v of r?.created_volumes ?? []) if (await this.driver.removeVolume(v)) out.volumes_removed.push(v);
      if (r?.image_loaded && r.spec) out.image_removed = await this.driver.removeImage(r.spec.image.id);
    } catch (e) {
      if (e instanceof TargetRunsContainer) throw e;
      // The engine did not answer or refused: the conductor asks again until its deadline.
      throw new EngineError(`cleaning up migration ${id} on ${this.host} failed: ${(e as Error).message}`, { migration_id: id });
    }
    this.forget(id);
    return out;
  }

  // ---------------- source: rollback ----------------
  async rollbackAtSource(req: RollbackSourceRequest): Promise<RollbackSourceResult> {
    const r = this.records.load(req.migration_id);
    // Only a container this host checked out for this migration is taken back (started again).
    if (!r || r.role !== 'source' || !r.container_id) throw new MigrationNotFound(`no outgoing migration ${req.migration_id} on ${this.host}`);
    this.ownContainer(r, req.container_id);
    const cid = r.container_id;
    this.dropTransfer(req.migration_id);
    const st = await this.driver.containerState(cid).catch((e: unknown) => {
      throw new EngineError(`the engine of ${this.host} did not answer: ${(e as Error).message}`, { migration_id: req.migration_id });
    });
    const finish = (res: RollbackSourceResult) => {
      advance(r, 'rolled_back');
      this.records.save(r);
      return res;
    };
    // Checked for this migration and never frozen (it failed before the freeze): nothing to take
    // back and nothing to start, whatever state the container is in; the record is settled.
    if (r.stage === 'checked') return finish({ container_id: cid, running: st.running, from_checkpoint: false, state_kept: true });
    if (!st.exists) throw new RollbackFailed(`container ${cid.slice(0, 12)} is gone from ${this.host}: nothing to roll back to`);
    if (r.spec) await this.driver.releaseRestarts(cid, r.spec);
    const name = r.checkpoint_name ?? this.driver.checkpointName(req.migration_id);
    if (await this.memoryModes.of(r).rollbackSource(r, cid, name)) {
      // The mode held it frozen its own way and let it go on, memory intact.
      const v = await this.driver.verifyRunning(cid);
      if (!v.running) throw new RollbackFailed(`container ${cid.slice(0, 12)} is ${v.status} on ${this.host} after resuming it`);
      if (r.spec) await this.driver.announce(cid, r.spec).catch(() => false);
      return finish({ container_id: cid, running: true, from_checkpoint: false, state_kept: true });
    }
    if (st.running) return finish({ container_id: cid, running: true, from_checkpoint: false, state_kept: true });
    if (await this.driver.checkpointExists(cid, name)) {
      try {
        await this.driver.restore(cid, name);
        const v = await this.driver.verifyRunning(cid);
        if (v.running) {
          // Tell the fabric where the container is again (its MAC may have been seen on the target).
          if (r.spec) await this.driver.announce(cid, r.spec).catch(() => false);
          return finish({ container_id: cid, running: true, from_checkpoint: true, state_kept: true });
        }
      } catch (e) {
        log.error({ migration: req.migration_id, err: (e as Error).message }, 'restore from the checkpoint on the source failed; starting afresh');
      }
    }
    // Last resort: the workload runs again, without its memory state.
    try {
      await this.driver.start(cid);
    } catch (e) {
      throw new RollbackFailed(`container ${cid.slice(0, 12)} could not be restarted on ${this.host}: ${(e as Error).message}`);
    }
    const v = await this.driver.verifyRunning(cid);
    if (!v.running) throw new RollbackFailed(`container ${cid.slice(0, 12)} does not stay up on ${this.host} (${v.status})`);
    if (r.spec) await this.driver.announce(cid, r.spec).catch(() => false);
    return finish({ container_id: cid, running: true, from_checkpoint: false, state_kept: false });
  }
}
