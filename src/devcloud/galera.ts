/**
 * A MariaDB Galera cluster of our own on this machine (Debian's mariadb-server with galera-4):
 * each node its own directory, SQL port on 127.0.0.1, group-communication, IST and SST ports,
 * all nodes in one primary component so that any of them takes writes. The development cloud
 * runs three for `up --db galera`; the Galera tests start a private one. Stopped by PID only.
 *
 * The nodes run as the `mysql` user: the rsync state transfer's daemon, started by the joiner,
 * would drop to `nobody` under root and could not write the joiner's datadir.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mariadbInstalled, mariadbUrl, provisionMariadb, SERVER_SETTINGS, type MariadbAccount, type MariadbPaths } from './mariadb.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';

const SERVER = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
const CLIENT = '/usr/bin/mariadb';
export const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';
const RUN_AS = 'mysql';

export interface GaleraNodeSpec {
  name: string;
  /** SQL clients. */
  port: number;
  /** Group communication (gcomm) between the nodes. */
  groupPort: number;
  /** Incremental state transfer: a node that was away catches up from a peer's write-set cache. */
  istPort: number;
  /** Full state transfer (rsync) when the cache no longer covers what the node missed. */
  sstPort: number;
}

export interface GaleraCluster {
  name: string;
  /** Every node's directory is `dir/NODE`. */
  dir: string;
  nodes: readonly GaleraNodeSpec[];
}

export interface GaleraNodeStatus {
  name: string;
  port: number;
  pid: number | null;
  /** wsrep_local_state_comment (Synced, Donor/Desynced, Joining...); null when it does not answer. */
  state: string | null;
  /** How many nodes this node sees in its primary component. */
  clusterSize: number | null;
}

function nodeDir(c: GaleraCluster, n: GaleraNodeSpec): string {
  return path.join(c.dir, n.name);
}

/** A node's files, in the shape mariadb.ts takes them (provisioning runs through any node's socket). */
export function galeraNodePaths(c: GaleraCluster, n: GaleraNodeSpec): MariadbPaths {
  const d = nodeDir(c, n);
  return { datadir: path.join(d, 'data'), socket: path.join(d, 'mariadb.sock'), pidFile: path.join(d, 'daemon.pid'), logFile: path.join(d, 'error.log') };
}

export function galeraInstalled(): boolean {
  return mariadbInstalled() && fs.existsSync(GALERA_PROVIDER);
}

export function galeraNodePid(c: GaleraCluster, n: GaleraNodeSpec): number | null {
  const p = galeraNodePaths(c, n);
  return runningPid(p.pidFile, p.datadir);
}

/**
 * `[database] connection` for a client that prefers node `first` and fails over to the others
 * in turn (see src/db/connection.ts).
 */
export function galeraUrl(c: GaleraCluster, a: MariadbAccount, first = 0): string {
  const order = c.nodes.map((_, i) => c.nodes[(first + i) % c.nodes.length]);
  const failover = order
    .slice(1)
    .map((n) => `127.0.0.1:${n.port}`)
    .join(',');
  return `${mariadbUrl(order[0].port, a)}${failover ? `?failover=${failover}` : ''}`;
}

async function sql(c: GaleraCluster, n: GaleraNodeSpec, statement: string): Promise<string | null> {
  const r = await run(CLIENT, ['--no-defaults', '-S', galeraNodePaths(c, n).socket, '-u', 'root', '-N', '-B', '-e', statement], { allowFail: true });
  return r.code === 0 ? r.stdout.trim() : null;
}

export async function galeraNodeStatus(c: GaleraCluster, n: GaleraNodeSpec): Promise<GaleraNodeStatus> {
  const pid = galeraNodePid(c, n);
  const out = pid === null ? null : await sql(c, n, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_cluster_size')");
  const vars = new Map((out ?? '').split('\n').map((l) => l.split('\t') as [string, string]));
  const size = vars.get('wsrep_cluster_size');
  return { name: n.name, port: n.port, pid, state: vars.get('wsrep_local_state_comment') ?? null, clusterSize: size === undefined ? null : Number(size) };
}

/** The grastate.dat a node left: its position and whether the cluster may be bootstrapped from it. */
function savedState(c: GaleraCluster, n: GaleraNodeSpec): { seqno: number; safeToBootstrap: boolean } | null {
  try {
    const text = fs.readFileSync(path.join(galeraNodePaths(c, n).datadir, 'grastate.dat'), 'utf8');
    return { seqno: Number(/^seqno:\s*(-?\d+)/m.exec(text)?.[1] ?? -1), safeToBootstrap: /^safe_to_bootstrap:\s*1/m.test(text) };
  } catch {
    return null;
  }
}

/**
 * The node to bootstrap a stopped cluster from: the one the others stopped before (Galera marks
 * it safe_to_bootstrap), else, after a crash of all of them, the one whose saved position is the
 * highest, or the first (crashed nodes save none; a development cluster does without
 * --wsrep-recover). It is marked safe here.
 */
function bootstrapNode(c: GaleraCluster): GaleraNodeSpec {
  const states = c.nodes.map((n) => ({ n, s: savedState(c, n) }));
  const safe = states.find((x) => x.s?.safeToBootstrap);
  if (safe) return safe.n;
  const best = states.reduce((a, b) => ((b.s?.seqno ?? -2) > (a.s?.seqno ?? -2) ? b : a));
  const file = path.join(galeraNodePaths(c, best.n).datadir, 'grastate.dat');
  if (fs.existsSync(file)) fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^safe_to_bootstrap:\s*0/m, 'safe_to_bootstrap: 1'));
  return best.n;
}

