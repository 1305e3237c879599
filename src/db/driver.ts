/**
 * The small SQL abstraction the repository is written once over: a driver runs statements
 * (positional `?` parameters) alone or inside a transaction, and a dialect names the few
 * things SQLite and MariaDB/MySQL spell differently. Both backends implement it: sqlite.ts
 * (better-sqlite3, synchronous, wrapped) and mysql.ts (a mysql2 pool).
 */

export type SqlValue = string | number | bigint | null | Buffer;
export type Row = Record<string, unknown>;

/** What one statement changed. */
export interface ExecResult {
  /** Rows the statement matched (an UPDATE that sets the same values still counts them). */
  changes: number;
}

/** Runs statements: the driver itself (each statement alone) or one transaction's connection. */
export interface SqlExecutor {
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  exec(sql: string, params?: readonly unknown[]): Promise<ExecResult>;
}

/** Column types and table options the schema is written with (schema.ts). */
export interface SchemaTypes {
  /** A short string that may be a key or indexed (ids, names, statuses, times). */
  key: string;
  /** A string of any length, never indexed (errors, JSON documents). */
  text: string;
  /** A 64-bit integer (byte counts exceed 32 bits). */
  int: string;
  /** The insertion-order column's definition, with its trailing comma ('' where the engine has one: SQLite's rowid). */
  seq: string;
  /** Options after a CREATE TABLE's closing parenthesis. */
  table: string;
}

export interface Dialect {
  readonly name: 'sqlite' | 'mysql';
  readonly types: SchemaTypes;
  /** The column that orders rows by insertion (keyset paging's tie-break). */
  readonly seq: string;
  /** INSERT that skips a row whose key exists, without an error. */
  readonly insertIgnore: string;
  /** Suffix of a SELECT inside a transaction that will write what it read (row locks where the engine has them). */
  readonly forUpdate: string;
  /**
   * INSERT of `cols` into `table`, or, when `key` exists, an update of `update`; with
   * `newerBy`, the existing row is only changed when its `newerBy` is not newer than the new one.
   * `rows` rows at once (their values one after another), each decided on its own.
   */
  upsert(table: string, cols: readonly string[], key: readonly string[], update: readonly string[], newerBy?: string, rows?: number): string;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: Dialect;
  /** Where the data is, for messages (no password). */
  readonly description: string;
  /** Run `fn` in one transaction; committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** The schema version applied (0 for an empty database). */
  schemaVersion(): Promise<number>;
  /** Apply one schema version's statements and record `version`. */
  applySchema(version: number, statements: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** A schema version's text split into statements (none of them contains a `;` of its own). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** `rows` groups of `width` placeholders, for a multi-row VALUES list. */
export function valueRows(width: number, rows = 1): string {
  const one = `(${Array.from({ length: width }, () => '?').join(', ')})`;
  return Array.from({ length: rows }, () => one).join(', ');
}

/** Parameters as every driver binds them: booleans as 0/1, undefined as NULL. */
export function bindable(params: readonly unknown[] = []): SqlValue[] {
  return params.map((v) => {
    if (v === undefined) return null;
    if (typeof v === 'boolean') return v ? 1 : 0;
    return v as SqlValue;
  });
}
