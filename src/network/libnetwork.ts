/**
 * Docker's side of a Neutron network: a libnetwork remote network driver and IPAM driver, the
 * protocol kuryr-libnetwork implements for Zun (Docker's plugin API, JSON over HTTP on a Unix
 * socket in /run/docker/plugins). Kuryr is not installable here; this is the part of it Ferry
 * needs, written for Ferry.
 *
 * - A Docker network maps to an existing Neutron network: `docker network create -d <driver>
 *   --ipam-driver <driver> -o neutron.net.uuid=<id> (or neutron.net.name=<name>) --subnet <its cidr>`.
 * - IPAM asks Neutron for addresses: RequestAddress creates an unbound port on the subnet (or,
 *   with `--ip`, takes the existing port that holds that address), so addresses are unique across
 *   hosts, as Neutron keeps them.
 * - CreateEndpoint turns that port into the container's: `device_owner` (by default
 *   `compute:ferry`, so that a migration can use port bindings; `kuryr:container` as kuryr does),
 *   `binding:host_id` = this host, `device_id` = the endpoint; its MAC is the endpoint's MAC.
 * - Join plugs the port (tap `tap<port[:11]>` into the network's bridge, os-vif style) and hands
 *   libnetwork the veth's other end, which libnetwork moves into the container.
 * - Leave unplugs; DeleteEndpoint gives a port it made back (deleted), and an existing port the
 *   user named with `--ip` back unbound.
 */
import { InvalidInput, NetworkRequestRefused, NetworkResourceNotFound } from '../common/errors.js';
import type { NeutronClient, NeutronNetwork, NeutronPort, NeutronSubnet } from './neutron.js';

/** The device_owner of a port IPAM reserved and no endpoint took yet (kuryr's word). */
export const UNBOUND_OWNER = 'kuryr:unbound';
/** Marks, in the port's name, a port the driver made (deleted with its endpoint) rather than one the user brought. */
const MADE_PREFIX = 'ferry-docker-';
const GENERIC = 'com.docker.network.generic';

export interface DriverHost {
  /** binding:host_id of the ports this driver binds: Neutron's name of this host. */
  host: string;
  /** device_owner of the containers' ports. */
  deviceOwner: string;
  /** Plug the port (its tap into the network's bridge); the name of the veth end libnetwork moves into the container. */
  plug(port: NeutronPort, network: NeutronNetwork): Promise<string>;
  unplug(portId: string): Promise<void>;
}

/** What the driver remembers of a Docker network (kept by the caller, e.g. in a file, across restarts). */
export interface NetworkMapping {
  dockerNetworkId: string;
  neutronNetworkId: string;
}

export interface MappingStore {
  get(dockerNetworkId: string): NetworkMapping | undefined;
  put(m: NetworkMapping): void;
  delete(dockerNetworkId: string): void;
}

export class MemoryMappingStore implements MappingStore {
  private readonly map = new Map<string, NetworkMapping>();
  get(id: string) {
    return this.map.get(id);
  }
  put(m: NetworkMapping) {
    this.map.set(m.dockerNetworkId, m);
  }
  delete(id: string) {
    this.map.delete(id);
  }
}

type Body = Record<string, unknown>;

function str(body: Body, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || !v) throw new InvalidInput(`${key} is missing`);
  return v;
}

function options(body: Body): Record<string, string> {
  const o = (body.Options ?? {}) as Record<string, unknown>;
  const generic = (o[GENERIC] ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...o, ...generic })) if (typeof v === 'string') out[k] = v;
  return out;
}

/** "10.251.0.5/24" -> "10.251.0.5". */
function bareAddress(a: string): string {
  return a.split('/')[0];
}

/** IPAM's pool IDs name the Neutron subnet. */
const POOL_PREFIX = 'neutron-subnet:';

export class NeutronDockerDriver {
  constructor(
    private readonly neutron: NeutronClient,
    private readonly hostSide: DriverHost,
    private readonly mappings: MappingStore = new MemoryMappingStore(),
  ) {}

