/**
 * Neutron in the development cloud (`up --neutron`): Debian's neutron-server (ML2: flat and
 * VXLAN type drivers, the linuxbridge mechanism driver, port security, the iptables firewall)
 * on 127.0.0.1:9696 with Keystone auth, its database on the dev cloud's MariaDB, registered in
 * Keystone as type `network`; one neutron-linuxbridge-agent per compute host inside that host's
 * namespace (`host = computeN`, VXLAN from the host's fabric address); a flat provider network
 * over the fabric and a VXLAN tenant network of the demo project, made once.
 *
 * What this machine kind needs (docs/platform-facts.md, "Neutron"): Neutron's migrations do not
 * run on SQLite; an agent in a namespace cannot reach the root namespace's 127.0.0.1, so each
 * host gets a relay of the broker's port (a socat in the namespace, joined to one in the root
 * namespace by a Unix socket: sockets on the file system cross namespaces); and ebtables-nft
 * cannot delete an `--among-src` rule by its spec, so the agent runs from a wrapper that deletes
 * those rules by number (named `neutron-linuxbridge-agent`: the agent's iptables chains are
 * named after argv[0]).
 */
import fs from 'node:fs';
import path from 'node:path';
import { registerCatalog } from '../identity/catalog.js';
import { KeystoneClient } from '../identity/keystone.js';
import { NeutronClient, type NeutronNetwork } from '../network/neutron.js';
import { writeIfChanged } from './files.js';
import { credentials } from './keystone.js';
import { FABRIC, KEYSTONE, MARIADB, MAX_HOSTS, RABBIT, hostNames, hostNetns, runDir, stateDir } from './layout.js';
import { cloudHosts } from './shape.js';
import { mariadbUrl, provisionMariadb, startMariadb } from './mariadb.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';
import { rabbitctl } from './rabbit.js';
import type { NeutronNetworkInfo, NeutronStatus } from './status.js';
import { mariadbPaths } from './shape.js';

export const NEUTRON = {
  port: 9696,
  url: 'http://127.0.0.1:9696',
  /** Its database on the dev cloud's MariaDB, and its Keystone and RabbitMQ accounts. */
  db: { database: 'neutron', user: 'neutron', password: 'ferry-dev-neutron-db' }, // throwaway development-cloud secrets
  keystoneUser: 'neutron',
  keystonePassword: 'ferry-dev-neutron',
  vhost: 'neutron',
  /** The fabric as Neutron's flat physical network, and each host's interface on it. */
  physnet: 'fabric',
  physicalInterface: 'fabric0',
  vniRange: '1001:2000',
  provider: { name: 'ferry-provider', allocationPool: { start: '10.250.0.200', end: '10.250.0.250' } },
  tenant: { name: 'ferry-tenant', cidr: '10.251.0.0/24', gateway: '10.251.0.1' },
};

const dir = path.join(stateDir, 'neutron');
const serverConf = path.join(dir, 'neutron.conf');
const ml2Conf = path.join(dir, 'ml2_conf.ini');
const serverPid = path.join(stateDir, 'run', 'neutron-server.pid');
const networksFile = path.join(dir, 'networks.json');
const dbStamp = path.join(dir, 'db-synced');
/** The broker's relay: the root namespace's end, reached from every host's namespace. */
const amqpSocket = path.join(runDir, 'neutron-amqp.sock');
const relayPid = path.join(stateDir, 'run', 'neutron-amqp-relay.pid');
const agentWrapper = path.join(dir, 'bin', 'neutron-linuxbridge-agent');

/** The address VXLAN uses on each host: on its fabric interface, outside Docker's and the provider network's ranges. */
export function fabricAddress(host: string): string {
  const i = hostNames(MAX_HOSTS).indexOf(host);
  if (i < 0) throw new Error(`unknown compute host ${host}`);
  return `10.250.0.${11 + i}`;
}

function agentPaths(host: string) {
  return {
    conf: path.join(dir, 'hosts', host, 'linuxbridge_agent.ini'),
    state: path.join(dir, 'hosts', host, 'state'),
    pidFile: path.join(stateDir, 'run', `neutron-agent-${host}.pid`),
    logFile: path.join(stateDir, 'log', `neutron-agent-${host}.log`),
    relayPidFile: path.join(stateDir, 'run', `neutron-amqp-relay-${host}.pid`),
  };
}

function transportUrl(): string {
  const b = RABBIT.brokers[0];
  return `rabbit://${RABBIT.user}:${RABBIT.password}@127.0.0.1:${b.port}/${NEUTRON.vhost}`;
}

