/**
 * The agent's side of the data channel: the receiving server with its grants and staging
 * folders, and the sending of a migration's parts to a peer. The agent grants uploads and
 * image exports (each bound to the migration and to the peer host), sends parts and reads
 * what was staged; how bytes travel and are checked stays in datachannel/.
 *
 * Settings ([compute] in the configuration, built by index.ts): mutual TLS with this host's
 * certificate (data_channel_cert_file/key_file/ca_file) unless data_channel_insecure; tokens
 * valid data_channel_token_ttl seconds; migration_compression; migration_bandwidth.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidInput, TransferFailed } from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { TransferGrants } from './datachannel/grants.js';
import { MIGRATION_ID_RE, SYNC_PREFIX, type Encoding, type Manifest, type PartReceipt } from './datachannel/protocol.js';
import { DataChannelServer, type ReceiveStage } from './datachannel/receiver.js';
import { fetchImage, transferParts, type ChannelClientOptions } from './datachannel/sender.js';
import type { TlsMaterial } from './datachannel/tls.js';
import type { PartSource } from './driver.js';
import type { ChannelGrant } from './steps.js';

const log = getLogger('compute.transfer');

/** How this host's data channel runs. */
export interface ChannelSettings {
  /** This host's certificate, key and the deployment CA; null = plain HTTP, no host authentication. */
  tls: TlsMaterial | null;
  /** How long grants and plans stay valid, ms (default 10 minutes). */
  tokenTtlMs?: number;
  /** Ask the target to take parts gzip-compressed (default: none). */
  compression?: Encoding;
  /** Cap for one migration's transfer, bytes/s (0 or absent = unlimited). */
  bandwidthBytesPerSec?: number;
  /** Most entries one migration may declare, all parts together ([compute] max_transfer_entries). */
  maxTransferEntries?: number;
  /** What fault injection puts around the channel's two ends (faults.ts installs it in tests; production: none). */
  wrappers?: ChannelWrappers;
}

/** Changes to the data channel's ends, made only by fault injection. */
export interface ChannelWrappers {
  /** The client settings of one migration's send, from this host's own. */
  sending(client: ChannelClientOptions): ChannelClientOptions;
  /** A stage in front of each received part's digest. */
  receiving: ReceiveStage;
}

export interface TransferOptions {
  bindHost: string;
  port: number; // 0 = any free port
  /** Address peers use for this host's data channel; default bind host and the bound port. */
  advertiseHost?: string;
  maxTransferBytes: number;
  /** Absent: plain HTTP (in-process tests and the bench); the service always passes its configuration. */
  channel?: ChannelSettings;
}

export interface TransferHandler {
  /** Every planned part of a migration arrived and matches the commit; the checkpoint name is this host's. */
  committed(migrationId: string, manifest: Manifest, received: PartReceipt[]): Promise<void>;
  /** The image a migration needs, for the target to fetch before the freeze (source side). */
  exportImage(migrationId: string): Promise<Readable>;
}

/**
 * The parts a target expects for a migration: the checkpoint, the rootfs diff, the volumes it
 * created, and their disk pre-copy rounds (sent when the source host pre-copies, ../disksync/).
 */
export function expectedParts(createdVolumes: string[]): string[] {
  const trees = ['rootfs', ...createdVolumes.map((v) => `volume/${v}`)];
  return ['checkpoint', ...trees, ...trees.map((t) => `${SYNC_PREFIX}${t}`)];
}

export class MigrationTransfer {
  readonly grants: TransferGrants;
  private readonly server: DataChannelServer;
  private readonly client: ChannelClientOptions;
  private stagingRoot: string | null = null;
  private address_: string | null = null;

  constructor(
    private readonly opts: TransferOptions & { driver: { host: string; checkpointName(id: string): string } },
    handler: TransferHandler,
  ) {
    const channel = opts.channel ?? { tls: null };
    this.grants = new TransferGrants(channel.tokenTtlMs ?? 600_000);
    this.client = { tls: channel.tls, compression: channel.compression ?? 'identity', bandwidthBytesPerSec: channel.bandwidthBytesPerSec ?? 0 };
    const host = opts.driver.host;
    this.server = new DataChannelServer({
      host,
      bindHost: opts.bindHost,
      port: opts.port,
      maxBytes: opts.maxTransferBytes,
      maxEntries: channel.maxTransferEntries,
      grants: this.grants,
      tls: channel.tls,
      handler: {
        stagingDir: (id) => this.staging(id),
        checkpointName: (id) => opts.driver.checkpointName(id),
        committed: (id, received) =>
          handler.committed(
            id,
            { checkpoint_name: opts.driver.checkpointName(id), parts: received.map((r) => ({ part: r.part, bytes: r.bytes, sha256: r.sha256 })) },
            received,
          ),
        exportImage: (id) => handler.exportImage(id),
      },
      receiveStage: channel.wrappers?.receiving,
    });
  }

