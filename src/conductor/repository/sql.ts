/**
 * What every part of the SQL repository shares: statement helpers, and the fence of a claim
 * (a view whose writes to one record need its claim, see Repository.fenced).
 */
import { ClaimLost } from '../../common/errors.js';
import type { SqlDriver, SqlExecutor } from '../../db/driver.js';
import { FINAL_STATUSES, MIGRATION_STATUSES } from '../../objects/migration.js';

/** What a claim is of. */
export type ClaimKind = 'migration' | 'evacuation';

/** The claim a fenced view's writes need. */
export interface Fence {
  kind: ClaimKind;
  id: string;
  owner: string;
}

/** The status a removed container keeps for a while, so that a late older report cannot bring it back. */
export const REMOVED = 'removed';

/** Statuses of a migration that may still change, as a list an index on status can look up (NOT IN of the final ones reads every migration ever recorded). */
export const UNFINISHED_SQL = `(${MIGRATION_STATUSES.filter((s) => !FINAL_STATUSES.includes(s))
  .map((s) => `'${s}'`)
  .join(', ')})`;
/** Rows per multi-row statement (inventories, deletes, IN lists): well under either engine's placeholder limit. */
const CHUNK = 200;

export function chunks<T>(xs: readonly T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

export function marks(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** A LIKE pattern matching what starts with `prefix`, its wildcards taken literally ('!' escapes the same in both dialects). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[%_!]/g, (ch) => `!${ch}`)}%`;
}

/**
 * The least string greater than every string that starts with `prefix` (its last code point
 * plus one), or null when there is none: with `prefix` as the lower bound, a range an index
 * can be searched by in both engines (SQLite's LIKE uses no index on a case-sensitive column).
 */
export function prefixEnd(prefix: string): string | null {
  const cps = Array.from(prefix);
  while (cps.length) {
    let next = (cps.pop() as string).codePointAt(0) as number;
    next += 1;
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
    if (next <= 0x10ffff) return cps.join('') + String.fromCodePoint(next);
  }
  return null;
}

/** Integers as numbers (MySQL hands BIGINT columns over as numbers or strings). */
export function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

export function toDb(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

/** A part of the repository: the driver, and the fence when it is a fenced view. */
export class SqlStore {
  constructor(
    protected readonly driver: SqlDriver,
    /** Set on a fenced view (fenced()): writes to this record need the claim. */
    protected readonly fence?: Fence,
  ) {}

  protected get d() {
    return this.driver.dialect;
  }

  /** The condition that `fence` still holds its claim (to AND into a write's WHERE), and its parameters. */
  protected fenceOf(kind: ClaimKind, id: string): { sql: string; args: unknown[] } {
    const f = this.fence;
    if (!f || f.kind !== kind || f.id !== id) return { sql: '', args: [] };
    return { sql: ' AND EXISTS (SELECT 1 FROM claims WHERE kind = ? AND id = ? AND owner = ?)', args: [f.kind, f.id, f.owner] };
  }

  protected async checkFence(x: SqlExecutor, kind: ClaimKind, id: string): Promise<void> {
    const f = this.fenceOf(kind, id);
    if (!f.sql) return;
    const held = await x.query(`SELECT owner FROM claims WHERE kind = ? AND id = ? AND owner = ?${this.d.forUpdate}`, f.args);
    if (held.length === 0) throw this.lost(kind, id);
  }

  protected lost(kind: ClaimKind, id: string): Error {
    return new ClaimLost(`this conductor (${this.fence?.owner}) no longer holds the claim of ${kind} ${id}: another conductor took it over`, { kind, id });
  }

  /**
   * Lock hosts' rows before changing their containers, so that each host's container_count is
   * recounted by one writer at a time, after the previous one committed (MariaDB reads committed
   * data statement by statement). SQLite has one writer already.
   */
  protected async lockHosts(tx: SqlExecutor, hosts: Iterable<string>): Promise<void> {
    if (!this.d.forUpdate) return;
    const names = [...new Set(hosts)].sort();
    if (names.length) await tx.query(`SELECT name FROM compute_hosts WHERE name IN (${marks(names.length)}) ORDER BY name${this.d.forUpdate}`, names);
  }

  /** Set the hosts' container_count from their containers (within the transaction that changed them). */
  protected async recount(tx: SqlExecutor, hosts: Iterable<string>): Promise<void> {
    const names = [...new Set(hosts)];
    if (!names.length) return;
    await tx.exec(
      `UPDATE compute_hosts SET container_count = (SELECT COUNT(*) FROM containers c WHERE c.host = compute_hosts.name AND c.status != ?) WHERE name IN (${marks(names.length)})`,
      [REMOVED, ...names],
    );
  }
}