function ini(sections: Record<string, Record<string, string | number | boolean>>): string {
  return `${Object.entries(sections)
    .map(([name, kv]) => [`[${name}]`, ...Object.entries(kv).map(([k, v]) => `${k} = ${String(v)}`)].join('\n'))
    .join('\n\n')}\n`;
}

/** Retry the broker every second or so (oslo.messaging backs off to 30 s): the server starts before RabbitMQ is up. */
const RECONNECT = { rabbit_retry_interval: 1, rabbit_retry_backoff: 1, rabbit_interval_max: 3 };

function writeServerConfig(): void {
  fs.mkdirSync(path.join(dir, 'state'), { recursive: true });
  const authHost = new URL(KEYSTONE.authUrl).origin;
  writeIfChanged(
    serverConf,
    ini({
      DEFAULT: {
        core_plugin: 'ml2',
        service_plugins: '',
        auth_strategy: 'keystone',
        bind_host: '127.0.0.1',
        bind_port: NEUTRON.port,
        // One process of each kind: ~300 MiB instead of one per core.
        api_workers: 1,
        rpc_workers: 1,
        rpc_state_report_workers: 1,
        transport_url: transportUrl(),
        state_path: path.join(dir, 'state'),
        // No Nova here: nobody to tell about port changes.
        notify_nova_on_port_status_changes: false,
        notify_nova_on_port_data_changes: false,
        // An agent is dead after 15 s without a report (they report every 5 s).
        agent_down_time: 15,
        allow_overlapping_ips: true,
      },
      database: { connection: mariadbUrl(MARIADB.port, NEUTRON.db) },
      keystone_authtoken: {
        www_authenticate_uri: authHost,
        auth_url: authHost,
        auth_type: 'password',
        project_domain_name: 'Default',
        user_domain_name: 'Default',
        project_name: 'service',
        username: NEUTRON.keystoneUser,
        password: NEUTRON.keystonePassword,
        region_name: KEYSTONE.region,
      },
      oslo_concurrency: { lock_path: path.join(dir, 'lock') },
      oslo_messaging_rabbit: RECONNECT,
      // Zed marks the linuxbridge driver experimental: the server refuses it without this.
      experimental: { linuxbridge: true },
    }),
  );
  writeIfChanged(
    ml2Conf,
    ini({
      ml2: { type_drivers: 'flat,vxlan', tenant_network_types: 'vxlan', mechanism_drivers: 'linuxbridge', extension_drivers: 'port_security' },
      ml2_type_flat: { flat_networks: NEUTRON.physnet },
      ml2_type_vxlan: { vni_ranges: NEUTRON.vniRange },
      securitygroup: { enable_security_group: true, firewall_driver: 'iptables' },
    }),
  );
}

function writeAgentConfig(host: string): void {
  const p = agentPaths(host);
  fs.mkdirSync(p.state, { recursive: true });
  writeIfChanged(
    p.conf,
    ini({
      DEFAULT: { host, transport_url: transportUrl(), state_path: p.state },
      // Root already: no sudo or rootwrap.
      agent: { root_helper: '', polling_interval: 2, report_interval: 5 },
      oslo_concurrency: { lock_path: path.join(p.state, 'lock') },
      oslo_messaging_rabbit: RECONNECT,
      linux_bridge: { physical_interface_mappings: `${NEUTRON.physnet}:${NEUTRON.physicalInterface}` },
      vxlan: { enable_vxlan: true, local_ip: fabricAddress(host), l2_population: false },
      securitygroup: { enable_security_group: true, firewall_driver: 'iptables' },
    }),
  );
}

/**
 * The agent with one fix: ebtables-nft rejects `-D CHAIN <rule spec>` for a rule with
 * `--among-src` (and Neutron retries that for ever); listing the chain with numbers and
 * deleting by number works.
 */
const AGENT_WRAPPER = `#!/usr/bin/python3
# Written by Ferry's development cloud (src/devcloud/neutron.ts): neutron-linuxbridge-agent,
# deleting its MAC-spoofing rules by number (ebtables-nft cannot delete --among-src rules by spec).
import re
import sys

from neutron.cmd.eventlet.plugins.linuxbridge_neutron_agent import main
from neutron.plugins.ml2.drivers.linuxbridge.agent import arp_protect


def _delete_vif_mac_rules(vif, current_rules):
    if not any('-i %s' % vif in r and '--among-src' in r for r in current_rules):
        return
    chain = arp_protect._mac_chain_name(vif)
    numbers = []
    for line in arp_protect.ebtables(['-L', chain, '--Ln']).splitlines():
        m = re.match(r'\\s*(\\d+)\\.?\\s', line)
        if m and '-i %s' % vif in line and '--among-src' in line:
            numbers.append(int(m.group(1)))
    for n in sorted(numbers, reverse=True):
        arp_protect.ebtables(['-D', chain, str(n)])


arp_protect._delete_vif_mac_rules = _delete_vif_mac_rules

if __name__ == '__main__':
    sys.exit(main())
`;

