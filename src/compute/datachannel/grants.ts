/**
 * Who may send what over the data channel, and how often: the grants, plans and one-time
 * tokens of each migration (pure bookkeeping, no I/O; the server asks, this decides).
 *
 * Upload (target side):
 *  - pre_migration grants the upload: a grant token bound to the migration, to the sender
 *    (the source host's name, matched against its TLS client certificate) and to the parts
 *    the target expects (checkpoint, rootfs, volume/<name> for the volumes it created).
 *  - The sender POSTs a plan with the grant token: every part it will send with its content
 *    bytes and entry count. Only expected parts may be planned; the checkpoint must be.
 *    The answer is one token per part plus a commit token. Planning again before the commit
 *    replaces the plan (a retried live_migration step resends everything).
 *  - A part token opens exactly one PUT of its part: the first PUT claims it, a second
 *    (concurrent or later) is 409; a part that failed must be planned again.
 *  - The commit token ends the transfer; after the commit every token of the migration is
 *    spent (403 "used").
 * Export (source side): a token bound to the migration and to the receiver (the target
 * host), for one GET at a time, spent by the first complete transfer.
 *
 * Tokens are 256 random bits, kept only as SHA-256 digests and compared in constant time.
 * They are short-lived (ttlMs, minutes): a grant or plan expires ttlMs after it was issued,
 * and each finished part pushes the plan's expiry ttlMs further, so a long transfer keeps
 * its commit token while an idle one dies.
 * Refusals: no token -> ChannelTokenMissing (401); wrong, unknown, expired, used or presented
 * by the wrong host -> ChannelTokenRefused (403); a part outside the grant or plan ->
 * PartNotPlanned (403); a second PUT of a part -> PartAlreadySent (409).
 */
import crypto from 'node:crypto';
import { ChannelTokenMissing, ChannelTokenRefused, InvalidInput, PartAlreadySent, PartNotPlanned } from '../../common/errors.js';
import { isPrecopyRound } from './protocol.js';

/** What the sender declares for one part. */
export interface PlannedPart {
  part: string;
  /** Bytes of file content in the tree (sum of regular files' sizes). */
  bytes: number;
  /** Entries in the tree, its root included. */
  entries: number;
  /** Content encoding on the wire: "identity" or "gzip" (negotiated, see server.ts). */
  encoding: string;
}

type PartState = 'planned' | 'receiving' | 'received' | 'failed';

interface PartEntry extends PlannedPart {
  digest: Buffer;
  state: PartState;
}

interface UploadEntry {
  sender: string;
  expected: Set<string>;
  grantDigest: Buffer;
  grantExpires: number;
  plan: { parts: Map<string, PartEntry>; commitDigest: Buffer; expires: number; generation: number } | null;
  committed: boolean;
}

interface ExportEntry {
  receiver: string;
  digest: Buffer;
  expires: number;
  state: 'ready' | 'sending' | 'used';
}

function newToken(): { token: string; digest: Buffer } {
  const token = crypto.randomBytes(32).toString('base64url');
  return { token, digest: digestOf(token) };
}

function digestOf(token: string): Buffer {
  return crypto.createHash('sha256').update(token).digest();
}

function same(a: Buffer, presented: string): boolean {
  return crypto.timingSafeEqual(a, digestOf(presented));
}

/**
 * The authenticated peer: the names in its TLS client certificate (CN and DNS SANs), or null
 * when the channel runs without TLS ([compute] data_channel_insecure), where only the token counts.
 */
export type PeerNames = string[] | null;

function checkPeer(peer: PeerNames, bound: string, migrationId: string, role: string): void {
  if (peer === null) return;
  if (!peer.includes(bound)) {
    throw new ChannelTokenRefused(`migration ${migrationId} is bound to ${role} ${bound}, but the client certificate names ${peer.join(', ') || 'nobody'}`, {
      migration_id: migrationId,
    });
  }
}

export interface PlanAnswer {
  parts: { part: string; token: string; encoding: string }[];
  commit_token: string;
  expires_in_s: number;
}

export class TransferGrants {
  private readonly uploads = new Map<string, UploadEntry>();
  private readonly exports = new Map<string, ExportEntry>();

  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  // ---------------- upload (target side) ----------------

  /** Grant an upload for a migration (replaces an earlier grant and its plan). Returns the grant token. */
  grantUpload(migrationId: string, sender: string, expectedParts: string[]): string {
    const { token, digest } = newToken();
    this.uploads.set(migrationId, {
      sender,
      expected: new Set(expectedParts),
      grantDigest: digest,
      grantExpires: this.now() + this.ttlMs,
      plan: null,
      committed: false,
    });
    return token;
  }

