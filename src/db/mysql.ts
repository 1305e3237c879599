/**
 * The networked backend: MariaDB (or MySQL, or a MariaDB Galera cluster) through mysql2/promise
 * pools, as every other OpenStack service keeps its state. A transaction runs on one pooled
 * connection; one that the server rolled back (a deadlock, a lock wait time-out, a Galera
 * certification conflict, a node not ready) is run again from its start, as oslo.db's
 * wrap_db_retry does. With several servers listed (a Galera cluster's nodes) the driver uses the
 * first that answers and moves on to the next when it stops answering.
 */
import mysql from 'mysql2/promise';
import { DatabaseError } from '../common/errors.js';
import { sleep } from '../common/sleep.js';
import { bindable, valueRows, type Dialect, type ExecResult, type Row, type SqlDriver, type SqlExecutor } from './driver.js';

export interface MysqlServer {
  host: string;
  port: number;
}

export interface MysqlTarget extends MysqlServer {
  /** Further servers of the same (Galera) cluster, tried in order when the one in use fails. */
  failover?: readonly MysqlServer[];
  user: string;
  password: string;
  database: string;
}

export const mysqlDialect: Dialect = {
  name: 'mysql',
  types: {
    key: 'VARCHAR(255)',
    text: 'MEDIUMTEXT',
    int: 'BIGINT',
    seq: 'seq BIGINT NOT NULL AUTO_INCREMENT UNIQUE,\n     ',
    // Binary collation: the same order and equality as SQLite (case-sensitive names, keyset paging).
    table: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
  },
  seq: 'seq',
  insertIgnore: 'INSERT IGNORE',
  forUpdate: ' FOR UPDATE',
  upsert(table, cols, key, update, newerBy, rows = 1) {
    // No WHERE in ON DUPLICATE KEY UPDATE: "only if not newer" is a condition per column, with
    // `newerBy` assigned last so that the others still compare against the stored value.
    const cond = newerBy ? `${table}.${newerBy} <= VALUES(${newerBy})` : '';
    const cols2 = newerBy ? [...update.filter((c) => c !== newerBy), ...(update.includes(newerBy) ? [newerBy] : [])] : update;
    const set = cols2.map((c) => (cond ? `${c} = IF(${cond}, VALUES(${c}), ${table}.${c})` : `${c} = VALUES(${c})`)).join(', ');
    void key; // the table's primary key decides the conflict
    return `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${valueRows(cols.length, rows)} ON DUPLICATE KEY UPDATE ${set}`;
  },
};

/** The table that records the schema version (SQLite keeps it in user_version). */
const VERSION_TABLE = 'ferry_schema_version';

/**
 * The server rolled the transaction (or the statement) back, or never ran it: running it again
 * is safe. Galera reports a certification conflict (another node committed a conflicting write
 * first) as ER_LOCK_DEADLOCK (1213), like InnoDB's own deadlocks; a node that is not part of the
 * primary component, or still joining, rejects statements with 1047 (ER_UNKNOWN_COM_ERROR,
 * "WSREP has not yet prepared node for application use"): another node may take them.
 */
const ROLLED_BACK = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);
const NODE_NOT_READY = 'ER_UNKNOWN_COM_ERROR';
/** The connection to the server failed or broke: where a statement was in flight, its outcome is unknown. */
const CONNECTION_LOST = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
]);
/** Attempts of one transaction or statement before its error is the caller's. */
const MAX_ATTEMPTS = 8;

function codeOf(e: unknown): string {
  return (e as { code?: string }).code ?? '';
}

/** 1047 is also MariaDB's "unknown command": only Galera's wording means another node may take it. */
function isNodeNotReady(e: unknown): boolean {
  return codeOf(e) === NODE_NOT_READY && /WSREP/i.test((e as Error).message ?? '');
}

function isConnectionLost(e: unknown): boolean {
  return CONNECTION_LOST.has(codeOf(e)) || (e as { fatal?: boolean }).fatal === true;
}

/** Whether a failed statement (or transaction) may run again, on the same server or the next. */
export function retryable(e: unknown, phase: 'before-commit' | 'commit'): boolean {
  const code = codeOf(e);
  if (ROLLED_BACK.has(code) || isNodeNotReady(e)) return true;
  // A connection that broke before COMMIT was sent takes its uncommitted transaction with it.
  return phase !== 'commit' && isConnectionLost(e);
}

