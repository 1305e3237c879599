/** The claims aggregate: which conductor drives a migration or an evacuation (several conductors at once), and admission to hosts' slots. */
import { likePrefix, SqlStore, UNFINISHED_SQL, type ClaimKind } from './sql.js';

export type { ClaimKind } from './sql.js';

export interface Claim {
  kind: ClaimKind;
  id: string;
  owner: string;
  /** ms since the epoch (the claimants' clocks: keep them in step, as for service_down_time). */
  expires_at: number;
  admitted: boolean;
}

export interface ClaimStore {
  /**
   * Take the claim of one record for `leaseMs`: succeeds when nobody holds it, its lease has
   * run out, or `owner` holds it already (then the lease is renewed). Atomic: of conductors
   * asking at once, exactly one gets it.
   */
  claim(kind: ClaimKind, id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Extend every lease `owner` holds; returns how many it holds. */
  renewClaims(owner: string, leaseMs: number): Promise<number>;
  /** Let a claim go (the record reached its end); only its owner can. */
  releaseClaim(kind: ClaimKind, id: string, owner: string): Promise<void>;
  /** End the leases of owners whose name starts with `ownerPrefix` ('' for all), except `keep`'s. */
  expireClaims(ownerPrefix: string, keep: string): Promise<number>;
  /** Unfinished migrations (or running evacuations) nobody holds a live claim of, oldest first. */
  claimable(kind: ClaimKind): Promise<string[]>;
  getClaim(kind: ClaimKind, id: string): Promise<Claim | null>;
  /**
   * Let a migration `owner` holds take its slots on `hosts` when none of them runs
   * `maxPerHost` migrations already (counted over every conductor: migrations past `accepted`
   * and admitted ones). Atomic across conductors. Returns whether it was admitted.
   */
  admit(uuid: string, owner: string, hosts: readonly string[], maxPerHost: number): Promise<boolean>;
}

export class SqlClaims extends SqlStore implements ClaimStore {
  async claim(kind: ClaimKind, id: string, owner: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    const ins = await this.driver.exec(`${this.d.insertIgnore} INTO claims (kind, id, owner, expires_at, admitted) VALUES (?, ?, ?, ?, 0)`, [
      kind,
      id,
      owner,
      now + leaseMs,
    ]);
    if (ins.changes === 1) return true;
    const upd = await this.driver.exec('UPDATE claims SET owner = ?, expires_at = ? WHERE kind = ? AND id = ? AND (owner = ? OR expires_at < ?)', [
      owner,
      now + leaseMs,
      kind,
      id,
      owner,
      now,
    ]);
    return upd.changes === 1;
  }

  async renewClaims(owner: string, leaseMs: number): Promise<number> {
    return (await this.driver.exec("UPDATE claims SET expires_at = ? WHERE owner = ? AND kind != 'lock'", [Date.now() + leaseMs, owner])).changes;
  }

  async releaseClaim(kind: ClaimKind, id: string, owner: string): Promise<void> {
    await this.driver.exec('DELETE FROM claims WHERE kind = ? AND id = ? AND owner = ?', [kind, id, owner]);
  }

  async expireClaims(ownerPrefix: string, keep: string): Promise<number> {
    return (
      await this.driver.exec("UPDATE claims SET expires_at = 0 WHERE kind != 'lock' AND owner LIKE ? ESCAPE '!' AND owner != ?", [
        likePrefix(ownerPrefix),
        keep,
      ])
    ).changes;
  }

  async claimable(kind: ClaimKind): Promise<string[]> {
    const [table, key, unfinished] =
      kind === 'migration' ? ['migrations', 'uuid', `r.status IN ${UNFINISHED_SQL}`] : ['evacuations', 'uuid', "r.status = 'running'"];
    const rows = await this.driver.query<{ id: string }>(
      `SELECT r.${key} AS id FROM ${table} r LEFT JOIN claims c ON c.kind = ? AND c.id = r.${key}
       WHERE ${unfinished} AND (c.id IS NULL OR c.expires_at < ?) ORDER BY r.created_at, r.${this.d.seq}`,
      [kind, Date.now()],
    );
    return rows.map((r) => r.id);
  }

  async getClaim(kind: ClaimKind, id: string): Promise<Claim | null> {
    const rows = await this.driver.query<Record<string, unknown>>('SELECT kind, id, owner, expires_at, admitted FROM claims WHERE kind = ? AND id = ?', [
      kind,
      id,
    ]);
    if (!rows.length) return null;
    const r = rows[0];
    return { kind: r.kind as ClaimKind, id: r.id as string, owner: r.owner as string, expires_at: Number(r.expires_at), admitted: Boolean(Number(r.admitted)) };
  }

  async admit(uuid: string, owner: string, hosts: readonly string[], maxPerHost: number): Promise<boolean> {
    if (hosts.length === 0) return false;
    return this.driver.transaction(async (tx) => {
      const mine = await tx.query<{ admitted: unknown }>("SELECT admitted FROM claims WHERE kind = 'migration' AND id = ? AND owner = ?", [uuid, owner]);
      if (mine.length === 0) return false;
      // Admitted before (by this conductor, or by one it took the migration over from): the slots are its already.
      if (Number(mine[0].admitted) === 1) return true;
      // One admission at a time across conductors: the lock row is written first (MySQL row lock; SQLite's transaction is one writer).
      await tx.exec("UPDATE claims SET expires_at = expires_at + 1 WHERE kind = 'lock' AND id = 'admission'");
      const marks = hosts.map(() => '?').join(', ');
      const busy = await tx.query<{ source_host: string; dest_host: string | null }>(
        `SELECT m.source_host, m.dest_host FROM migrations m LEFT JOIN claims c ON c.kind = 'migration' AND c.id = m.uuid
         WHERE m.status IN ${UNFINISHED_SQL} AND m.uuid != ? AND (m.status != 'accepted' OR c.admitted = 1)
           AND (m.source_host IN (${marks}) OR m.dest_host IN (${marks}))`,
        [uuid, ...hosts, ...hosts],
      );
      const count = new Map<string, number>();
      for (const b of busy) for (const h of new Set([b.source_host, b.dest_host])) if (h) count.set(h, (count.get(h) ?? 0) + 1);
      if (hosts.some((h) => (count.get(h) ?? 0) >= maxPerHost)) return false;
      const r = await tx.exec("UPDATE claims SET admitted = 1 WHERE kind = 'migration' AND id = ? AND owner = ?", [uuid, owner]);
      return r.changes === 1;
    });
  }
}
