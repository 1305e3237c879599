/**
 * A private MariaDB server for tests that need a real one (the repository's MariaDB leg): all
 * state in a temp dir, 127.0.0.1:3307 (never the dev cloud's port), started by the test and
 * stopped by its own PID.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mariadbInstalled, mariadbUrl, provisionMariadb, startMariadb, stopMariadb, type MariadbPaths } from '../../src/devcloud/mariadb.js';

export const PRIVATE_MARIADB_PORT = 3307;

export class PrivateMariaDB {
  private readonly dir: string;
  readonly paths: MariadbPaths;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-mariadb-'));
    this.paths = {
      datadir: path.join(this.dir, 'data'),
      socket: path.join(this.dir, 'mariadb.sock'),
      pidFile: path.join(this.dir, 'mariadb.pid'),
      logFile: path.join(this.dir, 'mariadb.log'),
    };
  }

  static available(): boolean {
    return mariadbInstalled();
  }

  async start(): Promise<void> {
    await startMariadb(this.paths, PRIVATE_MARIADB_PORT);
  }

  /** A fresh, empty database (dropped first if it exists) and a URL for it. */
  async database(name: string): Promise<string> {
    const account = { database: name, user: 'ferrytest', password: 'ferry-test-db' };
    await provisionMariadb(this.paths, account, { recreate: true });
    return mariadbUrl(PRIVATE_MARIADB_PORT, account);
  }

  async stop(): Promise<void> {
    await stopMariadb(this.paths);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