function chownToServer(p: string): void {
  const m = new RegExp(`^${RUN_AS}:[^:]*:(\\d+):(\\d+):`, 'm').exec(fs.readFileSync('/etc/passwd', 'utf8'));
  if (!m) throw new Error(`no "${RUN_AS}" user: apt-get install mariadb-server`);
  fs.chownSync(p, Number(m[1]), Number(m[2]));
}

async function startNode(c: GaleraCluster, n: GaleraNodeSpec, bootstrap: boolean): Promise<number> {
  const running = galeraNodePid(c, n);
  if (running !== null) return running;
  const p = galeraNodePaths(c, n);
  const dir = nodeDir(c, n);
  fs.mkdirSync(dir, { recursive: true });
  chownToServer(dir);
  if (!fs.existsSync(path.join(p.datadir, 'mysql'))) {
    await run(INSTALL_DB, ['--no-defaults', `--datadir=${p.datadir}`, `--user=${RUN_AS}`, '--auth-root-authentication-method=socket', '--skip-test-db'], {
      timeoutMs: 120_000,
    });
  }
  fs.rmSync(p.socket, { force: true });
  const members = c.nodes.map((m) => `127.0.0.1:${m.groupPort}`).join(',');
  return startDaemon({
    name: `galera ${n.name}`,
    cmd: SERVER,
    args: [
      '--no-defaults',
      `--datadir=${p.datadir}`,
      `--socket=${p.socket}`,
      `--port=${n.port}`,
      '--bind-address=127.0.0.1',
      // Written by the server itself (as mysql); daemon.pid is ours.
      `--pid-file=${path.join(dir, 'mariadbd.pid')}`,
      `--log-error=${p.logFile}`,
      `--user=${RUN_AS}`,
      ...SERVER_SETTINGS,
      // What Galera requires: row-based replication, InnoDB, interleaved auto-increment locks.
      '--binlog-format=ROW',
      '--default-storage-engine=InnoDB',
      '--innodb-autoinc-lock-mode=2',
      '--wsrep-on=ON',
      `--wsrep-provider=${GALERA_PROVIDER}`,
      `--wsrep-cluster-name=${c.name}`,
      `--wsrep-cluster-address=gcomm://${members}`,
      `--wsrep-node-name=${n.name}`,
      `--wsrep-node-address=127.0.0.1:${n.groupPort}`,
      '--wsrep-sst-method=rsync',
      `--wsrep-sst-receive-address=127.0.0.1:${n.sstPort}`,
      `--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${n.groupPort};ist.recv_addr=127.0.0.1:${n.istPort};gcache.size=64M`,
      ...(bootstrap ? ['--wsrep-new-cluster'] : []),
    ],
    pidFile: p.pidFile,
    logFile: path.join(dir, 'stdout.log'),
    marker: p.datadir,
  });
}

async function waitSynced(c: GaleraCluster, n: GaleraNodeSpec, timeoutMs: number): Promise<void> {
  try {
    await waitFor(
      `Galera node ${n.name} synced`,
      async () => {
        if (galeraNodePid(c, n) === null) throw new Error(`Galera node ${n.name} exited`);
        return (await galeraNodeStatus(c, n)).state === 'Synced';
      },
      timeoutMs,
      250,
    );
  } catch (e) {
    const log = galeraNodePaths(c, n).logFile;
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-8).join(' | ') : '';
    throw new Error(`${(e as Error).message}; ${log}: ${tail}`);
  }
}

/**
 * Start the nodes that are not running and wait until each is Synced. When none runs, the
 * cluster is bootstrapped (--wsrep-new-cluster) from one node and the others join it (a state
 * transfer for a new node); when some run, the others join them.
 */
export async function startGalera(c: GaleraCluster, log: (s: string) => void = () => undefined): Promise<number[]> {
  if (!galeraInstalled()) throw new Error(`Galera is not installed (${GALERA_PROVIDER}, ${SERVER}): apt-get install mariadb-server galera-4 rsync`);
  const first = c.nodes.some((n) => galeraNodePid(c, n) !== null) ? null : bootstrapNode(c);
  if (first) {
    await startNode(c, first, true);
    await waitSynced(c, first, 60_000);
    log(`Galera ${c.name}: bootstrapped from ${first.name}`);
  }
  // One at a time: a donor serves one state transfer at once.
  for (const n of c.nodes) {
    if (galeraNodePid(c, n) !== null) continue;
    await startNode(c, n, false);
    await waitSynced(c, n, 120_000);
    log(`Galera ${c.name}: ${n.name} joined`);
  }
  for (const n of c.nodes) await waitSynced(c, n, 60_000);
  return c.nodes.map((n) => galeraNodePid(c, n) as number);
}

/** Create (or update) Ferry's database and user through a running node: Galera replicates both. */
export async function provisionGalera(c: GaleraCluster, a: MariadbAccount, opts: { recreate?: boolean } = {}): Promise<void> {
  const n = c.nodes.find((m) => galeraNodePid(c, m) !== null);
  if (!n) throw new Error(`Galera ${c.name}: no node runs`);
  await provisionMariadb(galeraNodePaths(c, n), a, opts);
}

/** Stop the nodes by PID, the first listed last (it is then the one to bootstrap from). */
export async function stopGalera(c: GaleraCluster): Promise<boolean> {
  let any = false;
  for (const n of [...c.nodes].reverse()) {
    const p = galeraNodePaths(c, n);
    if (await stopDaemon(p.pidFile, p.datadir, 60_000)) any = true;
  }
  return any;
}
