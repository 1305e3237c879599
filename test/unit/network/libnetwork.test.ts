/** The Docker network driver's protocol logic against an in-memory Neutron (ports, subnets); the real plug is the integration test's. */
import { InvalidInput, NetworkRequestRefused } from '../../../src/common/errors.js';
import { NeutronDockerDriver, UNBOUND_OWNER, type DriverHost } from '../../../src/network/libnetwork.js';
import type { NeutronClient, NeutronNetwork, NeutronPort, NeutronSubnet } from '../../../src/network/neutron.js';

const NET: NeutronNetwork = {
  id: 'net-1',
  name: 'ferry-tenant',
  status: 'ACTIVE',
  project_id: 'p',
  subnets: ['sub-1'],
  shared: false,
  admin_state_up: true,
  mtu: 1450,
};
const SUB: NeutronSubnet = {
  id: 'sub-1',
  name: 's',
  network_id: 'net-1',
  cidr: '10.251.0.0/24',
  ip_version: 4,
  gateway_ip: '10.251.0.1',
  enable_dhcp: false,
  allocation_pools: [],
};

function fakeNeutron() {
  const ports = new Map<string, NeutronPort>();
  let next = 10;
  const match = (p: NeutronPort, f: Record<string, unknown> = {}) =>
    (f.network_id === undefined || p.network_id === f.network_id) &&
    (f.device_id === undefined || p.device_id === f.device_id) &&
    (f.fixed_ips === undefined || p.fixed_ips.some((x) => `ip_address=${x.ip_address}` === f.fixed_ips));
  const client = {
    getNetwork: (id: string) => Promise.resolve({ ...NET, id }),
    listNetworks: (f: { name?: string }) => Promise.resolve(f.name === NET.name ? [NET] : []),
    listSubnets: (f: { id?: string; cidr?: string }) => Promise.resolve(f.id === SUB.id || f.cidr === SUB.cidr ? [SUB] : []),
    listPorts: (f: Record<string, unknown>) => Promise.resolve([...ports.values()].filter((p) => match(p, f))),
    createPort: (b: Record<string, unknown>) => {
      const fixed = (b.fixed_ips as { subnet_id: string; ip_address?: string }[])[0];
      const ip = fixed.ip_address ?? `10.251.0.${next++}`;
      const port: NeutronPort = {
        id: `port-${ip}`,
        name: String(b.name ?? ''),
        network_id: String(b.network_id),
        project_id: 'p',
        mac_address: 'fa:16:3e:00:00:01',
        fixed_ips: [{ subnet_id: fixed.subnet_id, ip_address: ip }],
        status: 'DOWN',
        admin_state_up: true,
        device_owner: String(b.device_owner ?? ''),
        device_id: String(b.device_id ?? ''),
        security_groups: [],
      };
      ports.set(port.id, port);
      return Promise.resolve(port);
    },
    updatePort: (id: string, b: Record<string, unknown>) => {
      const p = { ...ports.get(id)!, ...b } as NeutronPort;
      ports.set(id, p);
      return Promise.resolve(p);
    },
    deletePort: (id: string) => {
      ports.delete(id);
      return Promise.resolve();
    },
  };
  return { ports, client: client as unknown as NeutronClient };
}

function driver() {
  const n = fakeNeutron();
  const plugged: string[] = [];
  const host: DriverHost = {
    host: 'compute1',
    deviceOwner: 'compute:ferry',
    plug: (port) => {
      plugged.push(port.id);
      return Promise.resolve(`t${port.id.slice(0, 11)}`);
    },
    unplug: (id) => {
      plugged.splice(plugged.indexOf(id), 1);
      return Promise.resolve();
    },
  };
  return { ...n, plugged, d: new NeutronDockerDriver(n.client, host) };
}

const generic = (o: Record<string, string>) => ({ 'com.docker.network.generic': o });

async function network(d: NeutronDockerDriver) {
  await d.handle('/NetworkDriver.CreateNetwork', { NetworkID: 'dnet', Options: generic({ 'neutron.net.name': 'ferry-tenant' }) });
  return (await d.handle('/IpamDriver.RequestPool', { AddressSpace: 'ferry-neutron', Pool: '10.251.0.0/24' })) as { PoolID: string; Pool: string };
}

