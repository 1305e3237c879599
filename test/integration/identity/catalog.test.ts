/**
 * Catalog registration against the real Keystone. It uses its own service name and region
 * (so the real `ferry` registration is not touched) and removes what it made.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { registerCatalog, SERVICE_TYPE, type CatalogRegistration } from '../../../src/identity/catalog.js';
import { KeystoneClient } from '../../../src/identity/keystone.js';
import { keystoneCloud } from './keystone-cloud.js';

jest.setTimeout(60_000);
const logger = pino({ level: 'silent' });
const suffix = randomBytes(4).toString('hex');
const NAME = `ferry-it-${suffix}`;
const REGION = `FerryIT-${suffix}`;
const URL1 = 'http://127.0.0.1:9517/v1';

let svc: KeystoneClient; // the ferry service user, as ferry-api registers
let admin: KeystoneClient; // for looking and cleaning up

interface Ep {
  id: string;
  interface: string;
  region_id: string;
  url: string;
  service_id: string;
}

async function ours(): Promise<{ services: { id: string }[]; endpoints: Ep[] }> {
  const s = await admin.request('GET', `/services?type=${SERVICE_TYPE}`);
  const services = ((s.json as { services: { id: string; name: string }[] }).services ?? []).filter((x) => x.name === NAME);
  const endpoints: Ep[] = [];
  for (const x of services) {
    const e = await admin.request('GET', `/endpoints?service_id=${x.id}`);
    endpoints.push(...(e.json as { endpoints: Ep[] }).endpoints);
  }
  return { services, endpoints };
}

const reg = (url = URL1): CatalogRegistration => ({ url, region: REGION, serviceName: NAME });

beforeAll(() => {
  const ks = keystoneCloud();
  svc = new KeystoneClient({ authUrl: ks.authUrl, credentials: ks.service, regionName: REGION, logger });
  admin = new KeystoneClient({ authUrl: ks.authUrl, credentials: ks.admin, logger });
});

afterAll(async () => {
  const { services, endpoints } = await ours();
  for (const e of endpoints) await admin.request('DELETE', `/endpoints/${e.id}`);
  for (const s of services) await admin.request('DELETE', `/services/${s.id}`);
  // Also regions left by earlier runs that could not clean up (they hold no endpoints).
  const regions = ((await admin.request('GET', '/regions')).json as { regions?: { id: string }[] }).regions ?? [];
  for (const r of regions) if (r.id === REGION || r.id.startsWith('FerryIT-')) await admin.request('DELETE', `/regions/${r.id}`);
});

describe('catalog registration', () => {
  it('registering twice gives exactly one service and three endpoints', async () => {
    const first = await registerCatalog(svc, reg(), logger);
    expect(first.service).toBe('created');
    expect(first.region).toBe('created');
    const second = await registerCatalog(svc, reg(), logger);
    expect(second.service_id).toBe(first.service_id);
    expect(second.service).toBe('unchanged');
    expect(second.region).toBe('unchanged');
    expect(second.endpoints.map((e) => e.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);

    const { services, endpoints } = await ours();
    expect(services).toHaveLength(1);
    expect(endpoints.map((e) => [e.interface, e.region_id, e.url]).sort()).toEqual([
      ['admin', REGION, URL1],
      ['internal', REGION, URL1],
      ['public', REGION, URL1],
    ]);
  });

  it('a wrong URL is fixed in place, never duplicated', async () => {
    const { endpoints } = await ours();
    const pub = endpoints.find((e) => e.interface === 'public')!;
    await admin.request('PATCH', `/endpoints/${pub.id}`, { body: { endpoint: { url: 'http://10.9.9.9:9517/v1' } } });
    const r = await registerCatalog(svc, reg(), logger);
    expect(r.endpoints.find((e) => e.interface === 'public')).toMatchObject({ id: pub.id, action: 'updated' });
    const after = await ours();
    expect(after.endpoints).toHaveLength(3);
    expect(after.endpoints.every((e) => e.url === URL1)).toBe(true);
  });

  it('the registered endpoint is found through the catalog', async () => {
    // The real `ferry` service may be registered too; the region tells ours apart.
    expect(await svc.findEndpoint(SERVICE_TYPE, 'internal', REGION)).toBe(URL1);
  });
});
