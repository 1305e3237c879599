/**
 * One-time tokens of the data channel: one per migration and purpose, random 256 bits,
 * kept only as a SHA-256 digest, compared in constant time, revoked when the migration is
 * committed, rolled back or cleaned up.
 */
import crypto from 'node:crypto';

export type TokenPurpose = 'upload' | 'export';
export type TokenVerdict = 'ok' | 'missing' | 'wrong' | 'used' | 'unknown';

interface Entry {
  digest: Buffer;
  used: boolean;
  expires: number;
}

function digest(token: string): Buffer {
  return crypto.createHash('sha256').update(token).digest();
}

export class TokenStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly ttlMs = 6 * 3600_000) {}

  private key(migrationId: string, purpose: TokenPurpose) {
    return `${purpose}:${migrationId}`;
  }

  /** A new token for this migration and purpose (replaces any earlier one). */
  issue(migrationId: string, purpose: TokenPurpose): string {
    const token = crypto.randomBytes(32).toString('base64url');
    this.entries.set(this.key(migrationId, purpose), { digest: digest(token), used: false, expires: Date.now() + this.ttlMs });
    return token;
  }

  check(migrationId: string, purpose: TokenPurpose, presented: string | null | undefined): TokenVerdict {
    const e = this.entries.get(this.key(migrationId, purpose));
    if (!presented) return 'missing';
    if (!e || e.expires < Date.now()) return 'unknown';
    if (!crypto.timingSafeEqual(e.digest, digest(presented))) return 'wrong';
    if (e.used) return 'used';
    return 'ok';
  }

  /** After a successful commit the token opens nothing any more. */
  consume(migrationId: string, purpose: TokenPurpose): void {
    const e = this.entries.get(this.key(migrationId, purpose));
    if (e) e.used = true;
  }

  revoke(migrationId: string): void {
    this.entries.delete(this.key(migrationId, 'upload'));
    this.entries.delete(this.key(migrationId, 'export'));
  }

  has(migrationId: string, purpose: TokenPurpose): boolean {
    return this.entries.has(this.key(migrationId, purpose));
  }
}

/** "Bearer X" -> X. */
export function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return m ? m[1] : null;
}
