/**
 * A MariaDB server of our own (Debian's mariadb-server binaries, never the system's instance):
 * its own datadir, socket, port on 127.0.0.1 and PID file, a database and a user for Ferry.
 * The development cloud runs one for `up --db mariadb`; the repository tests start a private one.
 * Stopped by its PID only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';

/** How the dev cloud's MariaDB servers run, the single one and each Galera node alike. */
export const SERVER_SETTINGS: readonly string[] = [
  '--skip-name-resolve',
  '--character-set-server=utf8mb4',
  '--collation-server=utf8mb4_bin',
  '--innodb-buffer-pool-size=64M',
  // A development and test server: a crash may lose the last second of commits, never corrupt.
  '--innodb-flush-log-at-trx-commit=2',
  '--max-connections=300',
];
export interface MariadbPaths {
  datadir: string;
  socket: string;
  pidFile: string;
  logFile: string;
}

export interface MariadbAccount {
  database: string;
  user: string;
  password: string;
}

const SERVER = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
const CLIENT = '/usr/bin/mariadb';

/** The connection URL Ferry's [database] connection takes for this server and account. */
export function mariadbUrl(port: number, a: MariadbAccount): string {
  return `mysql+pymysql://${encodeURIComponent(a.user)}:${encodeURIComponent(a.password)}@127.0.0.1:${port}/${encodeURIComponent(a.database)}`;
}

export function mariadbInstalled(): boolean {
  return fs.existsSync(SERVER) && fs.existsSync(INSTALL_DB) && fs.existsSync(CLIENT);
}

/** The PID of our server when it runs. */
export function mariadbPid(p: MariadbPaths): number | null {
  return runningPid(p.pidFile, p.datadir);
}

/** Start the server (creating its system tables on first use) and wait until it answers on its socket. */
export async function startMariadb(p: MariadbPaths, port: number): Promise<number> {
  if (!mariadbInstalled()) throw new Error(`MariaDB is not installed (${SERVER}): apt-get install mariadb-server mariadb-client`);
  const running = mariadbPid(p);
  if (running !== null) return running;
  fs.mkdirSync(path.dirname(p.socket), { recursive: true });
  if (!fs.existsSync(path.join(p.datadir, 'mysql'))) {
    fs.mkdirSync(p.datadir, { recursive: true });
    // root authenticates by its Unix user over the socket only: no password to keep.
    await run(INSTALL_DB, ['--no-defaults', `--datadir=${p.datadir}`, '--user=root', '--auth-root-authentication-method=socket', '--skip-test-db'], {
      timeoutMs: 120_000,
    });
  }
  fs.rmSync(p.socket, { force: true });
  const pid = startDaemon({
    name: 'mariadb',
    cmd: SERVER,
    args: [
      '--no-defaults',
      `--datadir=${p.datadir}`,
      `--socket=${p.socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${p.pidFile}`,
      `--log-error=${p.logFile}`,
      '--user=root',
      ...SERVER_SETTINGS,
    ],
    pidFile: p.pidFile,
    logFile: p.logFile,
    marker: p.datadir,
  });
  try {
    await waitFor(
      `MariaDB on ${p.socket}`,
      async () => (await run(CLIENT, ['--no-defaults', '-S', p.socket, '-u', 'root', '-e', 'SELECT 1'], { allowFail: true })).code === 0,
      60_000,
      200,
    );
  } catch (e) {
    const log = fs.existsSync(p.logFile) ? fs.readFileSync(p.logFile, 'utf8').split('\n').slice(-8).join(' | ') : '';
    throw new Error(`${(e as Error).message}; ${p.logFile}: ${log}`);
  }
  return pid;
}

/** Create (or update) Ferry's database, with the binary collation the schema expects, and its user on 127.0.0.1. */
export async function provisionMariadb(p: MariadbPaths, a: MariadbAccount, opts: { recreate?: boolean } = {}): Promise<void> {
  const q = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  const db = `\`${a.database.replace(/`/g, '``')}\``;
  const sql = [
    ...(opts.recreate ? [`DROP DATABASE IF EXISTS ${db}`] : []),
    `CREATE DATABASE IF NOT EXISTS ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE USER IF NOT EXISTS '${q(a.user)}'@'127.0.0.1' IDENTIFIED BY '${q(a.password)}'`,
    `ALTER USER '${q(a.user)}'@'127.0.0.1' IDENTIFIED BY '${q(a.password)}'`,
    `GRANT ALL PRIVILEGES ON ${db}.* TO '${q(a.user)}'@'127.0.0.1'`,
  ].join(';\n');
  await run(CLIENT, ['--no-defaults', '-S', p.socket, '-u', 'root', '-e', sql]);
}

/** Stop our server by its PID (a clean shutdown: InnoDB flushes). */
export function stopMariadb(p: MariadbPaths): Promise<boolean> {
  return stopDaemon(p.pidFile, p.datadir, 60_000);
}