export function neutronInstalled(): boolean {
  return fs.existsSync('/usr/bin/neutron-server') && fs.existsSync('/usr/bin/neutron-linuxbridge-agent') && fs.existsSync('/usr/bin/neutron-db-manage');
}

function serverRunning(): number | null {
  return runningPid(serverPid, serverConf);
}

/**
 * The dev cloud's MariaDB (whatever Ferry's own database is), Neutron's database and its schema
 * (migrated once per Neutron version), then neutron-server: it needs nothing else to start, and
 * its ~20 s of start-up overlap RabbitMQ's and Keystone's (it connects to the broker when that is up).
 */
export async function startNeutronServer(log: (s: string) => void): Promise<void> {
  if (!neutronInstalled()) throw new Error('Neutron is not installed (neutron-server, neutron-linuxbridge-agent): run scripts/install.sh first');
  writeServerConfig();
  await startMariadb(mariadbPaths, MARIADB.port);
  await provisionMariadb(mariadbPaths, NEUTRON.db);
  const version = (await run('dpkg-query', ['-W', '-f=${Version}', 'python3-neutron'])).stdout.trim();
  const heads = await run(
    '/usr/bin/mariadb',
    ['--no-defaults', '-S', MARIADB.socket, '-u', 'root', '-N', '-e', `SELECT COUNT(*) FROM \`${NEUTRON.db.database}\`.alembic_version`],
    { allowFail: true },
  );
  const stamped = fs.existsSync(dbStamp) && fs.readFileSync(dbStamp, 'utf8').trim() === version;
  if (!stamped || heads.code !== 0 || Number(heads.stdout.trim()) === 0) {
    log(`Neutron ${version}: migrating its database on MariaDB (neutron-db-manage upgrade heads, about 25 s)`);
    await run('neutron-db-manage', ['--config-file', serverConf, '--config-file', ml2Conf, 'upgrade', 'heads'], { timeoutMs: 600_000 });
    fs.writeFileSync(dbStamp, `${version}\n`);
  }
  if (serverRunning() === null) {
    log(`starting neutron-server on ${NEUTRON.url}`);
    startDaemon({
      name: 'neutron-server',
      cmd: '/usr/bin/neutron-server',
      args: ['--config-file', serverConf, '--config-file', ml2Conf],
      pidFile: serverPid,
      logFile: path.join(stateDir, 'log', 'neutron-server.log'),
      marker: serverConf,
    });
  }
}

/** The Keystone user `neutron` (admin in project service) and the `network` service with its endpoints. */
async function registerInKeystone(): Promise<void> {
  const ks = new KeystoneClient({ authUrl: KEYSTONE.authUrl, credentials: credentials.admin });
  const idOf = async (kind: 'projects' | 'roles' | 'users', name: string): Promise<string | null> => {
    const r = await ks.request('GET', `/${kind}?name=${encodeURIComponent(name)}`);
    return ((r.json as Record<string, { id: string }[]>)[kind] ?? [])[0]?.id ?? null;
  };
  const project = await idOf('projects', 'service');
  const admin = await idOf('roles', 'admin');
  if (!project || !admin) throw new Error('Keystone has no project "service" or role "admin" yet');
  let user = await idOf('users', NEUTRON.keystoneUser);
  if (!user) {
    const made = await ks.request('POST', '/users', {
      body: { user: { name: NEUTRON.keystoneUser, domain_id: 'default', password: NEUTRON.keystonePassword, default_project_id: project } },
    });
    if (made.status !== 201) throw new Error(`creating Keystone user ${NEUTRON.keystoneUser}: HTTP ${made.status}`);
    user = (made.json as { user: { id: string } }).user.id;
  }
  const grant = await ks.request('PUT', `/projects/${project}/users/${user}/roles/${admin}`);
  if (grant.status !== 204) throw new Error(`granting admin in service to ${NEUTRON.keystoneUser}: HTTP ${grant.status}`);
  await registerCatalog(ks, {
    url: NEUTRON.url,
    region: KEYSTONE.region,
    serviceName: 'neutron',
    serviceType: 'network',
    description: 'OpenStack Networking (development cloud)',
  });
}