  /** One call of Docker's plugin protocol, by its path (e.g. `/NetworkDriver.Join`); the answer's body. */
  async handle(path: string, body: Body): Promise<unknown> {
    switch (path) {
      case '/Plugin.Activate':
        return { Implements: ['NetworkDriver', 'IpamDriver'] };
      case '/NetworkDriver.GetCapabilities':
        // Each engine keeps its own networks (the same Neutron network on every host).
        return { Scope: 'local', ConnectivityScope: 'global' };
      case '/NetworkDriver.CreateNetwork':
        return this.createNetwork(body);
      case '/NetworkDriver.DeleteNetwork':
        this.mappings.delete(str(body, 'NetworkID'));
        return {};
      case '/NetworkDriver.CreateEndpoint':
        return this.createEndpoint(body);
      case '/NetworkDriver.EndpointOperInfo':
        return { Value: {} };
      case '/NetworkDriver.DeleteEndpoint':
        return this.deleteEndpoint(body);
      case '/NetworkDriver.Join':
        return this.join(body);
      case '/NetworkDriver.Leave':
        return this.leave(body);
      case '/NetworkDriver.DiscoverNew':
      case '/NetworkDriver.DiscoverDelete':
      case '/NetworkDriver.ProgramExternalConnectivity':
      case '/NetworkDriver.RevokeExternalConnectivity':
        return {};
      case '/IpamDriver.GetCapabilities':
        return { RequiresMACAddress: false };
      case '/IpamDriver.GetDefaultAddressSpaces':
        return { LocalDefaultAddressSpace: 'ferry-neutron', GlobalDefaultAddressSpace: 'ferry-neutron' };
      case '/IpamDriver.RequestPool':
        return this.requestPool(body);
      case '/IpamDriver.ReleasePool':
        return {};
      case '/IpamDriver.RequestAddress':
        return this.requestAddress(body);
      case '/IpamDriver.ReleaseAddress':
        return this.releaseAddress(body);
      default:
        throw new InvalidInput(`unknown plugin call ${path}`);
    }
  }

  private async neutronNetwork(opts: Record<string, string>): Promise<NeutronNetwork> {
    if (opts['neutron.net.uuid']) return this.neutron.getNetwork(opts['neutron.net.uuid']);
    const name = opts['neutron.net.name'];
    if (!name) throw new InvalidInput('a Neutron network is needed: -o neutron.net.uuid=<id> or -o neutron.net.name=<name>');
    const found = await this.neutron.listNetworks({ name });
    if (found.length !== 1) throw new NetworkResourceNotFound(`${found.length} Neutron networks are named "${name}" (one is needed)`);
    return found[0];
  }

  private mapped(dockerNetworkId: string): NetworkMapping {
    const m = this.mappings.get(dockerNetworkId);
    if (!m) throw new NetworkResourceNotFound(`Docker network ${dockerNetworkId} is not one of this driver's`);
    return m;
  }

  private async createNetwork(body: Body): Promise<unknown> {
    const net = await this.neutronNetwork(options(body));
    this.mappings.put({ dockerNetworkId: str(body, 'NetworkID'), neutronNetworkId: net.id });
    return {};
  }

  /** The Neutron subnet whose CIDR Docker's pool names (`--subnet`), or the network's only IPv4 subnet. */
  private async requestPool(body: Body): Promise<unknown> {
    if (body.V6 === true) throw new NetworkRequestRefused('IPv6 pools are not supported by this driver');
    const pool = typeof body.Pool === 'string' ? body.Pool : '';
    const opts = options(body);
    let subnets: NeutronSubnet[];
    if (opts['neutron.subnet.uuid']) subnets = [await this.oneSubnet(opts['neutron.subnet.uuid'])];
    else if (pool) subnets = await this.neutron.listSubnets({ cidr: pool, ip_version: 4 });
    else throw new InvalidInput('the Neutron subnet is needed: --subnet <its CIDR> (or --ipam-opt neutron.subnet.uuid=<id>)');
    if (subnets.length !== 1) throw new NetworkResourceNotFound(`${subnets.length} Neutron subnets have CIDR ${pool} (one is needed)`);
    return { PoolID: `${POOL_PREFIX}${subnets[0].id}`, Pool: subnets[0].cidr, Data: {} };
  }

  private async oneSubnet(id: string): Promise<NeutronSubnet> {
    const s = await this.neutron.listSubnets({ id });
    if (s.length !== 1) throw new NetworkResourceNotFound(`Neutron subnet ${id} not found`);
    return s[0];
  }

  private async subnetOfPool(body: Body): Promise<NeutronSubnet> {
    const poolId = str(body, 'PoolID');
    if (!poolId.startsWith(POOL_PREFIX)) throw new InvalidInput(`pool ${poolId} is not one of this driver's`);
    return this.oneSubnet(poolId.slice(POOL_PREFIX.length));
  }

  private async portWithAddress(subnet: NeutronSubnet, address: string): Promise<NeutronPort | undefined> {
    const ports = await this.neutron.listPorts({ network_id: subnet.network_id, fixed_ips: `ip_address=${address}` });
    return ports.find((p) => p.fixed_ips.some((f) => f.ip_address === address));
  }

