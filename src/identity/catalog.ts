/**
 * Idempotent registration of Ferry in the Keystone catalog: service `ferry` of type
 * `container-migration` and its public, internal and admin endpoints in the configured
 * region. It looks first (GET /v3/services?type=, GET /v3/endpoints?service_id=), creates
 * only what is missing, fixes an endpoint whose URL is wrong, and never makes a duplicate.
 * ferry-api runs it at start; `ferry-manage register` runs it by hand.
 */
import { IdentityUnavailable, InvalidInput } from '../common/errors.js';
import { getLogger, type Logger } from '../common/log.js';
import type { FerryConfig } from '../conf/index.js';
import { keystoneError, type KeystoneClient, type KeystoneResponse } from './keystone.js';

export const SERVICE_NAME = 'ferry';
export const SERVICE_TYPE = 'container-migration';
export const SERVICE_DESCRIPTION = 'Ferry: live migration of running containers between compute hosts';
export const ENDPOINT_INTERFACES = ['public', 'internal', 'admin'] as const;

export interface CatalogRegistration {
  /** The endpoint URL, e.g. http://10.0.0.5:9517/v1. */
  url: string;
  region: string;
  serviceName?: string;
  serviceType?: string;
  description?: string;
  interfaces?: readonly string[];
}

export type RegistrationAction = 'unchanged' | 'created' | 'updated';

export interface RegistrationResult {
  service_id: string;
  service: RegistrationAction;
  region: RegistrationAction;
  endpoints: { id: string; interface: string; url: string; action: RegistrationAction }[];
}

/**
 * The URL Ferry registers: `[api] public_endpoint` when set, else
 * http://<bind_host>:<bind_port>/v1, with a wildcard bind address replaced by `[DEFAULT] host`.
 */
export function endpointUrlFromConf(conf: FerryConfig): string {
  if (conf.api.public_endpoint) return conf.api.public_endpoint.replace(/\/+$/, '');
  let host = conf.api.bind_host;
  if (host === '0.0.0.0' || host === '::' || host === '') host = conf.DEFAULT.host;
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${conf.api.bind_port}/v1`;
}

export function registrationFromConf(conf: FerryConfig): CatalogRegistration {
  return { url: endpointUrlFromConf(conf), region: conf.api.region_name };
}

interface KsService {
  id: string;
  name?: string;
  type: string;
  description?: string;
  enabled?: boolean;
}

interface KsEndpoint {
  id: string;
  interface: string;
  region_id?: string | null;
  region?: string | null;
  url: string;
  service_id: string;
}

function expect(res: KeystoneResponse, ok: number[], what: string): Record<string, unknown> {
  if (!ok.includes(res.status)) {
    throw new IdentityUnavailable(`Keystone catalog registration: ${what} failed: ${keystoneError(res)}`, { status: res.status });
  }
  return (res.json ?? {}) as Record<string, unknown>;
}

/** Register (or check) Ferry's service and endpoints. Running it again changes nothing. */
export async function registerCatalog(
  client: KeystoneClient,
  reg: CatalogRegistration,
  logger: Logger = getLogger('identity.catalog'),
): Promise<RegistrationResult> {
  const name = reg.serviceName ?? SERVICE_NAME;
  const type = reg.serviceType ?? SERVICE_TYPE;
  const description = reg.description ?? SERVICE_DESCRIPTION;
  const interfaces = reg.interfaces ?? ENDPOINT_INTERFACES;
  let url: URL;
  try {
    url = new URL(reg.url);
  } catch {
    throw new InvalidInput(`endpoint URL "${reg.url}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInput(`endpoint URL "${reg.url}" must be http or https`);
  if (!reg.region) throw new InvalidInput('a region is needed to register endpoints');

  // The region: Keystone refuses endpoints in a region it does not know.
  let regionAction: RegistrationAction = 'unchanged';
  const r = await client.request('GET', `/regions/${encodeURIComponent(reg.region)}`);
  if (r.status === 404) {
    const made = await client.request('POST', '/regions', { body: { region: { id: reg.region, description: '' } } });
    // 409: someone made it meanwhile.
    if (made.status !== 409) expect(made, [201], `creating region ${reg.region}`);
    regionAction = made.status === 201 ? 'created' : 'unchanged';
  } else {
    expect(r, [200], `reading region ${reg.region}`);
  }

  // The service: one of this type and name.
  const listed = expect(await client.request('GET', `/services?type=${encodeURIComponent(type)}`), [200], 'listing services');
  const services = ((listed.services ?? []) as KsService[]).filter((s) => s.type === type && s.name === name);
  let serviceAction: RegistrationAction = 'unchanged';
  let service: KsService;
  if (services.length === 0) {
    const made = expect(
      await client.request('POST', '/services', { body: { service: { type, name, description, enabled: true } } }),
      [201],
      `creating service ${name}`,
    );
    service = made.service as KsService;
    serviceAction = 'created';
    logger.info({ service_id: service.id, name, type }, 'registered the service in the Keystone catalog');
  } else {
    services.sort((a, b) => a.id.localeCompare(b.id));
    service = services[0];
    if (services.length > 1) {
      logger.warn({ ids: services.map((s) => s.id), name, type }, 'several services of this name and type in Keystone; using the first');
    }
    if (service.description !== description) {
      expect(
        await client.request('PATCH', `/services/${service.id}`, { body: { service: { description } } }),
        [200],
        `updating the description of service ${service.id}`,
      );
      serviceAction = 'updated';
    }
  }

  // The endpoints: one per interface in our region.
  const eps = expect(await client.request('GET', `/endpoints?service_id=${encodeURIComponent(service.id)}`), [200], 'listing endpoints');
  const existing = ((eps.endpoints ?? []) as KsEndpoint[]).filter((e) => e.service_id === service.id && (e.region_id ?? e.region) === reg.region);
  const target = reg.url;
  const endpoints: RegistrationResult['endpoints'] = [];
  for (const iface of interfaces) {
    const mine = existing.filter((e) => e.interface === iface).sort((a, b) => a.id.localeCompare(b.id));
    if (mine.length > 1) {
      logger.warn({ ids: mine.map((e) => e.id), interface: iface, region: reg.region }, 'several Ferry endpoints for one interface and region');
    }
    const right = mine.find((e) => e.url === target);
    if (right) {
      endpoints.push({ id: right.id, interface: iface, url: target, action: 'unchanged' });
    } else if (mine.length > 0) {
      const ep = mine[0];
      expect(
        await client.request('PATCH', `/endpoints/${ep.id}`, { body: { endpoint: { url: target } } }),
        [200],
        `fixing the URL of the ${iface} endpoint ${ep.id}`,
      );
      logger.info({ endpoint_id: ep.id, interface: iface, from: ep.url, to: target }, 'fixed a Ferry endpoint URL in Keystone');
      endpoints.push({ id: ep.id, interface: iface, url: target, action: 'updated' });
    } else {
      const made = expect(
        await client.request('POST', '/endpoints', {
          body: { endpoint: { interface: iface, region_id: reg.region, url: target, service_id: service.id, enabled: true } },
        }),
        [201],
        `creating the ${iface} endpoint`,
      );
      const ep = made.endpoint as KsEndpoint;
      logger.info({ endpoint_id: ep.id, interface: iface, url: target, region: reg.region }, 'registered a Ferry endpoint in Keystone');
      endpoints.push({ id: ep.id, interface: iface, url: target, action: 'created' });
    }
  }
  return { service_id: service.id, service: serviceAction, region: regionAction, endpoints };
}