function backoff(attempt: number): Promise<void> {
  return sleep(Math.min(10 * 2 ** attempt, 1000) + Math.floor(Math.random() * 20));
}

function changes(r: unknown): number {
  return (r as mysql.ResultSetHeader).affectedRows ?? 0;
}

class ConnExecutor implements SqlExecutor {
  constructor(private readonly c: mysql.PoolConnection) {}
  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    const [rows] = await this.c.query(sql, bindable(params));
    return rows as T[];
  }
  async exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
    const [r] = await this.c.query(sql, bindable(params));
    return { changes: changes(r) };
  }
}

export interface MysqlOptions {
  connectionLimit?: number;
  /** Told when the server in use stopped answering and the next one listed is used (for the log). */
  onFailover?: (from: string, to: string, why: string) => void;
}

/** A statement that only reads: run again after a broken connection, it changes nothing twice. */
const READ_ONLY = /^\s*(SELECT|SHOW)\b/i;

export class MysqlDriver implements SqlDriver {
  readonly dialect = mysqlDialect;
  readonly description: string;
  private readonly servers: readonly MysqlServer[];
  private readonly pools: (mysql.Pool | null)[];
  /** The server in use: the first listed until it fails, then the next that answers. */
  private current = 0;
  /** Statements and transactions run again after the server rolled them back or a server failed. */
  retried = 0;

  constructor(
    private readonly target: MysqlTarget,
    private readonly opts: MysqlOptions = {},
  ) {
    this.servers = [{ host: target.host, port: target.port }, ...(target.failover ?? [])];
    this.pools = this.servers.map(() => null);
    const more =
      this.servers.length > 1
        ? ` (then ${this.servers
            .slice(1)
            .map((s) => `${s.host}:${s.port}`)
            .join(', ')})`
        : '';
    this.description = `mysql://${target.user}@${target.host}:${target.port}/${target.database}${more}`;
  }

  /** The server a statement runs on now (host:port). */
  get server(): string {
    const s = this.servers[this.current];
    return `${s.host}:${s.port}`;
  }

  private pool(i: number): mysql.Pool {
    const existing = this.pools[i];
    if (existing) return existing;
    const t = this.target;
    const pool = mysql.createPool({
      host: this.servers[i].host,
      port: this.servers[i].port,
      user: t.user,
      password: t.password,
      database: t.database,
      charset: 'utf8mb4',
      connectionLimit: this.opts.connectionLimit ?? 10,
      supportBigNumbers: true,
      // No LOAD DATA LOCAL: the server must not be able to ask for the conductor's files.
      flags: ['-LOCAL_FILES'],
      connectTimeout: this.servers.length > 1 ? 3_000 : 10_000,
    });
    // Each statement sees what others committed before it (as SQLite's single writer does); no gap locks.
    // Strict: a value that does not fit is an error, never silently cut. (Queued ahead of the connection's first use.)
    pool.pool.on('connection', (c) => {
      for (const sql of ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"]) {
        c.query(sql, (err: Error | null) => {
          if (err) c.destroy();
        });
      }
    });
    this.pools[i] = pool;
    return pool;
  }

  /**
   * A connection to the server in use, else to the next listed that accepts one. With several
   * servers a pooled connection is pinged first (as oslo.db's pool pre-ping): one left over from
   * a server that went away is dropped here, not found broken under a write.
   */
  private async connect(): Promise<{ conn: mysql.PoolConnection; server: number }> {
    let last: unknown;
    for (let k = 0; k < this.servers.length; k++) {
      const i = (this.current + k) % this.servers.length;
      for (let stale = 0; stale <= (this.opts.connectionLimit ?? 10); stale++) {
        let conn: mysql.PoolConnection;
        try {
          conn = await this.pool(i).getConnection();
        } catch (e) {
          if (!isConnectionLost(e)) throw e;
          last = e;
          break;
        }
        try {
          if (this.servers.length > 1) await conn.ping();
          if (i !== this.current) this.moveTo(i, last);
          return { conn, server: i };
        } catch (e) {
          conn.destroy();
          if (!isConnectionLost(e)) throw e;
          last = e;
        }
      }
    }
    throw last;
  }

  /** Give a connection back to its pool; one that broke is closed instead. */
  private done(conn: mysql.PoolConnection, e?: unknown): void {
    if (e !== undefined && isConnectionLost(e)) conn.destroy();
    else conn.release();
  }

