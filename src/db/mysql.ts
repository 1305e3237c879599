/**
 * The networked backend: MariaDB (or MySQL) through a mysql2/promise pool, as every other
 * OpenStack service keeps its state. A transaction runs on one pooled connection; one that
 * meets a deadlock or a lock wait time-out is run again (a few times) from its start.
 */
import mysql from 'mysql2/promise';
import { DatabaseError } from '../common/errors.js';
import { sleep } from '../common/sleep.js';
import { bindable, valueRows, type Dialect, type ExecResult, type Row, type SqlDriver, type SqlExecutor } from './driver.js';

export interface MysqlTarget {
  host: string;
  port: number;
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

const RETRYABLE = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);

function changes(r: unknown): number {
  return (r as mysql.ResultSetHeader).affectedRows ?? 0;
}

class ConnExecutor implements SqlExecutor {
  constructor(private readonly c: mysql.PoolConnection | mysql.Pool) {}
  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    const [rows] = await this.c.query(sql, bindable(params));
    return rows as T[];
  }
  async exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
    const [r] = await this.c.query(sql, bindable(params));
    return { changes: changes(r) };
  }
}

export class MysqlDriver implements SqlDriver {
  readonly dialect = mysqlDialect;
  readonly description: string;
  private readonly pool: mysql.Pool;
  private readonly direct: ConnExecutor;

  constructor(target: MysqlTarget, opts: { connectionLimit?: number } = {}) {
    this.description = `mysql://${target.user}@${target.host}:${target.port}/${target.database}`;
    this.pool = mysql.createPool({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      charset: 'utf8mb4',
      connectionLimit: opts.connectionLimit ?? 10,
      supportBigNumbers: true,
      // No LOAD DATA LOCAL: the server must not be able to ask for the conductor's files.
      flags: ['-LOCAL_FILES'],
      connectTimeout: 10_000,
    });
    // Each statement sees what others committed before it (as SQLite's single writer does); no gap locks.
    // Strict: a value that does not fit is an error, never silently cut. (Queued ahead of the connection's first use.)
    this.pool.pool.on('connection', (c) => {
      for (const sql of ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"]) {
        c.query(sql, (err: Error | null) => {
          if (err) c.destroy();
        });
      }
    });
    this.direct = new ConnExecutor(this.pool);
  }

  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.direct.query<T>(sql, params);
  }

  exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
    return this.direct.exec(sql, params);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const conn = await this.pool.getConnection();
      try {
        await conn.query('START TRANSACTION');
        const r = await fn(new ConnExecutor(conn));
        await conn.query('COMMIT');
        return r;
      } catch (e) {
        await conn.query('ROLLBACK').catch(() => undefined);
        if (!RETRYABLE.has((e as { code?: string }).code ?? '') || attempt >= 5) throw e;
        await sleep(10 * attempt + Math.floor(Math.random() * 20));
      } finally {
        conn.release();
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
    await this.pool.end();
  }
}