  /**
   * The gateway: the subnet's. Any other address: a port of Neutron's, reserved unbound. With
   * `--ip`, an existing port with that address is the container's (a port made beforehand, as
   * Zun does); otherwise one is made with it.
   */
  private async requestAddress(body: Body): Promise<unknown> {
    const subnet = await this.subnetOfPool(body);
    const prefix = subnet.cidr.split('/')[1];
    const opts = options(body);
    const wanted = typeof body.Address === 'string' && body.Address ? bareAddress(body.Address) : '';
    if (opts.RequestAddressType === 'com.docker.network.gateway') {
      if (!subnet.gateway_ip) throw new NetworkRequestRefused(`Neutron subnet ${subnet.id} has no gateway`);
      return { Address: `${subnet.gateway_ip}/${prefix}`, Data: {} };
    }
    if (wanted) {
      const existing = await this.portWithAddress(subnet, wanted);
      if (existing) {
        if (existing.device_owner !== UNBOUND_OWNER && existing.device_owner !== '' && existing.device_id !== '') {
          throw new NetworkRequestRefused(`address ${wanted} belongs to port ${existing.id}, in use by ${existing.device_owner} ${existing.device_id}`);
        }
        return { Address: `${wanted}/${prefix}`, Data: {} };
      }
    }
    const port = await this.neutron.createPort({
      network_id: subnet.network_id,
      name: `${MADE_PREFIX}${wanted || 'ip'}`,
      device_owner: UNBOUND_OWNER,
      fixed_ips: [wanted ? { subnet_id: subnet.id, ip_address: wanted } : { subnet_id: subnet.id }],
    });
    const ip = port.fixed_ips.find((f) => f.subnet_id === subnet.id)?.ip_address;
    if (!ip) throw new NetworkRequestRefused(`Neutron gave port ${port.id} no address on subnet ${subnet.id}`);
    return { Address: `${ip}/${prefix}`, Data: {} };
  }

  /** An address Docker no longer needs: a reserved port that no endpoint took is deleted. */
  private async releaseAddress(body: Body): Promise<unknown> {
    const subnet = await this.subnetOfPool(body);
    const port = await this.portWithAddress(subnet, bareAddress(str(body, 'Address')));
    if (port && port.device_owner === UNBOUND_OWNER && port.name.startsWith(MADE_PREFIX)) await this.neutron.deletePort(port.id);
    return {};
  }

  private async endpointPort(networkId: string, endpointId: string): Promise<NeutronPort> {
    const m = this.mapped(networkId);
    const ports = await this.neutron.listPorts({ network_id: m.neutronNetworkId, device_id: endpointId });
    if (ports.length !== 1) throw new NetworkResourceNotFound(`no Neutron port for endpoint ${endpointId}`);
    return ports[0];
  }

  private async createEndpoint(body: Body): Promise<unknown> {
    const m = this.mapped(str(body, 'NetworkID'));
    const endpointId = str(body, 'EndpointID');
    const iface = (body.Interface ?? {}) as { Address?: string; MacAddress?: string };
    if (!iface.Address) throw new InvalidInput('the endpoint has no IPv4 address (IPAM should have given one)');
    const address = bareAddress(iface.Address);
    const ports = await this.neutron.listPorts({ network_id: m.neutronNetworkId, fixed_ips: `ip_address=${address}` });
    const port = ports.find((p) => p.fixed_ips.some((f) => f.ip_address === address));
    if (!port) throw new NetworkResourceNotFound(`no Neutron port holds ${address} on network ${m.neutronNetworkId}`);
    const update: Record<string, unknown> = {
      device_owner: this.hostSide.deviceOwner,
      device_id: endpointId,
      'binding:host_id': this.hostSide.host,
    };
    if (iface.MacAddress && iface.MacAddress !== port.mac_address) update.mac_address = iface.MacAddress;
    const bound = await this.neutron.updatePort(port.id, update);
    // Docker takes the port's MAC when it asked for none.
    return iface.MacAddress ? { Interface: {} } : { Interface: { MacAddress: bound.mac_address } };
  }

  private async deleteEndpoint(body: Body): Promise<unknown> {
    let port: NeutronPort;
    try {
      port = await this.endpointPort(str(body, 'NetworkID'), str(body, 'EndpointID'));
    } catch (e) {
      if (e instanceof NetworkResourceNotFound) return {}; // gone already: nothing to give back
      throw e;
    }
    if (port.name.startsWith(MADE_PREFIX)) await this.neutron.deletePort(port.id);
    else await this.neutron.updatePort(port.id, { device_owner: '', device_id: '', 'binding:host_id': '' });
    return {};
  }

  private async join(body: Body): Promise<unknown> {
    const m = this.mapped(str(body, 'NetworkID'));
    const port = await this.endpointPort(m.dockerNetworkId, str(body, 'EndpointID'));
    const network = await this.neutron.getNetwork(m.neutronNetworkId);
    const subnetId = port.fixed_ips[0]?.subnet_id;
    const gateway = subnetId ? (await this.oneSubnet(subnetId)).gateway_ip : null;
    const srcName = await this.hostSide.plug(port, network);
    return { InterfaceName: { SrcName: srcName, DstPrefix: 'eth' }, ...(gateway ? { Gateway: gateway } : {}) };
  }

  private async leave(body: Body): Promise<unknown> {
    const port = await this.endpointPort(str(body, 'NetworkID'), str(body, 'EndpointID'));
    await this.hostSide.unplug(port.id);
    return {};
  }
}