  private upload(migrationId: string, presented: string | null): UploadEntry {
    if (!presented) throw new ChannelTokenMissing('a migration token is required (Authorization: Bearer ...)');
    const u = this.uploads.get(migrationId);
    if (!u) throw new ChannelTokenRefused(`token refused: no upload was granted for migration ${migrationId} on this host (unknown or revoked)`);
    if (u.committed) throw new ChannelTokenRefused(`token refused: migration ${migrationId} was already committed, its tokens are used`);
    return u;
  }

  /** The sender's expected part names (for the server's staging decisions). */
  expectedParts(migrationId: string): string[] {
    return [...(this.uploads.get(migrationId)?.expected ?? [])];
  }

  /** Check the grant token (and the sender's certificate) before anything else is looked at. */
  authorizePlan(migrationId: string, presented: string | null, peer: PeerNames): void {
    this.grantOf(migrationId, presented, peer);
  }

  private grantOf(migrationId: string, presented: string | null, peer: PeerNames): UploadEntry {
    const u = this.upload(migrationId, presented);
    if (!same(u.grantDigest, presented as string))
      throw new ChannelTokenRefused(`token refused for migration ${migrationId}: not its upload grant (wrong token)`);
    if (u.grantExpires < this.now()) throw new ChannelTokenRefused(`token refused for migration ${migrationId}: the upload grant expired`);
    checkPeer(peer, u.sender, migrationId, 'sender');
    return u;
  }

  /** Drop the current plan (its tokens die; the grant stays, so the sender may plan again). */
  revokePlan(migrationId: string): void {
    const u = this.uploads.get(migrationId);
    if (u) u.plan = null;
  }

  /** Content bytes the current plan declares in all. */
  plannedBytes(migrationId: string): number {
    const plan = this.uploads.get(migrationId)?.plan;
    return plan ? [...plan.parts.values()].reduce((a, p) => a + p.bytes, 0) : 0;
  }

  /**
   * Check the grant token and a proposed plan; on success the plan replaces any earlier one.
   * `accept(encoding)` says which encodings this host takes (others fall back to identity).
   */
  plan(migrationId: string, presented: string | null, peer: PeerNames, parts: PlannedPart[], accept: (enc: string) => boolean): PlanAnswer {
    const u = this.grantOf(migrationId, presented, peer);
    const seen = new Set<string>();
    for (const p of parts) {
      if (seen.has(p.part)) throw new InvalidInput(`part ${p.part} is planned twice`);
      seen.add(p.part);
      if (!u.expected.has(p.part)) {
        throw new PartNotPlanned(`part ${p.part} is not expected for migration ${migrationId} on this host (expected: ${[...u.expected].join(', ')})`);
      }
    }
    if (!seen.has('checkpoint') && !isPrecopyRound([...seen])) throw new InvalidInput(`the plan of migration ${migrationId} has no checkpoint`);
    const answer: PlanAnswer = { parts: [], commit_token: '', expires_in_s: Math.round(this.ttlMs / 1000) };
    const entries = new Map<string, PartEntry>();
    for (const p of parts) {
      const { token, digest } = newToken();
      const encoding = accept(p.encoding) ? p.encoding : 'identity';
      entries.set(p.part, { ...p, encoding, digest, state: 'planned' });
      answer.parts.push({ part: p.part, token, encoding });
    }
    const commit = newToken();
    answer.commit_token = commit.token;
    u.plan = { parts: entries, commitDigest: commit.digest, expires: this.now() + this.ttlMs, generation: (u.plan?.generation ?? 0) + 1 };
    return answer;
  }

  /** The current plan's generation (changes on every re-plan), or 0 without a plan. */
  generation(migrationId: string): number {
    return this.uploads.get(migrationId)?.plan?.generation ?? 0;
  }

  /** Parts of the current plan still being received. */
  receiving(migrationId: string): string[] {
    const plan = this.uploads.get(migrationId)?.plan;
    return plan ? [...plan.parts.values()].filter((p) => p.state === 'receiving').map((p) => p.part) : [];
  }

