/**
 * The embedded backend: SQLite through better-sqlite3 (WAL). better-sqlite3 is synchronous;
 * this driver gives it the asynchronous SqlDriver shape. One connection serves the process, so
 * a transaction that awaits between its statements must not let other callers' statements in:
 * every statement and transaction waits its turn on one queue.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { bindable, valueRows, type Dialect, type ExecResult, type Row, type SqlDriver, type SqlExecutor } from './driver.js';

export type Db = Database.Database;

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  types: { key: 'TEXT', text: 'TEXT', int: 'INTEGER', seq: '', table: '' },
  seq: 'rowid',
  insertIgnore: 'INSERT OR IGNORE',
  forUpdate: '',
  upsert(table, cols, key, update, newerBy, rows = 1) {
    const set = update.map((c) => `${c} = excluded.${c}`).join(', ');
    const where = newerBy ? ` WHERE ${table}.${newerBy} <= excluded.${newerBy}` : '';
    return `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${valueRows(cols.length, rows)} ON CONFLICT(${key.join(', ')}) DO UPDATE SET ${set}${where}`;
  },
};

/** The database holds every tenant's migrations and containers: only the service's user reads it. */
const DB_FILE_MODE = 0o600;

/**
 * Open (creating its directory) a SQLite file or `:memory:` with the settings Ferry relies on.
 * The file and its WAL companions are made 0600 (SQLite gives the companions the file's mode).
 */
export function openSqlite(file: string): Db {
  if (file !== ':memory:') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.closeSync(fs.openSync(file, 'a', DB_FILE_MODE));
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      try {
        fs.chmodSync(f, DB_FILE_MODE);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}

class SqliteExecutor implements SqlExecutor {
  private readonly cache = new Map<string, Database.Statement>();
  constructor(protected readonly db: Db) {}

  protected prepare(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  runQuery<T>(sql: string, params?: readonly unknown[]): T[] {
    return this.prepare(sql).all(...bindable(params)) as T[];
  }

  runExec(sql: string, params?: readonly unknown[]): ExecResult {
    const s = this.prepare(sql);
    if (s.reader) {
      s.all(...bindable(params));
      return { changes: 0 };
    }
    return { changes: s.run(...bindable(params)).changes };
  }

  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.runQuery<T>(sql, params);
  }

  async exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
    return this.runExec(sql, params);
  }
}

/** One driver per handle: its queue is what keeps transactions whole. */
const drivers = new WeakMap<Db, SqliteDriver>();

export class SqliteDriver extends SqliteExecutor implements SqlDriver {
  readonly dialect = sqliteDialect;
  private turn: Promise<unknown> = Promise.resolve();

  /** The driver of a handle, made on first use. */
  static for(db: Db): SqliteDriver {
    let d = drivers.get(db);
    if (!d) {
      d = new SqliteDriver(db);
      drivers.set(db, d);
    }
    return d;
  }

  constructor(
    db: Db,
    readonly description = db.name,
  ) {
    super(db);
  }

  /** The better-sqlite3 handle (for code that predates the driver). */
  get handle(): Db {
    return this.db;
  }

  /** Run `fn` after everything queued before it. */
  private queued<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  override query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.queued(() => this.runQuery<T>(sql, params));
  }

  override exec(sql: string, params?: readonly unknown[]): Promise<ExecResult> {
    return this.queued(() => this.runExec(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.queued(async () => {
      // IMMEDIATE: the write lock from the start, so that a read-then-write cannot meet another writer halfway.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const tx: SqlExecutor = {
          query: async (sql, params) => this.runQuery(sql, params),
          exec: async (sql, params) => this.runExec(sql, params),
        };
        const r = await fn(tx);
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  async schemaVersion(): Promise<number> {
    return this.queued(() => this.db.pragma('user_version', { simple: true }) as number);
  }

  async applySchema(version: number, statements: readonly string[]): Promise<void> {
    await this.queued(() =>
      this.db.transaction(() => {
        for (const s of statements) this.db.exec(s);
        this.db.pragma(`user_version = ${version}`);
      })(),
    );
  }

  async close(): Promise<void> {
    await this.queued(() => this.db.close());
  }
}
