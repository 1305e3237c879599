/**
 * The disk pre-copy of migrations on one agent ([compute] disk_precopy): on the source, rounds
 * of the writable layer and local volumes sent while the container runs and the last round in
 * the freeze; on the target, the copies the rounds build and their check before the restore.
 * The rounds travel as data channel parts `sync/<tree>` under the migration's upload grant
 * (so bound to the migration and the peer, over mutual TLS like every part).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TransferCorrupted } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { SYNC_PREFIX, type PartReceipt } from '../datachannel/protocol.js';
import type { PartSource } from '../driver.js';
import type { ChannelGrant, PrecopyReport } from '../steps.js';
import type { MigrationTransfer } from '../transfer.js';
import { anotherRound } from './delta.js';
import { DeltaMirror, DeltaSource, readDeltaSpec } from './tree.js';

const log = getLogger('compute.disksync');

export interface PrecopyOptions {
  /** Most rounds while the container runs (the freeze's round is one more). */
  maxRounds: number;
  /** A round that sends no more than this ends the live rounds (what is left is cheap in the freeze). */
  settledBytes?: number;
}

/** The source's rounds of one migration. */
interface Outgoing {
  trees: { tree: PartSource; source: DeltaSource }[];
  report: PrecopyReport;
  round: number;
}

export class DiskPrecopy {
  private readonly outgoing = new Map<string, Outgoing>();
  private readonly mirrors = new Map<string, Map<string, DeltaMirror>>();

  constructor(
    private readonly transfer: MigrationTransfer,
    private readonly opts: PrecopyOptions,
  ) {}

  // ---------------- source ----------------

  /**
   * Send rounds while the container runs, until they stop shrinking or the most rounds are
   * sent. `trees`: the writable layer and the local volumes (as partsToMove gives them).
   */
  async live(migrationId: string, grant: ChannelGrant, peerHost: string, checkpointName: string, trees: PartSource[]): Promise<PrecopyReport> {
    const out: Outgoing = {
      trees: trees.map((tree) => ({ tree, source: new DeltaSource(tree.dir) })),
      report: { rounds: 0, live_bytes: 0, frozen_bytes: 0 },
      round: 0,
    };
    this.outgoing.set(migrationId, out);
    fs.rmSync(this.transfer.precopyDir(migrationId, 'rounds'), { recursive: true, force: true });
    const history: number[] = [];
    while (anotherRound(history, this.opts.maxRounds, this.opts.settledBytes ?? 0)) {
      const t0 = Date.now();
      const { parts, bytes } = await this.nextRound(migrationId, out, false);
      await this.transfer.send(migrationId, grant, peerHost, checkpointName, parts);
      history.push(bytes);
      out.report.rounds++;
      out.report.live_bytes += bytes;
      log.info({ migration: migrationId, round: out.report.rounds, bytes, ms: Date.now() - t0 }, 'disk pre-copy round sent');
    }
    return out.report;
  }

  /** Whether the live rounds ran for this migration in this agent's lifetime (the freeze then sends only the last round). */
  precopied(migrationId: string): boolean {
    return this.outgoing.has(migrationId);
  }

  /** In the freeze: the last round's parts (with the manifest the target checks), to send with the checkpoint. */
  async finalParts(migrationId: string): Promise<{ parts: PartSource[]; report: PrecopyReport }> {
    const out = this.outgoing.get(migrationId);
    if (!out) throw new Error(`no disk pre-copy of migration ${migrationId} on this host`);
    const { parts, bytes } = await this.nextRound(migrationId, out, true);
    out.report.frozen_bytes = bytes;
    return { parts, report: out.report };
  }

  private async nextRound(migrationId: string, out: Outgoing, final: boolean): Promise<{ parts: PartSource[]; bytes: number }> {
    const dir = path.join(this.transfer.precopyDir(migrationId, 'rounds'), String(out.round++));
    const parts: PartSource[] = [];
    let bytes = 0;
    for (const { tree, source } of out.trees) {
      const roundDir = path.join(dir, tree.part);
      const r = await source.round(roundDir, final);
      bytes += r.bytes;
      parts.push({ part: `${SYNC_PREFIX}${tree.part}`, dir: roundDir, kind: tree.kind });
    }
    // The round before is on the target now: only the newest stays here.
    const previous = path.join(this.transfer.precopyDir(migrationId, 'rounds'), String(out.round - 2));
    fs.rmSync(previous, { recursive: true, force: true });
    return { parts, bytes };
  }

  // ---------------- target ----------------

  /** Apply the pre-copy rounds among a commit's parts to this host's copies. */
  async received(migrationId: string, received: PartReceipt[]): Promise<void> {
    for (const r of received) {
      if (!r.part.startsWith(SYNC_PREFIX)) continue;
      const staged = this.transfer.stagedPart(migrationId, r.part);
      if (!staged) throw new TransferCorrupted(`pre-copy round ${r.part} of migration ${migrationId} was committed but is not staged`);
      await this.mirror(migrationId, r.part.slice(SYNC_PREFIX.length)).apply(staged);
    }
  }

  /**
   * The freeze's round arrived: check each copy against the source's manifest and put it where
   * the restore takes the tree from (the staged part of the same name). TransferCorrupted, saying
   * what differs, when a copy is not the source's tree.
   */
  finish(migrationId: string, received: PartReceipt[]): void {
    for (const r of received) {
      if (!r.part.startsWith(SYNC_PREFIX)) continue;
      const tree = r.part.slice(SYNC_PREFIX.length);
      const staged = this.transfer.stagedPart(migrationId, r.part) as string;
      const spec = readDeltaSpec(staged);
      if (!spec.manifest) throw new TransferCorrupted(`the last pre-copy round of ${tree} (migration ${migrationId}) came without its manifest`);
      const mirror = this.mirror(migrationId, tree);
      mirror.verify(spec.manifest, spec.block_bytes);
      const dest = path.join(this.transfer.staging(migrationId), tree);
      fs.rmSync(dest, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.renameSync(mirror.root, dest);
    }
    this.mirrors.delete(migrationId);
  }

  /** A tree's copy (kept on disk beside the staging; after an agent restart its hashes are read again at the check). */
  private mirror(migrationId: string, tree: string): DeltaMirror {
    let byTree = this.mirrors.get(migrationId);
    if (!byTree) this.mirrors.set(migrationId, (byTree = new Map()));
    let m = byTree.get(tree);
    if (!m) byTree.set(tree, (m = new DeltaMirror(path.join(this.transfer.precopyDir(migrationId, 'disk'), tree))));
    return m;
  }

  /** Drop what this host holds of a migration's pre-copy (its folders go with the transfer's forget). */
  forget(migrationId: string): void {
    this.outgoing.delete(migrationId);
    this.mirrors.delete(migrationId);
  }
}
