/**
 * MigrationAgent: the compute side of one host's migrations, one method per conductor step
 * (the RPC endpoint in manager.ts calls these). It owns the data channel server, the
 * one-time tokens and a small on-disk record per migration, so every step can be retried:
 * a step that already happened returns its earlier result instead of doing it twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  CheckpointFailed,
  FerryError,
  InvalidInput,
  InvalidMigrationState,
  MigrationNotFound,
  MigrationPreCheckError,
  RestoreFailed,
  RollbackFailed,
  TransferFailed,
} from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { commit, fetchImage, sendTree } from './datachannel/client.js';
import { MIGRATION_ID_RE, type Manifest, type PartReceipt } from './datachannel/protocol.js';
import { DataChannelServer } from './datachannel/server.js';
import { TokenStore } from './datachannel/tokens.js';
import { checkpointName } from './docker/checkpoint.js';
import { connectionsPreserved } from './docker/config.js';
import type { EngineDriver, HostFacts, Refusal } from './driver.js';
import { effectiveFaults, type Faults } from './faults.js';
import type {
  CheckDestinationRequest,
  CheckDestinationResult,
  CheckSourceRequest,
  CheckSourceResult,
  CleanupSourceRequest,
  CleanupSourceResult,
  LiveMigrationRequest,
  LiveMigrationResult,
  PostMigrationRequest,
  PostMigrationResult,
  PreMigrationRequest,
  PreMigrationResult,
  RollbackDestinationRequest,
  RollbackDestinationResult,
  RollbackSourceRequest,
  RollbackSourceResult,
  Session,
} from './steps.js';

const log = getLogger('compute.agent');

export interface AgentOptions {
  driver: EngineDriver;
  workDir: string;
  bindHost: string;
  port: number; // 0 = any free port
  /** Address peers use for this host's data channel; default bind host and the bound port. */
  advertiseHost?: string;
  maxTransferBytes: number;
  faults?: Faults;
}

export function refusalError(side: string, refusals: Refusal[]): FerryError {
  return new MigrationPreCheckError(`migration refused by the ${side}: ${refusals.map((r) => r.message).join('; ')}`, {
    refusals,
    reasons: refusals.map((r) => r.reason),
  });
}

export class MigrationAgent {
  readonly driver: EngineDriver;
  readonly tokens = new TokenStore();
  private readonly server: DataChannelServer;
  private address_: string | null = null;
  private faults: Faults;

  constructor(private readonly opts: AgentOptions) {
    this.driver = opts.driver;
    this.faults = effectiveFaults(opts.faults);
    fs.mkdirSync(this.migrationsDir, { recursive: true });
    this.server = new DataChannelServer({
      bindHost: opts.bindHost,
      port: opts.port,
      maxBytes: opts.maxTransferBytes,
      tokens: this.tokens,
      faults: this.faults,
      handler: {
        partDir: (id, part) => {
          const dir = this.partDir(id, part);
          fs.rmSync(dir, { recursive: true, force: true });
          fs.mkdirSync(dir, { recursive: true });
          return dir;
        },
        committed: (id, manifest, received) => this.onCommitted(id, manifest, received),
        exportImage: async (id) => {
          const s = this.load(id);
          if (!s || s.role !== 'source' || !s.spec) throw new MigrationNotFound(`no outgoing migration ${id} on ${this.host}`);
          return this.driver.exportImage(s.spec.image);
        },
      },
    });
  }

  get host(): string {
    return this.driver.host;
  }

  /** Change the injected faults (tests only; ignored elsewhere). */
  setFaults(f: Faults): void {
    this.faults = effectiveFaults(f);
    this.server.setFaults(this.faults);
  }

  async start(): Promise<string> {
    this.stagingRoot = await this.driver.stagingRoot();
    this.pruneSessions();
    const bound = await this.server.listen();
    const port = bound.slice(bound.lastIndexOf(':') + 1);
    this.address_ = `${this.opts.advertiseHost || this.opts.bindHost}:${port}`;
    log.info({ host: this.host, address: this.address_ }, 'migration data channel listening');
    return this.address_;
  }

  async stop(): Promise<void> {
    await this.server.close();
  }

  get address(): string {
    if (!this.address_) throw new Error('agent not started');
    return this.address_;
  }

  async hostFacts(): Promise<HostFacts> {
    return { ...(await this.driver.hostFacts()), migration_address: this.address_ ?? '' };
  }