/** A Neutron client with the admin's token (the dev cloud's chores and tests). */
export function adminNeutronClient(): NeutronClient {
  const ks = new KeystoneClient({ authUrl: KEYSTONE.authUrl, credentials: credentials.admin });
  let token: string | undefined;
  return new NeutronClient({
    endpoint: NEUTRON.url,
    token: async (renew) => {
      if (!token || renew) token = (await ks.issueToken(credentials.admin, { catalog: false })).token;
      return token;
    },
  });
}

async function startRelays(log: (s: string) => void): Promise<void> {
  const b = RABBIT.brokers[0];
  fs.mkdirSync(path.dirname(amqpSocket), { recursive: true });
  if (runningPid(relayPid, amqpSocket) === null) {
    startDaemon({
      name: 'neutron-amqp-relay',
      cmd: 'socat',
      args: [`UNIX-LISTEN:${amqpSocket},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${b.port}`],
      pidFile: relayPid,
      logFile: path.join(stateDir, 'log', 'neutron-amqp-relay.log'),
      marker: amqpSocket,
    });
  }
  await waitFor('the broker relay socket', () => fs.existsSync(amqpSocket), 10_000, 50);
  for (const host of cloudHosts()) {
    const p = agentPaths(host);
    if (runningPid(p.relayPidFile, amqpSocket) !== null) continue;
    startDaemon({
      name: `neutron-amqp-relay-${host}`,
      cmd: 'ip',
      args: ['netns', 'exec', hostNetns(host), 'socat', `TCP-LISTEN:${b.port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${amqpSocket}`],
      pidFile: p.relayPidFile,
      logFile: path.join(stateDir, 'log', `neutron-amqp-relay-${host}.log`),
      marker: amqpSocket,
    });
  }
  log(`RabbitMQ relayed into the compute namespaces as 127.0.0.1:${b.port} (vhost ${NEUTRON.vhost})`);
}

/** The host's address on the fabric, where its VXLAN tunnels start. */
async function ensureFabricAddress(host: string): Promise<void> {
  const ns = hostNetns(host);
  const addr = `${fabricAddress(host)}/${FABRIC.prefix}`;
  const have = (await run('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', NEUTRON.physicalInterface])).stdout;
  if (!have.includes(` ${addr} `)) await run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', NEUTRON.physicalInterface]);
}

function startAgent(host: string): void {
  const p = agentPaths(host);
  if (runningPid(p.pidFile, p.conf) !== null) return;
  // `ip netns exec` (not nsenter): it also mounts the namespace's own /sys, where the agent looks for its devices.
  startDaemon({
    name: `neutron-agent-${host}`,
    cmd: 'ip',
    args: ['netns', 'exec', hostNetns(host), agentWrapper, '--config-file', serverConf, '--config-file', p.conf],
    pidFile: p.pidFile,
    logFile: p.logFile,
    marker: p.conf,
  });
}

async function ensureNetwork(client: NeutronClient, name: string, body: Record<string, unknown>, subnet: Record<string, unknown>): Promise<NeutronNetwork> {
  let net = (await client.listNetworks({ name }))[0];
  if (!net) net = await client.createNetwork({ name, ...body });
  if ((await client.listSubnets({ network_id: net.id })).length === 0) {
    await client.createSubnet({ name: `${name}-subnet`, network_id: net.id, ip_version: 4, enable_dhcp: false, ...subnet });
  }
  return client.getNetwork(net.id);
}