  /**
   * Run again what `retryable` allows; a broken connection only when there is another server to
   * go to (one server that stopped answering is the caller's error at once, as before).
   */
  private mayRetry(e: unknown, phase: 'before-commit' | 'commit'): boolean {
    return retryable(e, phase) && (this.servers.length > 1 || !isConnectionLost(e));
  }

  /** The server `i` failed: the next statements go to the next one listed. */
  private failed(i: number, e: unknown): void {
    if (this.servers.length === 1 || this.current !== i) return;
    if (!isNodeNotReady(e) && !isConnectionLost(e)) return;
    this.moveTo((i + 1) % this.servers.length, e);
  }

  private moveTo(i: number, why: unknown): void {
    const from = this.server;
    this.current = i;
    this.opts.onFailover?.(from, this.server, (why as Error | undefined)?.message ?? 'no answer');
  }

  /** One statement on its own (autocommit), run again where that is safe. */
  private async statement<T>(sql: string, run: (x: ConnExecutor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let server = -1;
      try {
        const c = await this.connect();
        server = c.server;
        try {
          const r = await run(new ConnExecutor(c.conn));
          this.done(c.conn);
          return r;
        } catch (e) {
          this.done(c.conn, e);
          throw e;
        }
      } catch (e) {
        if (server >= 0) this.failed(server, e);
        // A write whose connection broke may have committed: only the caller can tell.
        const phase = server < 0 || READ_ONLY.test(sql) ? 'before-commit' : 'commit';
        if (!this.mayRetry(e, phase) || attempt >= MAX_ATTEMPTS) throw this.unknownOutcome(e, phase);
        this.retried++;
        await backoff(attempt);
      }
    }
  }

  private unknownOutcome(e: unknown, phase: 'before-commit' | 'commit'): unknown {
    if (phase === 'commit' && isConnectionLost(e)) {
      return new DatabaseError(`the connection to ${this.server} broke while a write was being committed; whether it was is unknown: ${(e as Error).message}`);
    }
    return e;
  }

  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.statement(sql, (x) => x.query<T>(sql, params));
  }

  exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
    return this.statement(sql, (x) => x.exec(sql, params));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let conn: mysql.PoolConnection;
      let server: number;
      try {
        ({ conn, server } = await this.connect());
      } catch (e) {
        // No server took a connection: nothing ran yet.
        if (!this.mayRetry(e, 'before-commit') || attempt >= MAX_ATTEMPTS) throw e;
        this.retried++;
        await backoff(attempt);
        continue;
      }
      let phase: 'before-commit' | 'commit' = 'before-commit';
      try {
        await conn.query('START TRANSACTION');
        const r = await fn(new ConnExecutor(conn));
        phase = 'commit';
        await conn.query('COMMIT');
        this.done(conn);
        return r;
      } catch (e) {
        if (!isConnectionLost(e)) await conn.query('ROLLBACK').catch(() => undefined);
        this.done(conn, e);
        this.failed(server, e);
        if (!this.mayRetry(e, phase) || attempt >= MAX_ATTEMPTS) throw this.unknownOutcome(e, phase);
        this.retried++;
        await backoff(attempt);
      }
    }
  }

  async schemaVersion(): Promise<number> {
    const t = await this.query<{ n: number }>('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?', [
      VERSION_TABLE,
    ]);
    if (Number(t[0].n) === 0) return 0;
    const rows = await this.query<{ version: number }>(`SELECT version FROM ${VERSION_TABLE}`);
    return rows.length ? Number(rows[0].version) : 0;
  }

  async applySchema(version: number, statements: readonly string[]): Promise<void> {
    // MySQL commits DDL statement by statement: the version is recorded once all of them ran.
    await this.exec(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER NOT NULL)${mysqlDialect.types.table}`);
    for (const s of statements) {
      try {
        await this.exec(s);
      } catch (e) {
        throw new DatabaseError(`schema version ${version} failed at "${s.split('\n')[0]}": ${(e as Error).message}`);
      }
    }
    await this.transaction(async (tx) => {
      await tx.exec(`DELETE FROM ${VERSION_TABLE}`);
      await tx.exec(`INSERT INTO ${VERSION_TABLE} (version) VALUES (?)`, [version]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p?.end()));
  }
}
