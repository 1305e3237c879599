/**
 * The databases the control-plane benchmark runs the conductors on: the embedded SQLite file
 * and MariaDB (a private server the benchmark starts and stops itself, or one given by URL).
 * Each run gets a fresh, empty database at the current schema; each conductor opens its own
 * connection to it, as separate conductor processes would, through the same driver and
 * repository as ferry-conductor, with its statements counted (countStatements).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openConductorStore, type ConductorStore } from '../../conductor/embedded.js';
import { openDriver } from '../../db/connection.js';
import type { SqlDriver, SqlExecutor } from '../../db/driver.js';
import { syncDatabase } from '../../db/schema.js';
import { mariadbInstalled, mariadbUrl, provisionMariadb, startMariadb, stopMariadb, type MariadbPaths } from '../../devcloud/mariadb.js';
import type { QueryCounter } from './counting.js';

export interface BenchConnection {
  repo: ConductorStore;
  close(): Promise<void>;
}

export interface BenchDatabase {
  /** Where the data is (no password). */
  description: string;
  /** Its [database] connection URL (a conductor in a worker thread connects with it). */
  url: string;
  /** One conductor's connection. */
  connect(counter: QueryCounter): Promise<BenchConnection>;
  dispose(): Promise<void>;
}

export interface BenchBackend {
  name: string;
  /** Why this backend cannot run `conductors` conductors here, or null when it can. */
  unavailable(conductors: number): string | null;
  create(): Promise<BenchDatabase>;
  /** Stops what the backend started for the benchmark (a private server). */
  close?(): Promise<void>;
}

type Exec = SqlExecutor['query'];

/**
 * Every statement the repository sends through this driver is counted with the time it took:
 * for SQLite the synchronous run of the statement itself (its queue's wait left out), for a
 * networked driver the round trip. BEGIN/COMMIT are not counted.
 */
export function countStatements(driver: SqlDriver, counter: QueryCounter): SqlDriver {
  const timed = <F extends (...a: never[]) => unknown>(f: F): F =>
    ((...a: Parameters<F>) => {
      const t0 = performance.now();
      const r = f(...a);
      if (r instanceof Promise) return r.finally(() => counter.statement(performance.now() - t0));
      counter.statement(performance.now() - t0);
      return r;
    }) as F;
  const d = driver as unknown as Record<string, unknown>;
  if (typeof d.runQuery === 'function' && typeof d.runExec === 'function') {
    // SqliteDriver: every statement, alone or in a transaction, goes through these two.
    d.runQuery = timed((d.runQuery as (...a: never[]) => unknown).bind(driver));
    d.runExec = timed((d.runExec as (...a: never[]) => unknown).bind(driver));
    return driver;
  }
  const wrapExecutor = (x: SqlExecutor): SqlExecutor => ({ query: timed(x.query.bind(x) as Exec) as Exec, exec: timed(x.exec.bind(x)) });
  const direct = wrapExecutor({ query: driver.query.bind(driver), exec: driver.exec.bind(driver) });
  const transaction = driver.transaction.bind(driver);
  d.query = direct.query;
  d.exec = direct.exec;
  d.transaction = <T>(fn: (tx: SqlExecutor) => Promise<T>) => transaction((tx) => fn(wrapExecutor(tx)));
  return driver;
}

/** A conductor's own connection to `url`: the repository ferry-conductor uses, counted. */
export async function connectCounted(url: string, counter: QueryCounter): Promise<BenchConnection> {
  const driver = countStatements(openDriver(url), counter);
  return { repo: counter.wrap(openConductorStore(driver)), close: () => driver.close() };
}

/** The embedded default: a SQLite file (WAL, Ferry's own settings) in a temporary folder on local disk. */
export const sqliteBackend: BenchBackend = {
  name: 'sqlite',
  unavailable: (conductors) => (conductors > 1 ? 'SQLite runs a single conductor (several conductors need MariaDB)' : null),
  async create() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-cp-'));
    const url = `sqlite:///${path.join(dir, 'ferry.sqlite')}`;
    const first = openDriver(url);
    await syncDatabase(first);
    await first.close();
    return {
      description: 'SQLite file (WAL) on local disk',
      url,
      connect: (counter) => connectCounted(url, counter),
      async dispose() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** The port of the benchmark's own MariaDB (never the dev cloud's 3306, nor the tests' 3307). */
export const BENCH_MARIADB_PORT = 3308;

/**
 * MariaDB: on `url` when given (its database is emptied for each run: give one to spare), else
 * on a private server started on first use (Debian's mariadbd, all state in a temp dir,
 * 127.0.0.1:3308, stopped by its PID in close()), which needs root.
 */
export function mariadbBackend(url: string | null): BenchBackend {
  let server: { paths: MariadbPaths; dir: string; started: boolean } | null = null;
  let runs = 0;
  const account = { database: 'ferry_bench', user: 'ferrybench', password: 'ferry-bench-db' };
  return {
    name: 'mariadb',
    unavailable() {
      if (url !== null) return null;
      if (!mariadbInstalled()) return 'MariaDB is not installed (apt-get install mariadb-server), and no --mariadb URL was given';
      if (process.getuid?.() !== 0) return 'starting a private MariaDB needs root; or give --mariadb mysql+pymysql://USER:PASS@HOST/DB';
      return null;
    },
    async create() {
      let target = url;
      if (target === null) {
        if (!server) {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-mariadb-'));
          server = {
            dir,
            started: false,
            paths: {
              datadir: path.join(dir, 'data'),
              socket: path.join(dir, 'mariadb.sock'),
              pidFile: path.join(dir, 'mariadb.pid'),
              logFile: path.join(dir, 'mariadb.log'),
            },
          };
        }
        if (!server.started) {
          await startMariadb(server.paths, BENCH_MARIADB_PORT);
          server.started = true;
        }
        // A new database for each run: nothing of the previous one in it.
        account.database = `ferry_bench_${++runs}`;
        await provisionMariadb(server.paths, account, { recreate: true });
        target = mariadbUrl(BENCH_MARIADB_PORT, account);
      } else {
        const d = openDriver(target);
        try {
          // Emptied for this run: Ferry's tables only, in an order the foreign keys accept.
          await d.transaction(async (tx) => {
            // One connection for all of it: the foreign-key switch is per session.
            const tables = await tx.query<{ t: string }>('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()');
            await tx.exec('SET FOREIGN_KEY_CHECKS = 0');
            for (const { t } of tables) await tx.exec(`DROP TABLE \`${t.replace(/`/g, '``')}\``);
          });
        } finally {
          await d.close();
        }
      }
      const first = openDriver(target);
      await syncDatabase(first);
      const description = first.description;
      await first.close();
      const at = target;
      return {
        description: url === null ? `MariaDB (private server, 127.0.0.1:${BENCH_MARIADB_PORT}, InnoDB, flush at commit 2)` : description,
        url: at,
        connect: (counter) => connectCounted(at, counter),
        async dispose() {
          /* the next run provisions its own database */
        },
      };
    },
    async close() {
      if (!server?.started) return;
      await stopMariadb(server.paths);
      fs.rmSync(server.dir, { recursive: true, force: true });
      server = null;
    },
  };
}