  // ---------------- the per-migration record ----------------
  private get migrationsDir() {
    return path.join(this.opts.workDir, 'migrations');
  }
  private dir(id: string) {
    if (!MIGRATION_ID_RE.test(id)) throw new InvalidInput(`bad migration id ${JSON.stringify(id)}`);
    return path.join(this.migrationsDir, id);
  }
  private stagingRoot: string | null = null;
  private incoming(id: string) {
    if (!this.stagingRoot) throw new Error('agent not started');
    return path.join(this.stagingRoot, this.dir(id).slice(this.migrationsDir.length + 1));
  }
  private partDir(id: string, part: string) {
    return path.join(this.incoming(id), part);
  }
  load(id: string): Session | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir(id), 'session.json'), 'utf8')) as Session;
    } catch {
      return null;
    }
  }
  private save(s: Session): void {
    s.updated_at = new Date().toISOString();
    fs.mkdirSync(this.dir(s.migration_id), { recursive: true });
    const f = path.join(this.dir(s.migration_id), 'session.json');
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(s, null, 1));
    fs.renameSync(`${f}.tmp`, f);
  }
  private newSession(id: string, role: Session['role']): Session {
    return {
      migration_id: id,
      role,
      phase: 'checked',
      container_id: null,
      container_name: null,
      spec: null,
      checkpoint_name: null,
      created_volumes: [],
      image_loaded: false,
      updated_at: '',
    };
  }
  private forget(id: string): void {
    this.tokens.revoke(id);
    this.server.forget(id);
    fs.rmSync(this.dir(id), { recursive: true, force: true });
    if (this.stagingRoot) fs.rmSync(this.incoming(id), { recursive: true, force: true });
  }

  /**
   * Records of finished migrations (restored on this target, rolled back here) are kept a day
   * so that a retried step still finds its answer, then removed.
   */
  pruneSessions(maxAgeMs = 24 * 3600_000): string[] {
    const removed: string[] = [];
    for (const id of fs.readdirSync(this.migrationsDir)) {
      const s = this.load(id);
      const final = s && (s.phase === 'restored' || s.phase === 'rolled_back');
      if (final && Date.now() - Date.parse(s.updated_at) > maxAgeMs) {
        this.forget(id);
        removed.push(id);
      }
    }
    return removed;
  }

  // ---------------- source: check_can_migrate_source ----------------
  async checkCanMigrateSource(req: CheckSourceRequest): Promise<CheckSourceResult> {
    const spec = await this.driver.describeContainer(req.container);
    const refusals = await this.driver.sourceRefusals(spec, req.dest ?? null, req.dest_host);
    if (refusals.length > 0) throw refusalError(`source ${this.host}`, refusals);
    const s = this.load(req.migration_id) ?? this.newSession(req.migration_id, 'source');
    if (s.role !== 'source') throw new InvalidMigrationState(`migration ${req.migration_id} is incoming on ${this.host}, not outgoing`);
    s.spec = spec;
    s.container_id = spec.id;
    s.container_name = spec.name;
    this.save(s);
    const token = this.tokens.issue(req.migration_id, 'export');
    return { source: await this.hostFacts(), spec, export: { address: this.address, token } };
  }

  // ---------------- target: check_can_migrate_destination ----------------
  async checkCanMigrateDestination(req: CheckDestinationRequest): Promise<CheckDestinationResult> {
    const own = this.load(req.migration_id);
    const refusals = await this.driver.destinationRefusals(req.source ?? null, req.source_host, req.spec ?? null, {
      container_id: own?.container_id,
      volumes: own?.created_volumes,
    });
    if (refusals.length > 0) throw refusalError(`target ${this.host}`, refusals);
    return { dest: await this.hostFacts(), image_present: req.spec ? await this.driver.hasImage(req.spec.image.id) : null };
  }

  // ---------------- target: pre_migration ----------------
  async preMigration(req: PreMigrationRequest): Promise<PreMigrationResult> {
    const id = req.migration_id;
    let s = this.load(id);
    if (s && s.role !== 'target') throw new InvalidMigrationState(`migration ${id} is outgoing on ${this.host}`);
    if (s && s.phase !== 'checked' && s.phase !== 'prepared') throw new InvalidMigrationState(`migration ${id} is already ${s.phase} on ${this.host}`);
    s ??= this.newSession(id, 'target');
    s.spec = req.spec;
    s.container_name = req.spec.name;
    this.save(s);
    // A retried step finds its shell.
    if (s.container_id && (await this.driver.containerState(s.container_id)).exists && s.pre) {
      const upload = { address: this.address, token: this.tokens.issue(id, 'upload') };
      return { ...s.pre, upload };
    }
    const refusals = await this.driver.destinationRefusals(req.source ?? null, req.source_host, req.spec, {
      container_id: s.container_id,
      volumes: s.created_volumes,
    });
    if (refusals.length > 0) throw refusalError(`target ${this.host}`, refusals);

    let imageBytes = 0;
    let imageMs = 0;
    let transferred = false;
    if (!(await this.driver.hasImage(req.spec.image.id))) {
      const t0 = Date.now();
      const stream = await fetchImage(req.export.address, id, req.export.token);
      s.image_loaded = true; // from here on, rollback removes the image again
      this.save(s);
      const r = await this.driver.importImage(req.spec.image, stream);
      imageBytes = r.bytes;
      imageMs = Date.now() - t0;
      transferred = true;
    }
    const t1 = Date.now();
    for (const v of req.spec.volumes) {
      if (s.created_volumes.includes(v.name)) continue;
      if (await this.driver.volumeExists(v.name)) throw refusalError(`target ${this.host}`, [{ reason: 'volume_exists', message: `a volume named ${v.name} already exists on ${this.host}: remove or rename it there` }]);
      await this.driver.createVolume(v);
      s.created_volumes.push(v.name);
      this.save(s);
    }
    s.container_id = await this.driver.createShell(req.spec);
    this.save(s);
    const createMs = Date.now() - t1;
    if (this.faults.failPreMigration) throw new TransferFailed('fault injected: pre_migration fails after the shell was created');
    if (this.faults.delayPreMigrationMs) await new Promise((r) => setTimeout(r, this.faults.delayPreMigrationMs));
    s.pre = {
      dest_host: this.host,
      container_id: s.container_id,
      image_transferred: transferred,
      image_bytes: imageBytes,
      image_ms: imageMs,
      create_ms: createMs,
      connections_preserved: connectionsPreserved(req.spec),
    };
    s.phase = 'prepared';
    this.save(s);
    const token = this.tokens.issue(id, 'upload');
    return { ...s.pre, upload: { address: this.address, token } };
  }

  // ---------------- source: live_migration ----------------
  async liveMigration(req: LiveMigrationRequest): Promise<LiveMigrationResult> {
    const id = req.migration_id;
    const s = this.load(id) ?? this.newSession(id, 'source');
    if (s.role !== 'source') throw new InvalidMigrationState(`migration ${id} is incoming on ${this.host}`);
    if (s.phase === 'sent' && s.live) return s.live;
    if (s.phase === 'rolled_back') throw new InvalidMigrationState(`migration ${id} was rolled back on ${this.host}`);
    const containerId = req.container_id || s.container_id;
    if (!containerId) throw new InvalidInput('live_migration needs the container (call check_can_migrate_source first)');
    const spec = s.spec ?? (await this.driver.describeContainer(containerId));
    s.spec = spec;
    s.container_id = spec.id;
    s.container_name = spec.name;
    const name = checkpointName(id);
    s.checkpoint_name = name;
    this.save(s);

    const state = await this.driver.containerState(spec.id);
    let frozenAt = Date.now();
    let ckpt;
    try {
      if (state.running) {
        if (this.faults.failCheckpoint) throw new CheckpointFailed('fault injected: checkpoint fails before CRIU runs');
        s.phase = 'frozen'; // from here on, a failure means rollback on this host
        this.save(s);
        // The engine must not restart the frozen source behind our back (it would run twice).
        if (spec.restart_policy !== 'no') await this.driver.setRestartPolicy(spec.id, { Name: 'no' });
        frozenAt = Date.now();
        ckpt = await this.driver.checkpoint(spec.id, name);
        if (this.faults.delayAfterCheckpointMs) await new Promise((r) => setTimeout(r, this.faults.delayAfterCheckpointMs));
      } else if (state.exists && s.phase === 'frozen' && (await this.driver.checkpointExists(spec.id, name))) {
        // Retry after a freeze: the checkpoint is already there.
        frozenAt = s.live?.frozen_at ?? frozenAt;
        ckpt = { name, dir: '', bytes: 0, checkpoint_ms: 0, fast: false };
        const parts = await this.driver.partsToMove(spec.id, ckpt, spec);
        ckpt.dir = parts[0].dir;
      } else {
        throw new CheckpointFailed(`container ${spec.name} on ${this.host} is ${state.status} and has no checkpoint ${name}`);
      }
      const t1 = Date.now();
      const parts = await this.driver.partsToMove(spec.id, ckpt, spec);
      const receipts: PartReceipt[] = await Promise.all(
        parts.map((p) => sendTree(req.upload.address, id, req.upload.token, p.part, p.dir, p.kind, this.faults)),
      );
      const manifest: Manifest = { checkpoint_name: name, parts: receipts.map((r) => ({ part: r.part, bytes: r.bytes, sha256: r.sha256 })) };
      await commit(req.upload.address, id, req.upload.token, manifest);
      const transferMs = Date.now() - t1;
      const sum = (pred: (p: string) => boolean) => receipts.filter((r) => pred(r.part)).reduce((a, r) => a + r.bytes, 0);
      const result: LiveMigrationResult = {
        container_id: spec.id,
        checkpoint_name: name,
        fast_checkpoint: ckpt.fast,
        frozen_at: frozenAt,
        checkpoint_ms: ckpt.checkpoint_ms,
        transfer_ms: transferMs,
        memory_bytes: ckpt.bytes || sum((p) => p === 'checkpoint'),
        rootfs_bytes: sum((p) => p === 'rootfs'),
        volume_bytes: sum((p) => p.startsWith('volume/')),
        transferred_bytes: sum(() => true),
        parts: manifest.parts,
      };
      s.live = result;
      s.phase = 'sent';
      this.save(s);
      log.info({ migration: id, checkpoint_ms: result.checkpoint_ms, transfer_ms: transferMs, bytes: result.transferred_bytes }, 'sent');
      return result;
    } catch (e) {
      const err = e instanceof FerryError ? e : new TransferFailed(`live migration of ${spec.name} failed: ${(e as Error).message}`);
      if (req.rollback_on_failure !== false && s.phase === 'frozen') {
        try {
          const rb = await this.rollbackAtSource({ migration_id: id, container_id: spec.id });
          err.details.rolled_back = rb;
        } catch (rbErr) {
          err.details.rollback_error = (rbErr as Error).message;
        }
      }
      throw err;
    }
  }

  private async onCommitted(id: string, manifest: Manifest, received: PartReceipt[]): Promise<void> {
    const s = this.load(id);
    if (!s || s.role !== 'target' || !s.container_id) throw new MigrationNotFound(`no incoming migration ${id} on ${this.host}`);
    if (s.phase !== 'prepared' && s.phase !== 'received') throw new InvalidMigrationState(`migration ${id} is ${s.phase} on ${this.host}`);
    s.checkpoint_name = manifest.checkpoint_name;
    s.received = received;
    s.phase = 'received';
    this.save(s);
  }

  // ---------------- target: post_migration_at_destination ----------------
  async postMigrationAtDestination(req: PostMigrationRequest): Promise<PostMigrationResult> {
    const id = req.migration_id;
    const s = this.load(id);
    if (!s || s.role !== 'target') throw new MigrationNotFound(`no incoming migration ${id} on ${this.host}`);
    if (s.phase === 'restored' && s.post) return s.post;
    if (s.phase !== 'received' || !s.container_id || !s.checkpoint_name || !s.spec) {
      throw new InvalidMigrationState(`migration ${id} on ${this.host} is ${s.phase}: nothing complete was received`);
    }
    const cid = s.container_id;
    const t0 = Date.now();
    const incoming = this.incoming(id);
    // failRestore: a real engine failure, caused by a damaged image.
    if (this.faults.failRestore) fs.writeFileSync(path.join(incoming, 'checkpoint', 'inventory.img'), 'damaged by a fault injection\n');
    try {
      if (fs.existsSync(path.join(incoming, 'checkpoint'))) await this.driver.placeCheckpoint(cid, s.checkpoint_name, path.join(incoming, 'checkpoint'));
      if (fs.existsSync(path.join(incoming, 'rootfs'))) await this.driver.applyRootfs(cid, path.join(incoming, 'rootfs'));
      const volDir = path.join(incoming, 'volume');
      if (fs.existsSync(volDir)) {
        for (const v of fs.readdirSync(volDir)) await this.driver.applyVolume(v, path.join(volDir, v));
      }
    } catch (e) {
      throw new RestoreFailed(`placing the migrated state on ${this.host} failed: ${(e as Error).message}`);
    }
    const placeMs = Date.now() - t0;
    const r = await this.driver.restore(cid, s.checkpoint_name);
    const restoredAt = Date.now();
    const garp = await this.driver.announce(cid, s.spec).catch((e: unknown) => {
      log.warn({ migration: id, err: (e as Error).message }, 'gratuitous ARP failed');
      return false;
    });
    const v = await this.driver.verifyRunning(cid);
    if (!v.running) throw new RestoreFailed(`container ${s.spec.name} on ${this.host} is ${v.status} after the restore`);
    const result: PostMigrationResult = {
      container_id: cid,
      running: true,
      restored_at: restoredAt,
      place_ms: placeMs,
      restore_ms: r.restore_ms,
      garp_sent: garp,
      connections_preserved: connectionsPreserved(s.spec),
    };
    s.post = result;
    s.phase = 'restored';
    this.save(s);
    this.tokens.revoke(id);
    this.server.forget(id);
    fs.rmSync(incoming, { recursive: true, force: true });
    return result;
  }

  // ---------------- source: cleanup ----------------
  async cleanupSource(req: CleanupSourceRequest): Promise<CleanupSourceResult> {
    const s = this.load(req.migration_id);
    const cid = req.container_id || s?.container_id;
    if (!cid) return { container_removed: false, volumes_removed: [] };
    const st = await this.driver.containerState(cid);
    if (st.running) {
      throw new InvalidMigrationState(`container ${st.name} is running on ${this.host}: the source is removed only after the target runs it`);
    }
    const removed = st.exists ? await this.driver.removeContainer(cid) : false;
    const volumes: string[] = [];
    for (const v of s?.spec?.volumes ?? []) {
      if (s?.live && !s.live.parts.some((p) => p.part === `volume/${v.name}`)) continue; // not moved (shared): keep
      if ((await this.driver.volumeUsers(v.name, cid)).length > 0) continue;
      if (await this.driver.removeVolume(v.name)) volumes.push(v.name);
    }
    this.forget(req.migration_id);
    return { container_removed: removed, volumes_removed: volumes };
  }

  // ---------------- target: rollback ----------------
  async rollbackAtDestination(req: RollbackDestinationRequest): Promise<RollbackDestinationResult> {
    const s = this.load(req.migration_id);
    const out: RollbackDestinationResult = { container_removed: false, volumes_removed: [], image_removed: false };
    this.tokens.revoke(req.migration_id);
    if (!s) return out;
    if (s.role !== 'target') throw new InvalidMigrationState(`migration ${req.migration_id} is outgoing on ${this.host}`);
    try {
      if (s.container_id) out.container_removed = await this.driver.removeContainer(s.container_id);
      for (const v of s.created_volumes) if (await this.driver.removeVolume(v)) out.volumes_removed.push(v);
      if (s.image_loaded && s.spec) out.image_removed = await this.driver.removeImage(s.spec.image.id);
    } catch (e) {
      throw new RollbackFailed(`cleaning up migration ${req.migration_id} on ${this.host} failed: ${(e as Error).message}`);
    }
    this.forget(req.migration_id);
    return out;
  }

  // ---------------- source: rollback ----------------
  async rollbackAtSource(req: RollbackSourceRequest): Promise<RollbackSourceResult> {
    const s = this.load(req.migration_id);
    const cid = req.container_id || s?.container_id;
    if (!cid) throw new MigrationNotFound(`no outgoing migration ${req.migration_id} on ${this.host}`);
    this.tokens.revoke(req.migration_id);
    const st = await this.driver.containerState(cid);
    if (!st.exists) throw new RollbackFailed(`container ${cid.slice(0, 12)} is gone from ${this.host}: nothing to roll back to`);
    const policy = (s?.spec?.create.HostConfig as { RestartPolicy?: { Name: string; MaximumRetryCount?: number } } | undefined)?.RestartPolicy;
    if (policy && policy.Name && policy.Name !== 'no') await this.driver.setRestartPolicy(cid, policy);
    const finish = (r: RollbackSourceResult) => {
      if (s) {
        s.phase = 'rolled_back';
        this.save(s);
      }
      return r;
    };
    if (st.running) return finish({ container_id: cid, running: true, from_checkpoint: false, state_kept: true });
    const name = s?.checkpoint_name ?? checkpointName(req.migration_id);
    if (await this.driver.checkpointExists(cid, name)) {
      try {
        await this.driver.restore(cid, name);
        const v = await this.driver.verifyRunning(cid);
        if (v.running) {
          if (s?.spec) await this.driver.announce(cid, s.spec).catch(() => false);
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
    return finish({ container_id: cid, running: true, from_checkpoint: false, state_kept: false });
  }
}
