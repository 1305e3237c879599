/**
 * RabbitMQ for the development cloud: two independent nodes on 127.0.0.1 (`rabbitmq` on 5672
 * and TLS 5671, `rabbitmq2` on 5673 and TLS 5674), each with vhost `ferry` and user `ferry`;
 * or, after `up --rabbit-cluster 3` (kept until `up --rabbit-cluster 1`), those two and
 * `rabbitmq3` (5675, TLS 5676) clustered, the services declaring quorum queues.
 * The brokers' certificate comes from the dev cloud's CA (the data channel's). The services'
 * transport_url lists both TLS ports, so that stopping the first one shows failover; the plain
 * ports serve clients such as the Python oslo.messaging peers of the tests. Each node can be
 * stopped, started and restarted on its own, by PID.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureHostCert, pkiDir, type HostCertFiles } from './certs.js';
import { randomBytes } from 'node:crypto';
import { writeIfChanged } from './files.js';
import { RABBIT, stateDir } from './layout.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';

export interface Broker {
  name: string;
  node: string;
  port: number;
  tlsPort: number;
  distPort: number;
  dir: string;
  /** We start the rabbitmq-server script (pidFile); the Erlang node it runs writes nodePidFile. */
  pidFile: string;
  nodePidFile: string;
  logFile: string;
  /** rabbitmq-server execs erl with `-home <dir>`: the node's command line carries its home, which is ours alone. */
  marker: string;
}

/** 1: independent nodes (the default); 3: one cluster of three nodes. */
export const RABBIT_CLUSTER_SIZES = [1, 3] as const;
export type RabbitClusterSize = (typeof RABBIT_CLUSTER_SIZES)[number];

const clusterFile = path.join(stateDir, 'rabbit-cluster.json');

/** The layout chosen by the last `up --rabbit-cluster N` (1 when never chosen). */
export function rabbitClusterSize(): RabbitClusterSize {
  try {
    const n = (JSON.parse(fs.readFileSync(clusterFile, 'utf8')) as { nodes?: unknown }).nodes;
    return n === 3 ? 3 : 1;
  } catch {
    return 1;
  }
}

const allBrokers: Broker[] = RABBIT.brokers.map((b) => {
  const dir = path.join(stateDir, b.name);
  return {
    ...b,
    dir,
    pidFile: path.join(stateDir, 'run', `${b.name}.pid`),
    nodePidFile: path.join(dir, 'rabbit.pid'),
    logFile: path.join(stateDir, 'log', `${b.name}.log`),
    // The trailing space: `-home .../rabbitmq` must not match `-home .../rabbitmq2`.
    marker: `-home ${dir} `,
  };
});

/** The nodes of the current layout: the first two (independent), or all three (one cluster). */
function activeBrokers(): Broker[] {
  return rabbitClusterSize() === 3 ? allBrokers : allBrokers.slice(0, 2);
}

/** The names of the current layout's nodes (what stop, start and restart accept). */
export function brokerNames(): string[] {
  return activeBrokers().map((b) => b.name);
}

const epmdPidFile = path.join(stateDir, 'run', 'epmd.pid');

export function broker(name: string): Broker {
  const b = activeBrokers().find((x) => x.name === name);
  if (!b) throw new Error(`unknown broker ${name}; brokers: ${brokerNames().join(', ')}`);
  return b;
}

