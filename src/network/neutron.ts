/**
 * A small client of Neutron's REST API (v2.0): networks, subnets, ports, port bindings
 * (`binding-extended`: the inactive binding on a target host, its activation, the old one's
 * deletion, as Nova uses them for a VM's move), agents and extensions. It authenticates with a
 * Keystone token from `token()` (fetched again once after a 401) and turns Neutron's answers
 * into Ferry's errors: unreachable or 5xx -> NetworkUnavailable, 404 -> NetworkResourceNotFound,
 * other refusals -> NetworkRequestRefused, each with Neutron's own error type and message.
 */
import { InvalidInput, NetworkRequestRefused, NetworkResourceNotFound, NetworkUnavailable } from '../common/errors.js';
import { sleep } from '../common/sleep.js';
import { jsonBody } from '../common/json-body.js';

export interface NeutronNetwork {
  id: string;
  name: string;
  status: string;
  project_id: string;
  subnets: string[];
  shared: boolean;
  mtu?: number;
  admin_state_up: boolean;
  'provider:network_type'?: string;
  'provider:physical_network'?: string | null;
  'provider:segmentation_id'?: number | null;
  'router:external'?: boolean;
}

export interface NeutronSubnet {
  id: string;
  name: string;
  network_id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  allocation_pools: { start: string; end: string }[];
}

export interface FixedIp {
  subnet_id: string;
  ip_address: string;
}

export interface NeutronPort {
  id: string;
  name: string;
  network_id: string;
  project_id: string;
  mac_address: string;
  fixed_ips: FixedIp[];
  /** DOWN until the L2 agent on the bound host has wired it, then ACTIVE. */
  status: string;
  admin_state_up: boolean;
  device_owner: string;
  device_id: string;
  security_groups: string[];
  port_security_enabled?: boolean;
  'binding:host_id'?: string;
  'binding:vif_type'?: string;
  'binding:vif_details'?: Record<string, unknown>;
  'binding:vnic_type'?: string;
  'binding:profile'?: Record<string, unknown>;
}

/** One of a port's bindings (`binding-extended`): at most one is ACTIVE, the others INACTIVE. */
export interface NeutronBinding {
  host: string;
  status: 'ACTIVE' | 'INACTIVE';
  vif_type: string;
  vnic_type: string;
  vif_details: Record<string, unknown>;
  profile: Record<string, unknown>;
}

export interface NeutronAgent {
  id: string;
  agent_type: string;
  binary: string;
  host: string;
  alive: boolean;
  admin_state_up: boolean;
  heartbeat_timestamp?: string;
  configurations: Record<string, unknown>;
}

export interface NeutronExtension {
  alias: string;
  name: string;
  description: string;
}

export interface NeutronClientOptions {
  /** Neutron's endpoint, e.g. http://127.0.0.1:9696 (with or without /v2.0). */
  endpoint: string;
  /** A Keystone token for the caller; called again (with `renew`) after a 401. */
  token: (renew: boolean) => Promise<string>;
  /** Milliseconds one request may take. Default 15 000. */
  requestTimeoutMs?: number;
  /** For tests. */
  fetch?: typeof fetch;
}

export type Filters = Record<string, string | number | boolean>;

/** The `tap` device Neutron's linuxbridge agent expects for a port (os-vif's name). */
export function tapName(portId: string): string {
  return `tap${portId.slice(0, 11)}`;
}

/** The bridge Neutron's linuxbridge agent builds for a network on a host. */
export function bridgeName(networkId: string): string {
  return `brq${networkId.slice(0, 11)}`;
}

const ID_RE = /^[0-9a-fA-F-]{1,64}$/;

function checkId(what: string, id: string): string {
  if (!ID_RE.test(id)) throw new InvalidInput(`${what} "${id}" is not a Neutron ID`);
  return id;
}

