/** The development cloud as a whole: bring it up (idempotent, repairing), down, and describe it. */
import fs from 'node:fs';
import path from 'node:path';
import { configFiles, writeConfigFiles } from './config.js';
import { deleteNamespaces, engineRunning, ensureFabricLinks, ensureFabricNetwork, ensureRuncCriuConf, pingEngine, startEngine, stopEngine } from './hosts.js';
import { ensureImages } from './images.js';
import { credentials, keystoneState, startKeystone, stopKeystone } from './keystone.js';
import { horizonInstalled, horizonState, horizonUrl, startHorizon, stopHorizon } from './horizon.js';
import { FABRIC, FERRY_PORTS, KEYSTONE, hostDirs, hostNetns, stateDir } from './layout.js';
import { run } from './proc.js';
import {
  brokerNames,
  brokerCaFile,
  brokerUrl,
  brokersState,
  chooseRabbitCluster,
  rabbitClusterSize,
  startRabbit,
  stopRabbit,
  transportUrl,
  type RabbitClusterSize,
} from './rabbit.js';
import { prepareRelease } from './release.js';
import { apiUrl, describeCode, servicesOnReleases, servicesState, startServices, stopServices } from './services.js';
import { redact } from '../db/connection.js';
import { MARIADB } from './layout.js';
import { MAX_HOSTS, hostNames } from './layout.js';
import { removeHosts } from './hosts.js';
import { stopComputeServices } from './services.js';
import {
  mariadbPaths,
  checkShape,
  cloudHosts,
  cloudMariadbPid,
  databaseUrl,
  readShape,
  startCloudMariadb,
  stopCloudMariadb,
  writeShape,
  type CloudShape,
} from './shape.js';
import { provisionMariadb } from './mariadb.js';
import { cloudGaleraStatus, startCloudGalera, stopCloudGalera } from './galera-cloud.js';
import { neutronStatus, startNeutron, startNeutronServer, stopNeutron } from './neutron.js';
import type { CloudStatus } from './status.js';

export type Log = (s: string) => void;

async function criuInfo(): Promise<{ binary: string; version: string }> {
  const which = await run('bash', ['-c', 'command -v criu'], { allowFail: true });
  const binary = which.stdout.trim();
  if (!binary) return { binary: '', version: '' };
  const v = await run(binary, ['--version'], { allowFail: true });
  return { binary, version: /Version:\s*(\S+)/.exec(v.stdout)?.[1] ?? '' };
}

/** Ferry's database emptied (its services stopped first): the next `db sync` creates the schema of the code that runs it. */
async function emptyDatabase(shape: CloudShape, log: Log): Promise<void> {
  await stopServices();
  if (shape.db === 'mariadb') {
    await provisionMariadb(mariadbPaths, MARIADB, { recreate: true });
  } else if (shape.db === 'galera') {
    await startCloudGalera(log, { recreate: true });
  } else {
    const file = databaseUrl(shape).replace(/^sqlite:\/\//, '');
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true });
  }
  log(`Ferry's ${shape.db} database emptied`);
}

export interface UpOptions {
  services?: boolean;
  shape?: Partial<CloudShape>;
  /** RabbitMQ nodes: 1 (two independent brokers) or 3 (one cluster); kept when absent. */
  rabbitCluster?: RabbitClusterSize;
  /** A git revision whose services the cloud runs (unpacked and built under the state dir); default: this checkout's. */
  release?: string;
  /** Start Ferry's database empty (e.g. for an older release, whose db sync refuses a newer schema). */
  freshDatabase?: boolean;
}

export async function up(log: Log, opts: UpOptions = {}): Promise<CloudStatus> {
  fs.mkdirSync(path.join(stateDir, 'run'), { recursive: true });
  fs.mkdirSync(path.join(stateDir, 'log'), { recursive: true });
  const t0 = Date.now();
  const step = (s: string) => log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${s}`);

  // First: an unknown revision (or one that does not build) fails before anything changed.
  const release = opts.release === undefined ? null : await prepareRelease(opts.release, step);
  const criu = await criuInfo();
  if (!criu.binary) throw new Error('CRIU is not installed: run scripts/install.sh first');
  ensureRuncCriuConf(step);
  // The control plane's shape (database, conductors): as asked, else as it was.
  const was = readShape();
  const shape: CloudShape = { ...was, ...opts.shape };
  checkShape(shape);
  if (shape.db !== was.db || shape.conductors !== was.conductors) {
    step(`control plane: ${was.db} with ${was.conductors} conductor(s) -> ${shape.db} with ${shape.conductors}; Ferry's services restart`);
    await stopServices();
    writeShape(shape);
  }
  if (shape.hosts !== was.hosts) {
    step(`compute hosts: ${was.hosts} -> ${shape.hosts}`);
    const gone = cloudHosts(was).slice(shape.hosts);
    if (gone.length) {
      await stopComputeServices(gone);
      await removeHosts(gone);
      step(`took ${gone.join(', ')} out (engines stopped, namespaces removed; their data roots stay)`);
    }
    writeShape(shape);
  }
  if (shape.neutron !== was.neutron) writeShape(shape);
  const hosts = cloudHosts(shape);
  if (shape.db === 'mariadb') {
    step('MariaDB');
    await startCloudMariadb(step);
  } else if (!shape.neutron && (await stopCloudMariadb())) {
    step(`stopped MariaDB (the conductors use ${shape.db}; its data stays for the next --db mariadb)`);
  }
  if (shape.db === 'galera') {
    step('Galera (three MariaDB nodes)');
    await startCloudGalera(step);
  } else if (await stopCloudGalera()) {
    step(`stopped Galera (the conductors use ${shape.db}; its data stays for the next --db galera)`);
  }

  if (opts.freshDatabase) await emptyDatabase(shape, step);
  // Neutron's schema migrates and its server starts while the rest comes up (they need only MariaDB).
  const neutronDb = shape.neutron ? startNeutronServer(step) : stopNeutron().then((ran) => ran && step('stopped Neutron (up --no-neutron)'));

  if (opts.rabbitCluster !== undefined) await chooseRabbitCluster(opts.rabbitCluster, step, stopServices);
  step(rabbitClusterSize() === 3 ? 'RabbitMQ (a cluster of three nodes)' : 'RabbitMQ (two nodes, started in parallel)');
  const rabbit = startRabbit(step);
  step('Keystone');
  const keystone = startKeystone(step);
  // The fabric's links come first: an engine restores its macvlan network at start only if
  // the parent interface is already there (after `down`, the namespaces were recreated).
  step('tenant network ferry-fabric');
  await ensureFabricLinks(hosts, step);
  step('compute hosts');
  await Promise.all(hosts.map((h) => startEngine(h, step)));
  for (const h of hosts) await ensureFabricNetwork(h);
  step('test images on compute1');
  await ensureImages('compute1', step);
  await Promise.all([rabbit, keystone, neutronDb]);
  if (shape.neutron) {
    step('Neutron');
    await startNeutron(step);
  }
  writeConfigFiles();
  if (opts.services !== false) {
    step(`Ferry services (${describeCode(release)})`);
    await startServices(step, release);
    step('Horizon');
    await startHorizon(step);
  }
  step('cloud is up');
  return status();
}