describe('NeutronDockerDriver', () => {
  it('activates as a network and an IPAM driver', async () => {
    expect(await driver().d.handle('/Plugin.Activate', {})).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
  });

  it('gives a container a Neutron port: address from Neutron, bound to this host, plugged on join, deleted with its endpoint', async () => {
    const { d, ports, plugged } = driver();
    const pool = await network(d);
    expect(pool.Pool).toBe('10.251.0.0/24');
    const gw = await d.handle('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Options: { RequestAddressType: 'com.docker.network.gateway' } });
    expect(gw).toEqual({ Address: '10.251.0.1/24', Data: {} });
    expect(ports.size).toBe(0); // the gateway is the subnet's, no port

    const { Address } = (await d.handle('/IpamDriver.RequestAddress', { PoolID: pool.PoolID })) as { Address: string };
    expect(Address).toBe('10.251.0.10/24');
    expect([...ports.values()][0].device_owner).toBe(UNBOUND_OWNER);

    const ep = await d.handle('/NetworkDriver.CreateEndpoint', { NetworkID: 'dnet', EndpointID: 'ep1', Interface: { Address } });
    expect(ep).toEqual({ Interface: { MacAddress: 'fa:16:3e:00:00:01' } });
    const port = [...ports.values()][0];
    expect([port.device_owner, port.device_id, port['binding:host_id']]).toEqual(['compute:ferry', 'ep1', 'compute1']);

    const join = await d.handle('/NetworkDriver.Join', { NetworkID: 'dnet', EndpointID: 'ep1', SandboxKey: '/var/run/docker/netns/x' });
    expect(join).toEqual({ InterfaceName: { SrcName: 'tport-10.251', DstPrefix: 'eth' }, Gateway: '10.251.0.1' });
    expect(plugged).toEqual([port.id]);

    await d.handle('/NetworkDriver.Leave', { NetworkID: 'dnet', EndpointID: 'ep1' });
    expect(plugged).toEqual([]);
    await d.handle('/NetworkDriver.DeleteEndpoint', { NetworkID: 'dnet', EndpointID: 'ep1' });
    expect(ports.size).toBe(0);
  });

  it('takes an existing port with --ip, and gives it back unbound', async () => {
    const { d, ports, client } = driver();
    const pool = await network(d);
    const made = await client.createPort({ network_id: 'net-1', name: 'tenant-port', fixed_ips: [{ subnet_id: 'sub-1', ip_address: '10.251.0.77' }] });
    expect(await d.handle('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '10.251.0.77' })).toEqual({ Address: '10.251.0.77/24', Data: {} });
    expect(ports.size).toBe(1); // no second port
    await d.handle('/NetworkDriver.CreateEndpoint', { NetworkID: 'dnet', EndpointID: 'ep2', Interface: { Address: '10.251.0.77/24' } });
    expect(ports.get(made.id)?.device_id).toBe('ep2');
    // A second container cannot take the same address while the first holds it.
    await expect(d.handle('/IpamDriver.RequestAddress', { PoolID: pool.PoolID, Address: '10.251.0.77' })).rejects.toBeInstanceOf(NetworkRequestRefused);
    await d.handle('/NetworkDriver.DeleteEndpoint', { NetworkID: 'dnet', EndpointID: 'ep2' });
    expect(ports.get(made.id)).toMatchObject({ device_owner: '', device_id: '', 'binding:host_id': '' });
  });

  it('refuses a network without a Neutron network named, and unknown calls', async () => {
    const { d } = driver();
    await expect(d.handle('/NetworkDriver.CreateNetwork', { NetworkID: 'x', Options: generic({}) })).rejects.toBeInstanceOf(InvalidInput);
    await expect(d.handle('/NetworkDriver.Nope', {})).rejects.toBeInstanceOf(InvalidInput);
    await expect(d.handle('/NetworkDriver.Join', { NetworkID: 'unknown', EndpointID: 'e' })).rejects.toThrow(/not one of this driver's/);
  });
});
