/** Where the development cloud keeps its state, and its fixed names and addresses. */
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const stateDir = process.env.FERRY_DEVCLOUD_DIR ?? path.join(repoRoot, '.devcloud');
/**
 * Unix sockets and engine exec roots: short paths (socket paths are limited to 108 bytes),
 * one folder per state dir so that a cloud never inherits a dead cloud's runtime state.
 */
export const runDir = path.join('/run/ferry-devcloud', crypto.createHash('sha256').update(stateDir).digest('hex').slice(0, 8));

/**
 * The compute hosts are compute1..computeN (`up --hosts N`, src/devcloud/shape.ts). At most this
 * many: the fabric's /24 gives compute1 and compute2 a /26 of automatic addresses each (as before
 * there were more) and compute3 onwards a /29 each from 10.250.0.192 up.
 */
export const MAX_HOSTS = 10;

/** compute1..computeN. */
export function hostNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `compute${i + 1}`);
}

function fabricIpRange(index: number): string {
  if (index < 2) return `10.250.0.${64 * (index + 1)}/26`;
  return `10.250.0.${192 + 8 * (index - 2)}/29`;
}

/**
 * The docker CLI the dev cloud, the bench and the tests run: Debian's 20.10 client, which matches
 * the engines' API 1.41 (a newer client refuses --mac-address with --network; docs/platform-facts.md).
 */
export const DOCKER_CLI = '/usr/bin/docker';

export const FABRIC = {
  network: 'ferry-fabric',
  subnet: '10.250.0.0/24',
  gateway: '10.250.0.1',
  prefix: 24,
  bridgeNetns: 'ferry-fabric',
  bridge: 'brx',
  clientNetns: 'ferry-client',
  clientIp: '10.250.0.2',
  /** Each engine hands out addresses from its own part of the subnet, so automatic IPs never clash. */
  ipRanges: Object.fromEntries(hostNames(MAX_HOSTS).map((h, i) => [h, fabricIpRange(i)])) as Record<string, string>,
};

/**
 * Two RabbitMQ nodes, independent (not a cluster): every service's transport_url lists both,
 * in this order, and each service uses the first one that answers (docs/operations.md).
 */
export const RABBIT = {
  brokers: [
    // port: plain AMQP (Python oslo.messaging peers, tools); tlsPort: AMQPS, what Ferry's services use.
    { name: 'rabbitmq', node: 'ferry@localhost', port: 5672, tlsPort: 5671, distPort: 25672 },
    { name: 'rabbitmq2', node: 'ferry2@localhost', port: 5673, tlsPort: 5674, distPort: 25673 },
    // Only with `up --rabbit-cluster 3`, where the three nodes form one cluster (src/devcloud/rabbit.ts).
    { name: 'rabbitmq3', node: 'ferry3@localhost', port: 5675, tlsPort: 5676, distPort: 25674 },
  ],
  vhost: 'ferry',
  user: 'ferry',
  password: 'ferry-dev-rabbit', // throwaway development-cloud secret
};

export const KEYSTONE = {
  port: 5000,
  authUrl: 'http://127.0.0.1:5000/v3',
  region: 'RegionOne',
  adminPassword: 'ferry-dev-admin', // throwaway development-cloud secrets
  demoPassword: 'ferry-dev-demo',
  servicePassword: 'ferry-dev-service',
};

/**
 * MariaDB for `up --db mariadb` (Debian's mariadb-server, our own datadir and PID file): the
 * database and user Ferry's conductors use, with a throwaway password.
 */
export const MARIADB = {
  port: 3306,
  database: 'ferry',
  user: 'ferry',
  password: 'ferry-dev-db', // throwaway development-cloud secret
  datadir: path.join(stateDir, 'mariadb'),
  socket: path.join(runDir, 'mariadb.sock'),
  pidFile: path.join(stateDir, 'run', 'mariadb.pid'),
  logFile: path.join(stateDir, 'log', 'mariadb.log'),
};

/** Horizon (Django's server) with Ferry's panel. */
export const HORIZON = { port: 8088 };

export const FERRY_PORTS = {
  api: 9517,
  /** Each host's data channel: compute1 9518, compute2 9519, ... computeN 9517 + N. */
  migration: Object.fromEntries(hostNames(MAX_HOSTS).map((h, i) => [h, 9518 + i])) as Record<string, number>,
};

export function hostNetns(host: string): string {
  return `ferry-${host}`;
}

export function hostDirs(host: string) {
  return {
    state: path.join(stateDir, 'hosts', host),
    dataRoot: path.join(stateDir, 'hosts', host, 'docker'),
    execRoot: path.join(runDir, host, 'exec'),
    socket: path.join(runDir, host, 'docker.sock'),
    pidFile: path.join(stateDir, 'run', `dockerd-${host}.pid`),
    logFile: path.join(stateDir, 'log', `dockerd-${host}.log`),
    configFile: path.join(stateDir, 'hosts', host, 'daemon.json'),
  };
}
