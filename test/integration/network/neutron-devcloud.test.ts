/**
 * The development cloud's Neutron (`ferry-devcloud up --neutron`), for real: neutron-server with
 * Keystone auth, a linuxbridge agent in each compute host's namespace, a VXLAN tenant network.
 * Two ports of the tenant network, one bound to compute1 and one to compute2, are plugged the
 * way os-vif plugs a VM's (tap `tap<port[:11]>` in the host's namespace, enslaved into
 * `brq<network[:11]>`), each with its other end in a namespace of this test's own; the agents
 * wire them (ACTIVE), and the two ends talk over VXLAN, within the port's security group and
 * anti-spoofing rules.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { adminNeutronClient } from '../../../src/devcloud/neutron.js';
import { KeystoneClient, pickEndpoint } from '../../../src/identity/keystone.js';
import { plugPort, unplugPort } from '../../../src/network/linuxbridge.js';
import { bridgeName, tapName, type NeutronPort } from '../../../src/network/neutron.js';
import { cloud, runDevcloud } from '../../helpers/cloud.js';

const client = adminNeutronClient();

function sh(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

function neutron() {
  const n = cloud().neutron;
  if (!n || n.state !== 'up' || !n.networks.tenant) throw new Error('Neutron is not up in the development cloud: run `ferry-devcloud up --neutron`');
  return { ...n, tenant: n.networks.tenant };
}

const hostNs = (host: string) => cloud().hosts.find((h) => h.name === host)?.netns ?? `ferry-${host}`;

interface Plugged {
  port: NeutronPort;
  host: string;
  netns: string;
  ip: string;
}

const plugged: Plugged[] = [];

/** A port on the tenant network bound to `host`, plugged with its end in a namespace of the test's own. */
async function plugNewPort(host: string, tag: string): Promise<Plugged> {
  const { tenant } = neutron();
  const port = await client.createPort({
    network_id: tenant.id,
    project_id: tenant.project_id,
    name: `ferry-test-${tag}`,
    device_owner: 'compute:ferry',
    device_id: crypto.randomUUID(),
    'binding:host_id': host,
  });
  const netns = `ferry-nt-${tag}`;
  const p: Plugged = { port, host, netns, ip: port.fixed_ips[0].ip_address };
  plugged.push(p);
  await sh('ip', ['netns', 'del', netns]);
  expect((await sh('ip', ['netns', 'add', netns])).code).toBe(0);
  const net = await client.getNetwork(tenant.id);
  await plugPort(port, Number(tenant.subnet.split('/')[1]), { hostNetns: hostNs(host), netns, ifname: 'eth0', mtu: net.mtu ?? 1450 });
  return p;
}

// Neutron runs for this file only (its agents' rules stay out of the other tests' hosts).
beforeAll(async () => {
  await runDevcloud(['up', '--neutron']);
}, 600_000);

afterAll(async () => {
  for (const p of plugged) {
    await client.deletePort(p.port.id).catch(() => undefined);
    await unplugPort(p.port.id, hostNs(p.host));
    await sh('ip', ['netns', 'del', p.netns]);
  }
  await runDevcloud(['up', '--no-neutron']);
}, 600_000);