function env(b: Broker): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: b.dir, // the Erlang cookie lives here, shared by the server and rabbitmqctl
    RABBITMQ_NODENAME: b.node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(b.port),
    RABBITMQ_DIST_PORT: String(b.distPort),
    // Erlang distribution on loopback only.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_MNESIA_BASE: path.join(b.dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(b.dir, 'log'),
    RABBITMQ_PID_FILE: b.nodePidFile,
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(b.dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: path.join(b.dir, 'rabbitmq'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
}

function hostPart(b: Broker, tls = false): string {
  return `${RABBIT.user}:${RABBIT.password}@127.0.0.1:${tls ? b.tlsPort : b.port}`;
}

/** The brokers' certificate (one for both: they share the address), made once by the dev cloud's CA. */
export function brokerCert(): HostCertFiles {
  return ensureHostCert(pkiDir(stateDir), 'rabbitmq', ['DNS:localhost', 'IP:127.0.0.1']);
}

/** The CA file that verifies the brokers. */
export function brokerCaFile(): string {
  return path.join(pkiDir(stateDir), 'ca.crt');
}

/** TLS as oslo.messaging reads it from a transport_url's query: self-contained, so a client needs no config file. */
function tlsQuery(): string {
  return `?ssl=1&ssl_ca_file=${brokerCaFile()}`;
}

/** What the services use: every broker's TLS port, first to last (oslo.messaging's multi-host form). */
export function transportUrl(vhost = RABBIT.vhost): string {
  return `rabbit://${activeBrokers()
    .map((b) => hostPart(b, true))
    .join(',')}/${vhost}${tlsQuery()}`;
}

/** One broker alone, plain AMQP (clients of the cloud use the first: see CloudStatus.rabbit). */
export function brokerUrl(name: string, vhost = RABBIT.vhost): string {
  return `rabbit://${hostPart(broker(name))}/${vhost}`;
}

/** One broker alone over TLS. */
export function brokerTlsUrl(name: string, vhost = RABBIT.vhost): string {
  return `rabbit://${hostPart(broker(name), true)}/${vhost}${tlsQuery()}`;
}

function rabbitConf(b: Broker): string {
  const cert = brokerCert();
  return [
    'loopback_users = none',
    `listeners.tcp.default = 127.0.0.1:${b.port}`,
    `listeners.ssl.default = 127.0.0.1:${b.tlsPort}`,
    `ssl_options.cacertfile = ${cert.ca_file}`,
    `ssl_options.certfile = ${cert.cert_file}`,
    `ssl_options.keyfile = ${cert.key_file}`,
    // Clients prove who they are with their password, as on the plain port; no client certificate asked.
    'ssl_options.verify = verify_none',
    'ssl_options.fail_if_no_peer_cert = false',
    '',
  ].join('\n');
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** The PID of the broker's Erlang node, if it runs. */
export function brokerPid(name: string): number | null {
  const b = broker(name);
  return runningPid(b.nodePidFile, b.marker);
}

/** rabbitmqctl against one node (the first by default). */
export async function rabbitctl(args: string[], name = allBrokers[0].name) {
  const b = broker(name);
  return run('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-n', b.node, ...args], { env: env(b), timeoutMs: 60_000 });
}

/** Run epmd ourselves so that `down` can end it by PID; reuse one that is already there. */
async function ensureEpmd(): Promise<void> {
  if ((await portOpen(4369)) || runningPid(epmdPidFile, 'epmd') !== null) return;
  startDaemon({
    name: 'epmd',
    cmd: 'epmd',
    args: ['-address', '127.0.0.1'],
    pidFile: epmdPidFile,
    logFile: path.join(stateDir, 'log', 'epmd.log'),
    marker: 'epmd',
  });
  await waitFor('epmd', () => portOpen(4369), 10_000);
}

async function startNode(b: Broker, log: (s: string) => void): Promise<void> {
  fs.mkdirSync(b.dir, { recursive: true });
  if (!fs.existsSync(path.join(b.dir, 'enabled_plugins'))) fs.writeFileSync(path.join(b.dir, 'enabled_plugins'), '[].\n');
  // A node from before TLS (or with other listeners) restarts to read its new config.
  if (writeIfChanged(path.join(b.dir, 'rabbitmq.conf'), rabbitConf(b)) && brokerPid(b.name) !== null) {
    log(`RabbitMQ ${b.name}: listeners changed; restarting it`);
    await stopBroker(b.name);
  }
  const ctl = (args: string[]) => rabbitctl(args, b.name);
  if (brokerPid(b.name) === null) {
    for (const port of [b.port, b.tlsPort]) {
      if (await portOpen(port)) {
        throw new Error(`port ${port} on 127.0.0.1 is taken by a RabbitMQ the development cloud did not start; stop it first`);
      }
    }
    log(`starting RabbitMQ ${b.name} (${b.node}) on 127.0.0.1:${b.port}, TLS ${b.tlsPort} (about 10 s)`);
    startDaemon({
      name: b.name,
      cmd: '/usr/lib/rabbitmq/bin/rabbitmq-server',
      args: [],
      pidFile: b.pidFile,
      logFile: b.logFile,
      marker: 'rabbitmq-server',
      env: env(b),
      cwd: b.dir,
    });
  }
  await ctl(['wait', b.nodePidFile, '--timeout', '120']);
  await waitFor(`RabbitMQ ${b.name} to listen on ${b.port}`, () => portOpen(b.port), 60_000);
  await waitFor(`RabbitMQ ${b.name} to listen on ${b.tlsPort} (TLS)`, () => portOpen(b.tlsPort), 30_000);
  const vhosts = (await ctl(['list_vhosts', '--quiet', '--no-table-headers'])).stdout.split('\n').map((s) => s.trim());
  if (!vhosts.includes(RABBIT.vhost)) await ctl(['add_vhost', RABBIT.vhost]);
  const users = (await ctl(['list_users', '--quiet', '--no-table-headers'])).stdout;
  if (!users.split('\n').some((l) => l.split(/\s+/)[0] === RABBIT.user)) {
    await ctl(['add_user', RABBIT.user, RABBIT.password]);
  }
  await ctl(['set_user_tags', RABBIT.user, 'administrator']);
  for (const vh of [RABBIT.vhost, '/']) await ctl(['set_permissions', '-p', vh, RABBIT.user, '.*', '.*', '.*']);
  log(`RabbitMQ ${b.name} up on 127.0.0.1:${b.port} and TLS ${b.tlsPort}: vhost ${RABBIT.vhost}, user ${RABBIT.user}`);
}

/** Start one broker (and epmd when none runs); nothing happens to a broker that runs already. */
export async function startBroker(name: string, log: (s: string) => void): Promise<void> {
  const b = broker(name);
  await ensureEpmd();
  await startNode(b, log);
}

/**
 * Stop one broker by its PID: SIGTERM (RabbitMQ closes its connections and shuts down cleanly)
 * or SIGKILL (the node vanishes, as in a crash). epmd stays: the other node is registered there.
 */
export async function stopBroker(name: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  await stopNode(broker(name), signal);
}

async function stopNode(b: Broker, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const pid = runningPid(b.nodePidFile, b.marker);
  if (pid !== null && signal === 'SIGKILL') process.kill(pid, 'SIGKILL');
  await stopDaemon(b.nodePidFile, b.marker, 30_000);
  await stopDaemon(b.pidFile, 'rabbitmq-server', 5_000);
  await waitFor(`port ${b.port} to close`, async () => !(await portOpen(b.port)), 10_000);
  await waitFor(`port ${b.tlsPort} to close`, async () => !(await portOpen(b.tlsPort)), 10_000);
}

export async function restartBroker(name: string, log: (s: string) => void, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  await stopBroker(name, signal);
  await startBroker(name, log);
}

/**
 * Start every broker of the layout, in parallel (each node takes about 10 s to boot); in a
 * cluster, join the second and third nodes to the first unless they are in its cluster already.
 */
export async function startRabbit(log: (s: string) => void): Promise<void> {
  await ensureEpmd();
  const nodes = activeBrokers();
  await Promise.all(nodes.map((b) => startNode(b, log)));
  if (rabbitClusterSize() === 1) return;
  const [first, ...rest] = nodes;
  const running = async () =>
    (JSON.parse((await rabbitctl(['cluster_status', '--formatter', 'json'], first.name)).stdout) as { running_nodes: string[] }).running_nodes;
  const inCluster = await running();
  for (const b of rest) {
    if (inCluster.includes(b.node)) continue;
    log(`RabbitMQ ${b.name}: joining the cluster of ${first.node}`);
    for (const args of [['stop_app'], ['reset'], ['join_cluster', first.node], ['start_app']]) await rabbitctl(args, b.name);
  }
  const now = await running();
  if (nodes.some((b) => !now.includes(b.node))) throw new Error(`RabbitMQ cluster incomplete: running nodes ${now.join(', ')}`);
  log(`RabbitMQ cluster of ${now.length} nodes: ${now.join(', ')}`);
}

/** Stop every broker of the layout, then epmd. */
export async function stopRabbit(): Promise<void> {
  await Promise.all(activeBrokers().map((b) => stopBroker(b.name)));
  await stopDaemon(epmdPidFile, 'epmd', 5_000);
}

/**
 * Switch to `size` nodes (1: independent, 3: clustered): when it differs from the current
 * layout, `beforeChange` runs (the services stop), every node stops and forgets its data
 * (queues, cluster membership; start provisions vhost and user again), and each gets the
 * layout's Erlang cookie: one shared by the cluster, or none (each node makes its own).
 * Returns whether the layout changed.
 */
export async function chooseRabbitCluster(size: RabbitClusterSize, log: (s: string) => void, beforeChange: () => Promise<void>): Promise<boolean> {
  const was = rabbitClusterSize();
  if (size === was) return false;
  log(
    `RabbitMQ: ${was === 3 ? 'cluster of 3' : 'two independent nodes'} -> ${size === 3 ? 'cluster of 3 (quorum queues)' : 'two independent nodes'}; brokers reset, Ferry's services restart`,
  );
  await beforeChange();
  await Promise.all(allBrokers.map((b) => stopNode(b)));
  const cookie = randomBytes(20).toString('hex').toUpperCase();
  for (const b of allBrokers) {
    fs.rmSync(path.join(b.dir, 'mnesia'), { recursive: true, force: true });
    const cookieFile = path.join(b.dir, '.erlang.cookie');
    fs.rmSync(cookieFile, { force: true });
    if (size === 3) {
      fs.mkdirSync(b.dir, { recursive: true });
      fs.writeFileSync(cookieFile, cookie, { mode: 0o400 });
    }
  }
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(clusterFile, `${JSON.stringify({ nodes: size })}\n`);
  return true;
}

/** The services' [oslo_messaging_rabbit] section for the layout. */
export function rabbitConfigLines(): string[] {
  return rabbitClusterSize() === 3
    ? // One cluster: any node serves; queues replicated over the three nodes.
      ['[oslo_messaging_rabbit]', 'rabbit_quorum_queue = true', 'failback_interval = 0']
    : // The two brokers are not clustered: every service must come back to the first one.
      ['[oslo_messaging_rabbit]', 'failback_interval = 5'];
}

export interface BrokerStatus {
  name: string;
  node: string;
  port: number;
  /** Its AMQPS port (the services use it). */
  tls_port: number;
  state: 'up' | 'down';
  pid: number | null;
  /** This broker alone, vhost `ferry`, plain AMQP. */
  transport_url: string;
  /** This broker alone, vhost `ferry`, over TLS (`?ssl=1&ssl_ca_file=`). */
  tls_transport_url: string;
}

export async function brokersState(): Promise<BrokerStatus[]> {
  return Promise.all(
    activeBrokers().map(async (b) => {
      const pid = brokerPid(b.name);
      return {
        name: b.name,
        node: b.node,
        port: b.port,
        tls_port: b.tlsPort,
        state: pid !== null && (await portOpen(b.port)) && (await portOpen(b.tlsPort)) ? ('up' as const) : ('down' as const),
        pid,
        transport_url: brokerUrl(b.name),
        tls_transport_url: brokerTlsUrl(b.name),
      };
    }),
  );
}