async function ensureNetworks(): Promise<Record<'provider' | 'tenant', NeutronNetworkInfo>> {
  const client = adminNeutronClient();
  const ks = new KeystoneClient({ authUrl: KEYSTONE.authUrl, credentials: credentials.admin });
  const demo = ((await ks.request('GET', '/projects?name=demo')).json as { projects: { id: string }[] }).projects[0]?.id;
  if (!demo) throw new Error('Keystone has no project "demo"');
  const provider = await ensureNetwork(
    client,
    NEUTRON.provider.name,
    { shared: true, 'provider:network_type': 'flat', 'provider:physical_network': NEUTRON.physnet },
    { cidr: FABRIC.subnet, gateway_ip: FABRIC.gateway, allocation_pools: [NEUTRON.provider.allocationPool] },
  );
  const tenant = await ensureNetwork(
    client,
    NEUTRON.tenant.name,
    { project_id: demo, 'provider:network_type': 'vxlan' },
    { project_id: demo, cidr: NEUTRON.tenant.cidr, gateway_ip: NEUTRON.tenant.gateway },
  );
  const info = (n: NeutronNetwork, cidr: string): NeutronNetworkInfo => ({
    id: n.id,
    name: n.name,
    network_type: n['provider:network_type'] ?? '',
    segmentation_id: n['provider:segmentation_id'] ?? null,
    physical_network: n['provider:physical_network'] ?? null,
    subnet: cidr,
    project_id: n.project_id,
  });
  const result = { provider: info(provider, FABRIC.subnet), tenant: info(tenant, NEUTRON.tenant.cidr) };
  writeIfChanged(networksFile, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

async function answers(): Promise<boolean> {
  try {
    return (await fetch(`${NEUTRON.url}/`, { signal: AbortSignal.timeout(2000) })).status === 200;
  } catch {
    return false;
  }
}

async function ensureVhost(): Promise<void> {
  const vhosts = (await rabbitctl(['list_vhosts', '--quiet', '--no-table-headers'])).stdout.split('\n').map((s) => s.trim());
  if (vhosts.includes(NEUTRON.vhost)) return;
  await rabbitctl(['add_vhost', NEUTRON.vhost]);
  await rabbitctl(['set_permissions', '-p', NEUTRON.vhost, RABBIT.user, '.*', '.*', '.*']);
}

/**
 * The rest of Neutron, once RabbitMQ, Keystone and the hosts' namespaces are up and the server
 * started (startNeutronServer): its vhost, its Keystone user and catalog entry, the broker relays,
 * one agent per host and the two networks; then wait until both agents are alive.
 */
export async function startNeutron(log: (s: string) => void): Promise<void> {
  await Promise.all([ensureVhost(), registerInKeystone()]);
  fs.mkdirSync(path.dirname(agentWrapper), { recursive: true });
  writeIfChanged(agentWrapper, AGENT_WRAPPER, 0o755);
  await startRelays(log);
  const hosts = cloudHosts();
  for (const host of hosts) {
    await ensureFabricAddress(host);
    writeAgentConfig(host);
    startAgent(host);
  }
  await waitFor(`neutron-server on ${NEUTRON.url} (log: ${path.join(stateDir, 'log', 'neutron-server.log')})`, answers, 120_000, 500);
  const nets = await ensureNetworks();
  log(`Neutron networks: ${nets.provider.name} (flat on ${NEUTRON.physnet}), ${nets.tenant.name} (vxlan ${nets.tenant.segmentation_id})`);
  const client = adminNeutronClient();
  await waitFor(
    `a live linuxbridge agent on ${hosts.join(' and ')} (logs: ${path.join(stateDir, 'log', 'neutron-agent-*.log')})`,
    async () => {
      const agents = await client.listAgents({ binary: 'neutron-linuxbridge-agent' });
      return hosts.every((h) => agents.some((a) => a.host === h && a.alive));
    },
    120_000,
    500,
  );
  log(`Neutron up: linuxbridge agents alive on ${hosts.join(', ')}`);
}

/** Stop the agents, the relays and the server, by PID (all at once: each takes seconds to exit). Whether anything ran. */
export async function stopNeutron(): Promise<boolean> {
  const stopped = await Promise.all([
    // Hosts of a larger shape than the current one too: nothing left running.
    ...hostNames(MAX_HOSTS).flatMap((host) => {
      const p = agentPaths(host);
      return [stopDaemon(p.pidFile, p.conf, 15_000), stopDaemon(p.relayPidFile, amqpSocket, 5_000)];
    }),
    stopDaemon(relayPid, amqpSocket, 5_000),
    stopDaemon(serverPid, serverConf, 30_000),
  ]);
  return stopped.some(Boolean);
}

/** Neutron's part of `status`: absent when it neither runs nor was asked for. */
export async function neutronStatus(enabled: boolean): Promise<NeutronStatus | undefined> {
  const pid = serverRunning();
  if (!enabled && pid === null) return undefined;
  let networks = {};
  try {
    networks = JSON.parse(fs.readFileSync(networksFile, 'utf8')) as NeutronStatus['networks'];
  } catch {
    // not made yet
  }
  return {
    url: NEUTRON.url,
    state: pid !== null && (await answers()) ? 'up' : 'down',
    pid,
    agents: cloudHosts().map((host) => ({ host, pid: runningPid(agentPaths(host).pidFile, agentPaths(host).conf) })),
    networks,
  };
}