describe('Neutron in the development cloud', () => {
  it('is in the Keystone catalog as type network, with binding-extended, and an alive linuxbridge agent per compute host', async () => {
    const n = neutron();
    const creds = cloud().keystone.admin;
    const ks = new KeystoneClient({ authUrl: cloud().keystone.auth_url, credentials: creds });
    const issued = await ks.issueToken(creds);
    expect(pickEndpoint(issued.catalog, 'network', 'public', 'RegionOne')?.replace(/\/+$/, '')).toBe(n.url);

    const aliases = (await client.listExtensions()).map((e) => e.alias);
    expect(aliases).toEqual(expect.arrayContaining(['binding', 'binding-extended', 'port-security', 'security-group', 'provider']));

    const agents = await client.listAgents({ binary: 'neutron-linuxbridge-agent' });
    expect(agents.map((a) => [a.host, a.alive]).sort()).toEqual([
      ['compute1', true],
      ['compute2', true],
    ]);
    for (const a of agents) expect(a.configurations).toMatchObject({ tunnel_types: ['vxlan'] });

    const nets = await client.listNetworks({ name: n.tenant.name });
    expect(nets.map((x) => [x.id, x['provider:network_type']])).toEqual([[n.tenant.id, 'vxlan']]);
    expect(n.networks.provider?.network_type).toBe('flat');
  });

  it('wires ports plugged as os-vif plugs them on compute1 and compute2 (ACTIVE), and they talk over VXLAN', async () => {
    const n = neutron();
    const a = await plugNewPort('compute1', 'a');
    const b = await plugNewPort('compute2', 'b');
    const t0 = Date.now();
    await client.waitForPortStatus(a.port.id, 'ACTIVE', 60_000);
    await client.waitForPortStatus(b.port.id, 'ACTIVE', 60_000);
    const activeMs = Date.now() - t0;

    // One binding each, active, on its host; the agent put the tunnel into the network's bridge.
    const bindings = await client.listBindings(a.port.id);
    expect(bindings.map((x) => [x.host, x.status])).toEqual([['compute1', 'ACTIVE']]);
    const bridge = await sh('ip', ['-n', hostNs('compute1'), '-o', 'link', 'show', 'master', bridgeName(n.tenant.id)]);
    expect(bridge.out).toContain(tapName(a.port.id));
    expect(bridge.out).toContain(`vxlan-${n.tenant.segmentation_id}`);

    const ping = await sh('ip', ['netns', 'exec', a.netns, 'busybox', 'ping', '-c', '3', '-W', '2', b.ip]);
    expect(ping.out).toMatch(/3 packets received/);

    // TCP from compute1's port to a listener behind compute2's (the default group admits its own members).
    const server = spawn('ip', ['netns', 'exec', b.netns, 'busybox', 'sh', '-c', 'echo from-b | busybox nc -l -p 9000'], { stdio: 'ignore' });
    try {
      let got = '';
      for (let i = 0; i < 20 && !got.includes('from-b'); i++) {
        got = (await sh('ip', ['netns', 'exec', a.netns, 'busybox', 'nc', '-w', '2', b.ip, '9000'])).out;
        if (!got.includes('from-b')) await new Promise((r) => setTimeout(r, 200));
      }
      expect(got).toContain('from-b');
    } finally {
      server.kill();
    }

    // Anti-spoofing is in force: an address Neutron did not give the port does not get through.
    const spoofed = n.tenant.subnet.replace(/\.0\/\d+$/, '.250');
    await sh('ip', ['-n', a.netns, 'addr', 'flush', 'dev', 'eth0']);
    await sh('ip', ['-n', a.netns, 'addr', 'add', `${spoofed}/24`, 'dev', 'eth0']);
    const blocked = await sh('ip', ['netns', 'exec', a.netns, 'busybox', 'ping', '-c', '2', '-W', '1', b.ip]);
    expect(blocked.out).toMatch(/ 0 packets received/);

    // Allowing that address updates the port: the agent rewrites the tap's anti-spoofing rules and
    // deletes its old MAC rule first, which ebtables-nft cannot do by the rule's spec (the dev cloud's
    // agent deletes it by number; unfixed, the agent retries for ever and wires nothing more).
    await client.updatePort(a.port.id, { allowed_address_pairs: [{ ip_address: spoofed }] });
    const ebtables = async (chain: string) => (await sh('ip', ['netns', 'exec', hostNs('compute1'), 'ebtables', '-t', 'nat', '--concurrent', '-L', chain])).out;
    let arpRules = '';
    for (let i = 0; i < 60 && !arpRules.includes(spoofed); i++) {
      arpRules = await ebtables(`neutronARP-${tapName(a.port.id)}`);
      if (!arpRules.includes(spoofed)) await new Promise((r) => setTimeout(r, 250));
    }
    expect(arpRules).toContain(spoofed);
    const macRules = await ebtables(`neutronMAC-${tapName(a.port.id)}`);
    expect(macRules.split('\n').filter((l) => l.includes('--among-src'))).toHaveLength(1);
    // ... and the agent goes on wiring: the port is ACTIVE and its own address gets through again.
    await sh('ip', ['-n', a.netns, 'addr', 'flush', 'dev', 'eth0']);
    await sh('ip', ['-n', a.netns, 'addr', 'add', `${a.ip}/24`, 'dev', 'eth0']);
    expect((await sh('ip', ['netns', 'exec', a.netns, 'busybox', 'ping', '-c', '2', '-W', '2', b.ip])).out).toMatch(/ 2 packets received/);
    expect((await client.getPort(a.port.id)).status).toBe('ACTIVE');

    process.stderr.write(`ports ACTIVE ${activeMs} ms after plugging\n`);
  });
});