  /** Claim the single PUT of a part. Returns what the sender declared for it. */
  claimPart(migrationId: string, part: string, presented: string | null, peer: PeerNames): PlannedPart & { generation: number } {
    const u = this.upload(migrationId, presented);
    checkPeer(peer, u.sender, migrationId, 'sender');
    const plan = u.plan;
    if (!plan) throw new ChannelTokenRefused(`token refused for migration ${migrationId}: nothing was planned (POST the plan first)`);
    const p = plan.parts.get(part);
    if (!p) throw new PartNotPlanned(`part ${part} is not in the plan of migration ${migrationId}`);
    if (!same(p.digest, presented as string)) throw new ChannelTokenRefused(`token refused for part ${part} of migration ${migrationId} (wrong token)`);
    if (plan.expires < this.now()) throw new ChannelTokenRefused(`token refused for part ${part} of migration ${migrationId}: it expired`);
    if (p.state === 'receiving') throw new PartAlreadySent(`part ${part} of migration ${migrationId} is already being received`);
    if (p.state === 'received') throw new PartAlreadySent(`part ${part} of migration ${migrationId} was already received`);
    if (p.state === 'failed') throw new PartAlreadySent(`part ${part} of migration ${migrationId} failed once; plan the transfer again to resend it`);
    p.state = 'receiving';
    return { part: p.part, bytes: p.bytes, entries: p.entries, encoding: p.encoding, generation: plan.generation };
  }

  /** A claimed part arrived (ok) or failed. Ignored when the plan was replaced meanwhile. */
  finishPart(migrationId: string, part: string, generation: number, ok: boolean): void {
    const plan = this.uploads.get(migrationId)?.plan;
    if (!plan || plan.generation !== generation) return;
    const p = plan.parts.get(part);
    if (!p) return;
    p.state = ok ? 'received' : 'failed';
    if (ok) plan.expires = Math.max(plan.expires, this.now() + this.ttlMs);
  }

  /** Check the commit token; returns the plan's parts. Every part must have arrived. */
  checkCommit(migrationId: string, presented: string | null, peer: PeerNames): PlannedPart[] {
    const u = this.upload(migrationId, presented);
    checkPeer(peer, u.sender, migrationId, 'sender');
    const plan = u.plan;
    if (!plan) throw new ChannelTokenRefused(`token refused for migration ${migrationId}: nothing was planned`);
    if (!same(plan.commitDigest, presented as string)) throw new ChannelTokenRefused(`token refused for the commit of migration ${migrationId} (wrong token)`);
    if (plan.expires < this.now()) throw new ChannelTokenRefused(`token refused for the commit of migration ${migrationId}: it expired`);
    return [...plan.parts.values()].map((p) => ({ part: p.part, bytes: p.bytes, entries: p.entries, encoding: p.encoding }));
  }

  /** After the commit nothing of this migration opens anything any more. */
  markCommitted(migrationId: string): void {
    const u = this.uploads.get(migrationId);
    if (u) u.committed = true;
  }

  // ---------------- export (source side) ----------------

  grantExport(migrationId: string, receiver: string): string {
    const { token, digest } = newToken();
    this.exports.set(migrationId, { receiver, digest, expires: this.now() + this.ttlMs, state: 'ready' });
    return token;
  }

  /** Claim the image export: one GET at a time, none after a complete one. */
  claimExport(migrationId: string, presented: string | null, peer: PeerNames): void {
    if (!presented) throw new ChannelTokenMissing('a migration token is required (Authorization: Bearer ...)');
    const e = this.exports.get(migrationId);
    if (!e) throw new ChannelTokenRefused(`token refused: no image export was granted for migration ${migrationId} on this host (unknown or revoked)`);
    if (!same(e.digest, presented)) throw new ChannelTokenRefused(`token refused for the image of migration ${migrationId} (wrong token)`);
    if (e.state === 'used') throw new ChannelTokenRefused(`token refused for the image of migration ${migrationId}: already used`);
    if (e.expires < this.now()) throw new ChannelTokenRefused(`token refused for the image of migration ${migrationId}: it expired`);
    checkPeer(peer, e.receiver, migrationId, 'receiver');
    if (e.state === 'sending') throw new PartAlreadySent(`the image of migration ${migrationId} is already being sent`);
    e.state = 'sending';
  }

  finishExport(migrationId: string, ok: boolean): void {
    const e = this.exports.get(migrationId);
    if (e && e.state === 'sending') e.state = ok ? 'used' : 'ready';
  }

  // ---------------- both ----------------

  revoke(migrationId: string): void {
    this.uploads.delete(migrationId);
    this.exports.delete(migrationId);
  }

  /** Migrations that still hold an upload grant or an export token (tests, cleanup checks). */
  has(migrationId: string): boolean {
    return this.uploads.has(migrationId) || this.exports.has(migrationId);
  }
}

/** "Bearer X" -> X. */
export function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return m ? m[1] : null;
}