export async function down(log: Log): Promise<void> {
  log('stopping Horizon');
  await stopHorizon();
  log('stopping Ferry services');
  await stopServices();
  if (await stopNeutron()) log('stopped Neutron');
  // Hosts of a larger shape than the current one too: `down` leaves nothing running.
  for (const h of hostNames(MAX_HOSTS)) {
    if (engineRunning(h)) log(`stopping Docker engine ${h}`);
    await stopEngine(h);
  }
  log('stopping Keystone and the RabbitMQ nodes');
  await stopKeystone();
  await stopRabbit();
  if (await stopCloudMariadb()) log('stopped MariaDB');
  if (await stopCloudGalera()) log('stopped Galera');
  log('removing network namespaces');
  await deleteNamespaces();
}

export async function status(): Promise<CloudStatus> {
  const services = await servicesState();
  const brokers = await brokersState();
  const hosts = await Promise.all(
    cloudHosts().map(async (h) => {
      const d = hostDirs(h);
      const upNow = engineRunning(h) && (await pingEngine(d.socket));
      return {
        name: h,
        docker_host: `unix://${d.socket}`,
        netns: hostNetns(h),
        data_root: d.dataRoot,
        exec_root: d.execRoot,
        state: upNow ? ('up' as const) : ('down' as const),
        migration_address: `127.0.0.1:${FERRY_PORTS.migration[h]}`,
      };
    }),
  );
  const result: CloudStatus = {
    state_dir: stateDir,
    keystone: {
      auth_url: KEYSTONE.authUrl,
      admin: credentials.admin,
      demo: credentials.demo,
      reader: credentials.reader,
      service: credentials.service,
      state: await keystoneState(),
    },
    rabbit: {
      transport_url: brokerUrl(brokerNames()[0]),
      admin_transport_url: brokerUrl(brokerNames()[0], ''),
      services_transport_url: transportUrl(),
      ca_file: brokerCaFile(),
      state: brokers.every((b) => b.state === 'up') ? 'up' : 'down',
      brokers,
      cluster_size: rabbitClusterSize(),
      nodes: brokers.map((b) => ({ name: b.name, node: b.node, port: b.port, tls_port: b.tls_port, pid: b.pid })),
    },
    hosts,
    fabric: {
      network: FABRIC.network,
      subnet: FABRIC.subnet,
      gateway: FABRIC.gateway,
      client_netns: FABRIC.clientNetns,
      client_ip: FABRIC.clientIp,
      bridge_netns: FABRIC.bridgeNetns,
    },
    criu: await criuInfo(),
    config_files: configFiles(),
    services,
    database: await (async () => {
      const shape = readShape();
      const pid = cloudMariadbPid();
      const galera = shape.db === 'galera' ? await cloudGaleraStatus() : [];
      return {
        kind: shape.db,
        connection: redact(databaseUrl(shape)),
        conductors: shape.conductors,
        ...(shape.db === 'mariadb' || pid !== null
          ? { mariadb: { state: pid !== null ? ('up' as const) : ('down' as const), pid, port: MARIADB.port, datadir: MARIADB.datadir } }
          : {}),
        ...(shape.db === 'galera'
          ? { galera: galera.map((n) => ({ name: n.name, port: n.port, pid: n.pid, state: n.state, cluster_size: n.clusterSize })) }
          : {}),
      };
    })(),
  };
  const releases = servicesOnReleases();
  if (Object.keys(releases).length) result.releases = releases;
  if ('ferry-api' in services) result.api = { url: `${apiUrl}/v1`, state: services['ferry-api'] };
  const neutron = await neutronStatus(readShape().neutron);
  if (neutron) result.neutron = neutron;
  if (horizonInstalled()) result.horizon = { url: horizonUrl, state: await horizonState() };
  return result;
}
