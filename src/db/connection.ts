/**
 * `[database] connection`, parsed in one place: the embedded SQLite file (oslo.db's
 * `sqlite:////abs/path`, or `sqlite:///:memory:`) or a MariaDB/MySQL server in the form every
 * OpenStack service uses (`mysql+pymysql://user:pass@host[:port]/dbname`; `mysql://` too).
 * A Galera cluster's other nodes may follow as `?failover=host:port,host:port`: the driver moves
 * to the next of them when the one in use stops answering.
 */
import { ConfigError } from '../common/errors.js';
import type { SqlDriver } from './driver.js';
import { MysqlDriver, type MysqlOptions, type MysqlServer, type MysqlTarget } from './mysql.js';
import { openSqlite, SqliteDriver } from './sqlite.js';

export type DatabaseTarget = { kind: 'sqlite'; file: string } | ({ kind: 'mysql' } & MysqlTarget);

const MYSQL_SCHEMES = new Set(['mysql:', 'mysql+pymysql:', 'mysql+mysqldb:', 'mysql+mysqlconnector:']);

function bad(connection: string, why: string): Error {
  // The URL may carry a password: never repeat it.
  return new ConfigError(`[database] connection "${redact(connection)}": ${why}`);
}

/** The URL with its password replaced by ***. */
export function redact(connection: string): string {
  return connection.replace(/^([a-z0-9+]+:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

export function parseConnection(connection: string): DatabaseTarget {
  if (connection.startsWith('sqlite:')) {
    const m = /^sqlite:\/\/\/(.+)$/.exec(connection);
    if (!m) throw bad(connection, 'a SQLite URL is sqlite:////ABS/PATH (four slashes before an absolute path) or sqlite:///:memory:');
    if (m[1] === ':memory:') return { kind: 'sqlite', file: ':memory:' };
    if (!m[1].startsWith('/')) throw bad(connection, 'the SQLite file must be an absolute path: sqlite:////ABS/PATH');
    return { kind: 'sqlite', file: m[1] };
  }
  let url: URL;
  try {
    url = new URL(connection);
  } catch {
    throw bad(connection, 'not a URL; use sqlite:////ABS/PATH or mysql+pymysql://USER:PASS@HOST[:PORT]/DBNAME');
  }
  if (!MYSQL_SCHEMES.has(url.protocol)) {
    throw bad(connection, `unsupported database "${url.protocol.replace(/:$/, '')}"; use sqlite:////ABS/PATH or mysql+pymysql://USER:PASS@HOST[:PORT]/DBNAME`);
  }
  if (!url.hostname) throw bad(connection, 'no host: mysql+pymysql://USER:PASS@HOST[:PORT]/DBNAME');
  if (!url.username) throw bad(connection, 'no user: mysql+pymysql://USER:PASS@HOST[:PORT]/DBNAME');
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) throw bad(connection, 'no database name: mysql+pymysql://USER:PASS@HOST[:PORT]/DBNAME');
  const port = url.port ? Number(url.port) : 3306;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(connection, `port "${url.port}" is not a TCP port`);
  const failover = url.searchParams.get('failover');
  return {
    kind: 'mysql',
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database,
    ...(failover !== null ? { failover: parseFailover(connection, failover) } : {}),
  };
}

/** `host:port,host:port` (IPv6 as [addr]:port; port 3306 when left out). */
function parseFailover(connection: string, list: string): MysqlServer[] {
  return list.split(',').map((item) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d+))?$/.exec(item.trim());
    if (!m) throw bad(connection, `failover "${item}" is not HOST[:PORT]; list the other servers as ?failover=HOST:PORT,HOST:PORT`);
    const port = m[3] ? Number(m[3]) : 3306;
    if (port < 1 || port > 65535) throw bad(connection, `failover "${item}": port ${m[3]} is not a TCP port`);
    return { host: m[1] ?? m[2], port };
  });
}

/** A driver for the configured database (nothing is created on a server; a SQLite file's directory is). */
export function openDriver(connection: string, mysqlOptions: Pick<MysqlOptions, 'onFailover'> = {}): SqlDriver {
  const t = parseConnection(connection);
  if (t.kind === 'sqlite') return SqliteDriver.for(openSqlite(t.file));
  return new MysqlDriver(t, mysqlOptions);
}
