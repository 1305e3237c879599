import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { IdentityUnavailable, InvalidInput } from '../../../src/common/errors.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { endpointUrlFromConf, registerCatalog, registrationFromConf, SERVICE_DESCRIPTION } from '../../../src/identity/catalog.js';
import { KeystoneClient } from '../../../src/identity/keystone.js';
import { FakeKeystone } from './fake-keystone.js';

const logger = pino({ level: 'silent' });
let fk: FakeKeystone;
let client: KeystoneClient;
const URL1 = 'http://10.0.0.5:9517/v1';

function ferryServices() {
  return fk.services.filter((s) => s.type === 'container-migration');
}
function ferryEndpoints() {
  const ids = new Set(ferryServices().map((s) => s.id));
  return fk.endpoints.filter((e) => ids.has(e.service_id));
}

beforeAll(async () => {
  fk = await new FakeKeystone().start();
  client = new KeystoneClient({
    authUrl: fk.url,
    credentials: { username: 'ferry', password: 'svc-pass', project_name: 'service', user_domain_name: 'Default', project_domain_name: 'Default' },
    logger,
  });
});
afterAll(async () => {
  await fk.stop();
});
beforeEach(() => {
  fk.services = fk.services.filter((s) => s.type !== 'container-migration');
  fk.endpoints = fk.endpoints.filter((e) => e.service_id === 'svc-keystone');
  fk.regions = new Set(['RegionOne']);
  fk.failWith = undefined;
});

describe('registerCatalog', () => {
  it('creates the service and three endpoints once; a second run changes nothing', async () => {
    const first = await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    expect(first.service).toBe('created');
    expect(first.endpoints.map((e) => [e.interface, e.action])).toEqual([
      ['public', 'created'],
      ['internal', 'created'],
      ['admin', 'created'],
    ]);
    const before = fk.log.length;
    const second = await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    expect(second.service).toBe('unchanged');
    expect(second.service_id).toBe(first.service_id);
    expect(second.endpoints.every((e) => e.action === 'unchanged')).toBe(true);
    expect(fk.log.slice(before).filter((l) => !l.startsWith('GET'))).toEqual([]);
    expect(ferryServices()).toHaveLength(1);
    expect(ferryServices()[0]).toMatchObject({ name: 'ferry', type: 'container-migration', description: SERVICE_DESCRIPTION });
    expect(
      ferryEndpoints()
        .map((e) => [e.interface, e.region_id, e.url])
        .sort(),
    ).toEqual([
      ['admin', 'RegionOne', URL1],
      ['internal', 'RegionOne', URL1],
      ['public', 'RegionOne', URL1],
    ]);
  });

  it('fixes a wrong URL in place and adds only a missing interface', async () => {
    await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    const pub = ferryEndpoints().find((e) => e.interface === 'public')!;
    pub.url = 'http://old-host:9517/v1';
    fk.endpoints = fk.endpoints.filter((e) => !(e.interface === 'admin' && e.service_id === pub.service_id));
    const r = await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    expect(r.endpoints.map((e) => [e.interface, e.action])).toEqual([
      ['public', 'updated'],
      ['internal', 'unchanged'],
      ['admin', 'created'],
    ]);
    expect(r.endpoints[0].id).toBe(pub.id);
    expect(ferryEndpoints()).toHaveLength(3);
    expect(ferryEndpoints().every((e) => e.url === URL1)).toBe(true);
  });

  it('a new URL moves the endpoints rather than adding more', async () => {
    await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    await registerCatalog(client, { url: 'http://10.0.0.6:9517/v1', region: 'RegionOne' }, logger);
    expect(ferryEndpoints()).toHaveLength(3);
    expect(new Set(ferryEndpoints().map((e) => e.url))).toEqual(new Set(['http://10.0.0.6:9517/v1']));
  });

  it('creates a missing region; another region gets its own endpoints, same service', async () => {
    const r = await registerCatalog(client, { url: URL1, region: 'RegionTwo' }, logger);
    expect(r.region).toBe('created');
    expect(fk.regions.has('RegionTwo')).toBe(true);
    await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    expect(ferryServices()).toHaveLength(1);
    expect(ferryEndpoints()).toHaveLength(6);
  });

  it('leaves services of other names alone and fixes a stale description', async () => {
    fk.services.push({ id: 'svc-other', name: 'other', type: 'container-migration', enabled: true });
    const r = await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    expect(r.service_id).not.toBe('svc-other');
    fk.services.find((s) => s.id === r.service_id)!.description = 'old';
    const again = await registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger);
    expect(again.service).toBe('updated');
    expect(fk.services.find((s) => s.id === r.service_id)!.description).toBe(SERVICE_DESCRIPTION);
  });

  it('refuses a bad URL; Keystone failing -> IdentityUnavailable', async () => {
    await expect(registerCatalog(client, { url: 'not a url', region: 'RegionOne' }, logger)).rejects.toThrow(InvalidInput);
    await expect(registerCatalog(client, { url: 'ftp://x/v1', region: 'RegionOne' }, logger)).rejects.toThrow(/http or https/);
    fk.failWith = 500;
    await expect(registerCatalog(client, { url: URL1, region: 'RegionOne' }, logger)).rejects.toThrow(IdentityUnavailable);
  });
});

describe('endpoint URL from the config', () => {
  it('public_endpoint wins', () => {
    const c = defaultConfig();
    c.api.public_endpoint = 'https://ferry.example.org/v1/';
    expect(endpointUrlFromConf(c)).toBe('https://ferry.example.org/v1');
  });

  it('else the bind address, with a wildcard replaced by [DEFAULT] host', () => {
    const c = defaultConfig();
    expect(endpointUrlFromConf(c)).toBe('http://127.0.0.1:9517/v1');
    c.api.bind_host = '0.0.0.0';
    c.DEFAULT.host = 'controller';
    c.api.bind_port = 9999;
    expect(endpointUrlFromConf(c)).toBe('http://controller:9999/v1');
    c.api.bind_host = 'fd00::1';
    expect(endpointUrlFromConf(c)).toBe('http://[fd00::1]:9999/v1');
    c.api.region_name = 'RegionX';
    expect(registrationFromConf(c)).toEqual({ url: 'http://[fd00::1]:9999/v1', region: 'RegionX' });
  });
});