  /** Listen; received parts are staged below `stagingRoot` (on the engine's own mount, so placing them is a rename). */
  async start(stagingRoot: string): Promise<string> {
    this.stagingRoot = stagingRoot;
    const bound = await this.server.listen();
    const port = bound.slice(bound.lastIndexOf(':') + 1);
    this.address_ = `${this.opts.advertiseHost || this.opts.bindHost}:${port}`;
    if (!this.server.secure)
      log.warn({ host: this.opts.driver.host }, 'data channel without TLS: plain HTTP, peers are not authenticated ([compute] data_channel_insecure)');
    return this.address_;
  }

  async stop(): Promise<void> {
    await this.server.close();
  }

  get address(): string {
    if (!this.address_) throw new Error('data channel not started');
    return this.address_;
  }

  /** Let `sender` (the source host) upload the expected parts of a migration here (replaces an earlier grant). */
  grantUpload(migrationId: string, sender: string, parts: string[]): ChannelGrant {
    return { address: this.address, token: this.grants.grantUpload(migrationId, sender, parts) };
  }

  /** Let `receiver` (the target host) fetch the migration's image from here, once. */
  grantExport(migrationId: string, receiver: string): ChannelGrant {
    return { address: this.address, token: this.grants.grantExport(migrationId, receiver) };
  }

  /** Where a migration's received parts are staged on this host. */
  staging(migrationId: string): string {
    if (!this.stagingRoot) throw new Error('data channel not started');
    if (!MIGRATION_ID_RE.test(migrationId)) throw new InvalidInput(`bad migration id ${JSON.stringify(migrationId)}`);
    return path.join(this.stagingRoot, migrationId);
  }

  /**
   * A folder of a migration beside its staging, which a new plan does not empty: `disk` the
   * target's copy of the pre-copied trees, `rounds` the source's outgoing rounds.
   */
  precopyDir(migrationId: string, what: 'disk' | 'rounds'): string {
    return `${this.staging(migrationId)}.${what}`;
  }

  /** The staged folder of one received part, or null when that part did not come. */
  stagedPart(migrationId: string, part: string): string | null {
    const dir = path.join(this.staging(migrationId), part);
    return fs.existsSync(dir) ? dir : null;
  }

  /**
   * Send every part to `peerHost` (whose certificate must name it), then commit. The target
   * names the checkpoint; it must be the name this host used (both derive it from the id).
   */
  async send(migrationId: string, grant: ChannelGrant, peerHost: string, checkpointName: string, parts: PartSource[]): Promise<{ receipts: PartReceipt[] }> {
    const client = this.opts.channel?.wrappers?.sending(this.client) ?? this.client;
    const out = await transferParts(
      client,
      { ...grant, host: peerHost },
      migrationId,
      parts.map((p) => ({ part: p.part, dir: p.dir, kind: p.kind })),
    );
    if (out.checkpoint_name !== checkpointName) {
      throw new TransferFailed(`target ${peerHost} restores migration ${migrationId} as checkpoint ${out.checkpoint_name}, this host dumped ${checkpointName}`);
    }
    return { receipts: out.receipts };
  }

  /** The image stream from `peerHost`'s channel (whose certificate must name it). */
  fetchImage(migrationId: string, grant: ChannelGrant, peerHost: string): Promise<Readable> {
    return fetchImage(this.client, { ...grant, host: peerHost }, migrationId);
  }

  /** Whether any grant or token of the migration is still alive here (tests, cleanup checks). */
  holdsTokens(migrationId: string): boolean {
    return this.grants.has(migrationId);
  }

  /** Drop a migration's grants, what is still arriving, and its staged parts. */
  forget(migrationId: string): void {
    this.grants.revoke(migrationId);
    this.server.forget(migrationId);
    if (this.stagingRoot) {
      fs.rmSync(this.staging(migrationId), { recursive: true, force: true });
      for (const what of ['disk', 'rounds'] as const) fs.rmSync(this.precopyDir(migrationId, what), { recursive: true, force: true });
    }
  }
}
