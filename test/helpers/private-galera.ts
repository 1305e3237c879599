/**
 * A private three-node Galera cluster for the tests that need one: all state in a temp dir,
 * SQL on 127.0.0.1:3391-3393 (never the dev cloud's ports), group communication 4571-4573, IST
 * 4581-4583, SST 4591-4593; started by the test and stopped by its own PIDs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  galeraInstalled,
  galeraNodePid,
  galeraNodeStatus,
  galeraUrl,
  provisionGalera,
  startGalera,
  stopGalera,
  type GaleraCluster,
  type GaleraNodeStatus,
} from '../../src/devcloud/galera.js';

export class PrivateGalera {
  readonly cluster: GaleraCluster;

  constructor() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-galera-'));
    // The nodes run as mysql: they must reach their directories.
    fs.chmodSync(dir, 0o755);
    this.cluster = {
      name: 'ferry-test',
      dir,
      nodes: [1, 2, 3].map((i) => ({ name: `node${i}`, port: 3390 + i, groupPort: 4570 + i, istPort: 4580 + i, sstPort: 4590 + i })),
    };
  }

  static available(): boolean {
    return galeraInstalled();
  }

  start(): Promise<number[]> {
    return startGalera(this.cluster);
  }

  /** A fresh, empty database; URLs that prefer node `first` (0-based) and fail over to the others. */
  async database(name: string): Promise<(first: number) => string> {
    const account = { database: name, user: 'ferrytest', password: 'ferry-test-db' };
    await provisionGalera(this.cluster, account, { recreate: true });
    return (first) => galeraUrl(this.cluster, account, first);
  }

  pid(i: number): number | null {
    return galeraNodePid(this.cluster, this.cluster.nodes[i]);
  }

  status(): Promise<GaleraNodeStatus[]> {
    return Promise.all(this.cluster.nodes.map((n) => galeraNodeStatus(this.cluster, n)));
  }

  async stop(): Promise<void> {
    await stopGalera(this.cluster);
    fs.rmSync(this.cluster.dir, { recursive: true, force: true });
  }
}