function query(filters: Filters = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) q.append(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Neutron's error body: {"NeutronError": {"type", "message", "detail"}}. */
function neutronFault(json: unknown): { type: string; message: string } {
  const e = (json as { NeutronError?: { type?: string; message?: string } } | null)?.NeutronError;
  if (e) return { type: e.type ?? '', message: e.message ?? '' };
  const text = json && typeof json === 'object' ? JSON.stringify(json).slice(0, 300) : '';
  return { type: '', message: text };
}

export class NeutronClient {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: NeutronClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.endpoint);
    } catch {
      throw new InvalidInput(`Neutron endpoint "${opts.endpoint}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInput(`Neutron endpoint "${opts.endpoint}" must be http or https`);
    this.endpoint = opts.endpoint.replace(/\/+$/, '').replace(/\/v2\.0$/, '');
    this.timeoutMs = opts.requestTimeoutMs ?? 15_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** One request; the parsed body of a 2xx answer (null for 204), a Ferry error otherwise. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = `${this.endpoint}/v2.0${path}`;
    for (let attempt = 0; ; attempt++) {
      const token = await this.opts.token(attempt > 0);
      let res: Response;
      try {
        res = await this.fetchImpl(url, {
          method,
          headers: { accept: 'application/json', 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (e) {
        throw new NetworkUnavailable(`Neutron at ${this.endpoint} did not answer ${method} ${path}: ${(e as Error).message}`, { method, path });
      }
      const json = await jsonBody(res);
      if (res.status === 401 && attempt === 0) continue;
      if (res.ok) return json;
      const fault = neutronFault(json);
      const details = { method, path, status: res.status, neutron_type: fault.type };
      const msg = `Neutron ${method} ${path}: HTTP ${res.status}${fault.type ? ` ${fault.type}` : ''}${fault.message ? `: ${fault.message}` : ''}`;
      if (res.status === 404) throw new NetworkResourceNotFound(msg, details);
      if (res.status >= 500 || res.status === 401) throw new NetworkUnavailable(msg, details);
      throw new NetworkRequestRefused(msg, details);
    }
  }

  private async list<T>(path: string, key: string, filters?: Filters): Promise<T[]> {
    const r = (await this.request('GET', `${path}${query(filters)}`)) as Record<string, T[]>;
    return r[key] ?? [];
  }

  private async one<T>(method: string, path: string, key: string, body?: unknown): Promise<T> {
    const r = (await this.request(method, path, body)) as Record<string, T>;
    return r[key];
  }

  // ---------------------------------------------------------------- extensions and agents

  async listExtensions(): Promise<NeutronExtension[]> {
    return this.list('/extensions', 'extensions');
  }

  async hasExtension(alias: string): Promise<boolean> {
    return (await this.listExtensions()).some((e) => e.alias === alias);
  }

  async listAgents(filters?: Filters): Promise<NeutronAgent[]> {
    return this.list('/agents', 'agents', filters);
  }

  // ---------------------------------------------------------------- networks and subnets

  async listNetworks(filters?: Filters): Promise<NeutronNetwork[]> {
    return this.list('/networks', 'networks', filters);
  }

  async getNetwork(id: string): Promise<NeutronNetwork> {
    return this.one('GET', `/networks/${checkId('network', id)}`, 'network');
  }

  async createNetwork(network: Record<string, unknown>): Promise<NeutronNetwork> {
    return this.one('POST', '/networks', 'network', { network });
  }

  async deleteNetwork(id: string): Promise<void> {
    await this.request('DELETE', `/networks/${checkId('network', id)}`);
  }

  async listSubnets(filters?: Filters): Promise<NeutronSubnet[]> {
    return this.list('/subnets', 'subnets', filters);
  }

  async createSubnet(subnet: Record<string, unknown>): Promise<NeutronSubnet> {
    return this.one('POST', '/subnets', 'subnet', { subnet });
  }

  // ---------------------------------------------------------------- ports

  async listPorts(filters?: Filters): Promise<NeutronPort[]> {
    return this.list('/ports', 'ports', filters);
  }

  async getPort(id: string): Promise<NeutronPort> {
    return this.one('GET', `/ports/${checkId('port', id)}`, 'port');
  }

  async createPort(port: Record<string, unknown>): Promise<NeutronPort> {
    return this.one('POST', '/ports', 'port', { port });
  }

  async updatePort(id: string, port: Record<string, unknown>): Promise<NeutronPort> {
    return this.one('PUT', `/ports/${checkId('port', id)}`, 'port', { port });
  }

  async deletePort(id: string): Promise<void> {
    await this.request('DELETE', `/ports/${checkId('port', id)}`);
  }

  /** Poll the port until its status is `status` (ACTIVE once the host's agent wired it). */
  async waitForPortStatus(id: string, status: string, timeoutMs: number, everyMs = 250): Promise<NeutronPort> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const port = await this.getPort(id);
      if (port.status === status) return port;
      if (Date.now() > deadline) {
        throw new NetworkUnavailable(`port ${id} is still ${port.status}, not ${status}, after ${Math.round(timeoutMs / 1000)} s`, {
          port_id: id,
          status: port.status,
          host: port['binding:host_id'] ?? null,
        });
      }
      await sleep(everyMs);
    }
  }

  // ---------------------------------------------------------------- port bindings (binding-extended)

  async listBindings(portId: string): Promise<NeutronBinding[]> {
    return this.list(`/ports/${checkId('port', portId)}/bindings`, 'bindings');
  }

  /** An inactive binding of the port on `host` (the port stays active where it is). */
  async createBinding(portId: string, host: string, extra: Partial<Pick<NeutronBinding, 'vnic_type' | 'profile'>> = {}): Promise<NeutronBinding> {
    if (!host) throw new InvalidInput('a port binding needs a host');
    return this.one('POST', `/ports/${checkId('port', portId)}/bindings`, 'binding', { binding: { host, ...extra } });
  }

  /** Make the binding on `host` the active one (the previous active binding becomes inactive). */
  async activateBinding(portId: string, host: string): Promise<NeutronBinding> {
    const r = (await this.request('PUT', `/ports/${checkId('port', portId)}/bindings/${encodeURIComponent(host)}/activate`)) as
      { binding?: NeutronBinding } | NeutronBinding;
    return 'binding' in r && r.binding ? r.binding : (r as NeutronBinding);
  }

  async deleteBinding(portId: string, host: string): Promise<void> {
    await this.request('DELETE', `/ports/${checkId('port', portId)}/bindings/${encodeURIComponent(host)}`);
  }
}
