/**
 * A container on a Neutron network through Ferry's Docker network driver (the libnetwork remote
 * protocol kuryr-libnetwork speaks), on the development cloud's Neutron: compute1's engine
 * creates a network of the driver over the VXLAN tenant network, `docker run --network` gets a
 * Neutron port (address from Neutron, bound to compute1, tap plugged into the network's bridge),
 * the port goes ACTIVE, and a port on compute2 reaches the container's HTTP server over VXLAN.
 * The driver is served from this test's process, on the socket the engine looks for.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import type http from 'node:http';
import { adminNeutronClient } from '../../../src/devcloud/neutron.js';
import { DOCKER_CLI } from '../../../src/devcloud/layout.js';
import { NeutronDockerDriver } from '../../../src/network/libnetwork.js';
import { plugPort, plugPortForDocker, unplugPort } from '../../../src/network/linuxbridge.js';
import { tapName, type NeutronPort } from '../../../src/network/neutron.js';
import { servePlugin } from '../../../src/network/plugin-server.js';
import { cloud, host, runDevcloud } from '../../helpers/cloud.js';

const client = adminNeutronClient();
const DRIVER = 'ferry-neutron-test-compute1';
const NETWORK = 'nt-tenant';
const CONTAINER = `nt-counter-${crypto.randomBytes(3).toString('hex')}`;
const PEER_NS = 'ferry-nt-docker-peer';

function sh(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const docker = (args: string[]) => sh(DOCKER_CLI, ['-H', host('compute1').docker_host, ...args]);

let server: http.Server | undefined;
let peer: NeutronPort | undefined;

// Neutron runs for this file only (its agents' rules stay out of the other tests' hosts).
beforeAll(async () => {
  await runDevcloud(['up', '--neutron']);
}, 600_000);

afterAll(async () => {
  await docker(['rm', '-f', CONTAINER]);
  await docker(['network', 'rm', NETWORK]);
  if (peer) {
    await client.deletePort(peer.id).catch(() => undefined);
    await unplugPort(peer.id, host('compute2').netns);
  }
  await sh('ip', ['netns', 'del', PEER_NS]);
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await runDevcloud(['up', '--no-neutron']);
}, 600_000);

it('docker run --network on a Neutron network: a bound, ACTIVE Neutron port that a port on the other host reaches over VXLAN', async () => {
  const tenant = cloud().neutron?.networks.tenant;
  if (!tenant) throw new Error('Neutron is not up in the development cloud: run `ferry-devcloud up --neutron`');
  const ns1 = host('compute1').netns;
  const driver = new NeutronDockerDriver(client, {
    host: 'compute1',
    deviceOwner: 'compute:ferry',
    plug: (port, network) => plugPortForDocker(port, ns1, network.mtu ?? 1450),
    unplug: (portId) => unplugPort(portId, ns1),
  });
  server = await servePlugin(DRIVER, driver);

  await docker(['network', 'rm', NETWORK]);
  const made = await docker([
    'network',
    'create',
    '-d',
    DRIVER,
    '--ipam-driver',
    DRIVER,
    '--subnet',
    tenant.subnet,
    '-o',
    `neutron.net.name=${tenant.name}`,
    NETWORK,
  ]);
  expect(made).toEqual({ code: 0, out: expect.any(String) as unknown });
  const run = await docker(['run', '-d', '--name', CONTAINER, '--network', NETWORK, 'ferry/counter']);
  expect(run).toEqual({ code: 0, out: expect.stringMatching(/^[0-9a-f]{64}\n$/) as unknown });

  const inspect = JSON.parse((await docker(['inspect', CONTAINER])).out) as {
    NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string; EndpointID: string }> };
  }[];
  const ep = inspect[0].NetworkSettings.Networks[NETWORK];
  const ports = await client.listPorts({ device_id: ep.EndpointID });
  expect(ports).toHaveLength(1);
  const port = ports[0];
  expect(port.fixed_ips[0].ip_address).toBe(ep.IPAddress);
  expect(port.mac_address).toBe(ep.MacAddress);
  expect([port.device_owner, port['binding:host_id']]).toEqual(['compute:ferry', 'compute1']);
  await client.waitForPortStatus(port.id, 'ACTIVE', 60_000);
  expect((await sh('ip', ['-n', ns1, 'link', 'show', tapName(port.id)])).code).toBe(0);

  // A port on compute2 (same project, so the default security group admits it) reads the counter.
  peer = await client.createPort({
    network_id: tenant.id,
    name: 'ferry-test-docker-peer',
    device_owner: 'compute:ferry',
    device_id: crypto.randomUUID(),
    'binding:host_id': 'compute2',
  });
  await sh('ip', ['netns', 'del', PEER_NS]);
  await sh('ip', ['netns', 'add', PEER_NS]);
  await plugPort(peer, Number(tenant.subnet.split('/')[1]), { hostNetns: host('compute2').netns, netns: PEER_NS, ifname: 'eth0', mtu: 1450 });
  await client.waitForPortStatus(peer.id, 'ACTIVE', 60_000);
  // An HTTP GET over busybox nc (this busybox's wget crashes here), retried while compute1's agent
  // adds the new peer to the security group's members.
  const get = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 ${ep.IPAddress} 8080`;
  let got = '';
  for (let i = 0; i < 20 && !/\r?\n\d+\s*$/.test(got); i++) {
    got = (await sh('ip', ['netns', 'exec', PEER_NS, 'busybox', 'sh', '-c', get], 10_000)).out;
    if (!/\r?\n\d+\s*$/.test(got)) await new Promise((r) => setTimeout(r, 300));
  }
  if (!/\r?\n\d+\s*$/.test(got)) {
    // What the two ends see, shown with the failure.
    const diag = {
      ping: (await sh('ip', ['netns', 'exec', PEER_NS, 'busybox', 'ping', '-c', '2', '-W', '1', ep.IPAddress])).out,
      containerArp: (await docker(['exec', CONTAINER, 'cat', '/proc/net/arp'])).out,
      filter: (await sh('ip', ['netns', 'exec', ns1, 'iptables-save', '-c'])).out
        .split('\n')
        .filter((l) => l.includes(port.id.slice(0, 10)))
        .join('\n'),
    };
    expect({ got, diag }).toEqual({ got: expect.stringMatching(/\n\d+\s*$/) as unknown, diag: {} });
  }
  expect(got).toMatch(/^HTTP\/1\.[01] 200/);

  // Removing the container gives the port back: Neutron deletes the one the driver made.
  await docker(['rm', '-f', CONTAINER]);
  expect(await client.listPorts({ device_id: ep.EndpointID })).toEqual([]);
});
