/**
 * The development cloud's Galera cluster for `up --db galera`: three nodes under the state dir,
 * SQL on 127.0.0.1:3311-3313 (group communication 4567-4569, IST 4577-4579, SST 4587-4589),
 * Ferry's database and user as for `--db mariadb`. Conductor i prefers node i (mod 3), so that
 * the conductors write through different nodes, and fails over to the others in turn.
 */
import path from 'node:path';
import { galeraNodeStatus, galeraUrl, provisionGalera, startGalera, stopGalera, type GaleraCluster, type GaleraNodeStatus } from './galera.js';
import { MARIADB, stateDir } from './layout.js';

export const GALERA: GaleraCluster = {
  name: 'ferry-devcloud',
  dir: path.join(stateDir, 'galera'),
  nodes: [1, 2, 3].map((i) => ({ name: `galera${i}`, port: 3310 + i, groupPort: 4566 + i, istPort: 4576 + i, sstPort: 4586 + i })),
};

/** `[database] connection` of conductor `index` (0-based). */
export function cloudGaleraUrl(index: number): string {
  return galeraUrl(GALERA, MARIADB, index % GALERA.nodes.length);
}

export async function startCloudGalera(log: (s: string) => void, opts: { recreate?: boolean } = {}): Promise<void> {
  const pids = await startGalera(GALERA, log);
  await provisionGalera(GALERA, MARIADB, opts);
  log(`Galera: ${GALERA.nodes.map((n, i) => `${n.name} 127.0.0.1:${n.port} (PID ${pids[i]})`).join(', ')}`);
}

export function stopCloudGalera(): Promise<boolean> {
  return stopGalera(GALERA);
}

export function cloudGaleraStatus(): Promise<GaleraNodeStatus[]> {
  return Promise.all(GALERA.nodes.map((n) => galeraNodeStatus(GALERA, n)));
}
