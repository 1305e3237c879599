/**
 * The agent's side of the data channel: the receiving server with its tokens and staging
 * folders, and the sending of a migration's parts to a peer. The agent asks for grants,
 * sends parts and reads what was staged; how bytes travel and are checked stays in
 * datachannel/.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidInput } from '../common/errors.js';
import { commit, fetchImage, sendTree } from './datachannel/client.js';
import { MIGRATION_ID_RE, type Manifest, type PartReceipt } from './datachannel/protocol.js';
import { DataChannelServer } from './datachannel/server.js';
import { TokenStore, type TokenPurpose } from './datachannel/tokens.js';
import type { PartSource } from './driver.js';
import type { Faults } from './faults.js';
import type { ChannelGrant } from './steps.js';

export interface TransferOptions {
  bindHost: string;
  port: number; // 0 = any free port
  /** Address peers use for this host's data channel; default bind host and the bound port. */
  advertiseHost?: string;
  maxTransferBytes: number;
}

export interface TransferHandler {
  /** Every part of a migration arrived and matches the manifest. */
  committed(migrationId: string, manifest: Manifest, received: PartReceipt[]): Promise<void>;
  /** The image a migration needs, for the target to fetch before the freeze (source side). */
  exportImage(migrationId: string): Promise<Readable>;
}

export class MigrationTransfer {
  private readonly tokens = new TokenStore();
  private readonly server: DataChannelServer;
  private stagingRoot: string | null = null;
  private address_: string | null = null;

  constructor(
    private readonly opts: TransferOptions,
    handler: TransferHandler,
    private readonly faults: () => Faults,
  ) {
    this.server = new DataChannelServer({
      bindHost: opts.bindHost,
      port: opts.port,
      maxBytes: opts.maxTransferBytes,
      tokens: this.tokens,
      handler: {
        partDir: (id, part) => {
          const dir = path.join(this.staging(id), part);
          fs.rmSync(dir, { recursive: true, force: true });
          fs.mkdirSync(dir, { recursive: true });
          return dir;
        },
        committed: (id, manifest, received) => handler.committed(id, manifest, received),
        exportImage: (id) => handler.exportImage(id),
      },
      faults: faults(),
    });
  }

  /** Listen; received parts are staged below `stagingRoot` (on the engine's own mount, so placing them is a rename). */
  async start(stagingRoot: string): Promise<string> {
    this.stagingRoot = stagingRoot;
    const bound = await this.server.listen();
    const port = bound.slice(bound.lastIndexOf(':') + 1);
    this.address_ = `${this.opts.advertiseHost || this.opts.bindHost}:${port}`;
    return this.address_;
  }

  async stop(): Promise<void> {
    await this.server.close();
  }

  get address(): string {
    if (!this.address_) throw new Error('data channel not started');
    return this.address_;
  }

  /** Injected faults changed (tests). */
  refreshFaults(): void {
    this.server.setFaults(this.faults());
  }

  /** A token that lets the peer upload to (or export from) this host for one migration. */
  grant(migrationId: string, purpose: TokenPurpose): ChannelGrant {
    return { address: this.address, token: this.tokens.issue(migrationId, purpose) };
  }

  /** Where a migration's received parts are staged on this host. */
  staging(migrationId: string): string {
    if (!this.stagingRoot) throw new Error('data channel not started');
    if (!MIGRATION_ID_RE.test(migrationId)) throw new InvalidInput(`bad migration id ${JSON.stringify(migrationId)}`);
    return path.join(this.stagingRoot, migrationId);
  }

  /** The staged folder of one received part, or null when that part did not come. */
  stagedPart(migrationId: string, part: string): string | null {
    const dir = path.join(this.staging(migrationId), part);
    return fs.existsSync(dir) ? dir : null;
  }

  /** Send every part to the peer's channel, then commit the manifest. */
  async send(migrationId: string, grant: ChannelGrant, checkpointName: string, parts: PartSource[]): Promise<{ manifest: Manifest; receipts: PartReceipt[] }> {
    const faults = this.faults();
    const receipts = await Promise.all(parts.map((p) => sendTree(grant.address, migrationId, grant.token, p.part, p.dir, p.kind, faults)));
    const manifest: Manifest = { checkpoint_name: checkpointName, parts: receipts.map((r) => ({ part: r.part, bytes: r.bytes, sha256: r.sha256 })) };
    await commit(grant.address, migrationId, grant.token, manifest);
    return { manifest, receipts };
  }

  fetchImage(migrationId: string, grant: ChannelGrant): Promise<Readable> {
    return fetchImage(grant.address, migrationId, grant.token);
  }

  /** Drop a migration's tokens, receipts and staged parts. */
  forget(migrationId: string): void {
    this.tokens.revoke(migrationId);
    this.server.forget(migrationId);
    if (this.stagingRoot) fs.rmSync(this.staging(migrationId), { recursive: true, force: true });
  }
}
