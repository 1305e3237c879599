/**
 * The shape of the development cloud: which database the conductors use (the embedded SQLite,
 * MariaDB, or a three-node MariaDB Galera cluster), how many conductors run and how many compute
 * hosts. Chosen by `up --db ... --conductors N --hosts N` and kept in the state dir, so that
 * `restart SERVICE` and a later `up` (without those options) keep it; `up --db sqlite
 * --conductors 1 --hosts 2` goes back to the default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { cloudGaleraUrl } from './galera-cloud.js';
import { MARIADB, MAX_HOSTS, hostNames, stateDir } from './layout.js';
import { mariadbPid, mariadbUrl, provisionMariadb, startMariadb, stopMariadb, type MariadbPaths } from './mariadb.js';

export const DATABASES = ['sqlite', 'mariadb', 'galera'] as const;
export type CloudDatabase = (typeof DATABASES)[number];
/** At most this many conductors (each its own process, config file and host name). */
export const MAX_CONDUCTORS = 4;

export interface CloudShape {
  db: CloudDatabase;
  conductors: number;
  /** Compute hosts compute1..computeN. */
  hosts: number;
}

export const DEFAULT_SHAPE: CloudShape = { db: 'sqlite', conductors: 1, hosts: 2 };

const shapeFile = path.join(stateDir, 'shape.json');

export function readShape(): CloudShape {
  try {
    const s = JSON.parse(fs.readFileSync(shapeFile, 'utf8')) as Partial<CloudShape>;
    const db = DATABASES.includes(s.db as CloudDatabase) ? (s.db as CloudDatabase) : DEFAULT_SHAPE.db;
    const conductors = Number.isInteger(s.conductors) && (s.conductors as number) >= 1 ? Math.min(s.conductors as number, MAX_CONDUCTORS) : 1;
    const hosts = Number.isInteger(s.hosts) && (s.hosts as number) >= 2 ? Math.min(s.hosts as number, MAX_HOSTS) : DEFAULT_SHAPE.hosts;
    return { db, conductors, hosts };
  } catch {
    return { ...DEFAULT_SHAPE };
  }
}

export function writeShape(s: CloudShape): void {
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(shapeFile, `${JSON.stringify(s)}\n`);
}

/** Several conductors need MariaDB or Galera (a SQLite database takes one conductor). */
export function checkShape(s: CloudShape): void {
  if (!DATABASES.includes(s.db)) throw new Error(`--db must be one of ${DATABASES.join(', ')}`);
  if (!Number.isInteger(s.conductors) || s.conductors < 1 || s.conductors > MAX_CONDUCTORS) throw new Error(`--conductors must be 1 to ${MAX_CONDUCTORS}`);
  if (!Number.isInteger(s.hosts) || s.hosts < 2 || s.hosts > MAX_HOSTS) throw new Error(`--hosts must be 2 to ${MAX_HOSTS}`);
  if (s.db === 'sqlite' && s.conductors > 1) throw new Error('several conductors need --db mariadb or galera: with SQLite a single conductor runs');
}

/** The compute hosts of the cloud's shape: compute1..computeN. */
export function cloudHosts(s: CloudShape = readShape()): string[] {
  return hostNames(s.hosts);
}

/** The conductor services' names and host names: ferry-conductor (host controller), then ferry-conductor2 (controller2)... */
export function conductorNames(n: number): { service: string; host: string; configKey: string }[] {
  return Array.from({ length: n }, (_, i) =>
    i === 0
      ? { service: 'ferry-conductor', host: 'controller', configKey: 'controller' }
      : { service: `ferry-conductor${i + 1}`, host: `controller${i + 1}`, configKey: `conductor${i + 1}` },
  );
}

export const mariadbPaths: MariadbPaths = { datadir: MARIADB.datadir, socket: MARIADB.socket, pidFile: MARIADB.pidFile, logFile: MARIADB.logFile };

/** `[database] connection` for the conductors of this shape (conductor `index`: Galera spreads them over its nodes). */
export function databaseUrl(s: CloudShape = readShape(), index = 0): string {
  if (s.db === 'mariadb') return mariadbUrl(MARIADB.port, MARIADB);
  if (s.db === 'galera') return cloudGaleraUrl(index);
  return `sqlite:///${path.join(stateDir, 'ferry', 'ferry.sqlite')}`;
}

/** Start the dev cloud's MariaDB and give Ferry its database and user (idempotent). */
export async function startCloudMariadb(log: (s: string) => void): Promise<void> {
  const pid = await startMariadb(mariadbPaths, MARIADB.port);
  await provisionMariadb(mariadbPaths, MARIADB);
  log(`MariaDB on 127.0.0.1:${MARIADB.port} (PID ${pid}, datadir ${MARIADB.datadir})`);
}

export function stopCloudMariadb(): Promise<boolean> {
  return stopMariadb(mariadbPaths);
}

export function cloudMariadbPid(): number | null {
  return mariadbPid(mariadbPaths);
}
