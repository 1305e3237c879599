import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { IdentityUnavailable, NotAuthenticated } from '../../../src/common/errors.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { KeystoneClient, keystoneOptionsFromConf, normalizeAuthUrl, parseTokenBody, type KeystoneClientOptions } from '../../../src/identity/keystone.js';
import { FakeKeystone } from './fake-keystone.js';

const logger = pino({ level: 'silent' });
const SERVICE = { username: 'ferry', password: 'svc-pass', project_name: 'service', user_domain_name: 'Default', project_domain_name: 'Default' };

let fk: FakeKeystone;
let clock: number;

function client(over: Partial<KeystoneClientOptions> = {}): KeystoneClient {
  return new KeystoneClient({
    authUrl: fk.url,
    credentials: SERVICE,
    tokenCacheTime: 300,
    maxRetries: 2,
    retryDelayMs: 5,
    requestTimeoutMs: 2000,
    logger,
    now: () => clock,
    ...over,
  });
}

beforeAll(async () => {
  fk = await new FakeKeystone().start();
});
afterAll(async () => {
  await fk.stop();
});
beforeEach(() => {
  clock = Date.now();
  fk.counts.auth = 0;
  fk.counts.validate = 0;
  fk.authDelayMs = 0;
  fk.failWith = undefined;
  fk.rejectServiceTokens = false;
  fk.tokenLifetimeMs = 3600_000;
});

describe('service token', () => {
  it('is issued once and reused for many validations', async () => {
    const c = client();
    const tokens = Array.from({ length: 5 }, () => fk.issue('demo'));
    for (const t of tokens) expect(await c.validateToken(t)).not.toBeNull();
    expect(fk.counts.auth).toBe(1);
    expect(c.stats.serviceAuthentications).toBe(1);
    expect(fk.counts.validate).toBe(5);
  });

  it('concurrent callers share one authentication in flight', async () => {
    fk.authDelayMs = 150;
    const c = client();
    const results = await Promise.all(Array.from({ length: 10 }, () => c.validateToken(fk.issue('demo'))));
    expect(results.every((r) => r?.user_name === 'demo')).toBe(true);
    expect(fk.counts.auth).toBe(1);
  });

  it('is refreshed 120 s before it expires, one refresh at a time', async () => {
    const c = client();
    const first = await c.getServiceToken();
    const expires = Date.parse((await c.getServiceTokenInfo()).expires_at);
    clock = expires - 121_000;
    expect(await c.getServiceToken()).toBe(first);
    expect(fk.counts.auth).toBe(1);
    clock = expires - 119_000;
    fk.authDelayMs = 100;
    const again = await Promise.all(Array.from({ length: 5 }, () => c.getServiceToken()));
    expect(new Set(again).size).toBe(1);
    expect(again[0]).not.toBe(first);
    expect(fk.counts.auth).toBe(2);
  });

  it('a short-lived token is refreshed at half its life', async () => {
    fk.tokenLifetimeMs = 60_000;
    const c = client();
    const first = await c.getServiceToken();
    clock += 29_000;
    expect(await c.getServiceToken()).toBe(first);
    clock += 2_000;
    expect(await c.getServiceToken()).not.toBe(first);
  });

  it('a failed refresh does not stick: the next call tries again', async () => {
    fk.failWith = 503;
    const c = client();
    await expect(c.getServiceToken()).rejects.toThrow(IdentityUnavailable);
    fk.failWith = undefined;
    await expect(c.getServiceToken()).resolves.toMatch(/^tok-/);
  });

  it('wrong service credentials -> IdentityUnavailable naming the cause', async () => {
    const c = client({ credentials: { ...SERVICE, password: 'wrong' } });
    await expect(c.validateToken(fk.issue('demo'))).rejects.toThrow(IdentityUnavailable);
    await expect(c.validateToken(fk.issue('demo'))).rejects.toThrow(/rejected the service credentials.*check the password/);
  });

  it('issueToken with wrong credentials -> NotAuthenticated', async () => {
    const c = client();
    await expect(c.issueToken({ ...SERVICE, username: 'demo', password: 'nope', project_name: 'demo' })).rejects.toThrow(NotAuthenticated);
    const ok = await c.issueToken({ ...SERVICE, username: 'demo', password: 'demo-pass', project_name: 'demo' });
    expect(ok.info.roles).toEqual(['member']);
    expect(ok.token).toMatch(/^tok-/);
  });
});

describe('validateToken', () => {
  it('returns the token data', async () => {
    const c = client();
    const info = await c.validateToken(fk.issue('admin'));
    expect(info).toMatchObject({
      user_id: 'u-admin',
      user_name: 'admin',
      user_domain_id: 'default',
      project_id: 'p-admin',
      project_name: 'admin',
      project_domain_name: 'Default',
      roles: ['admin', 'member'],
      is_admin_project: true,
      system_scope: null,
    });
    expect(fk.log.filter((l) => l === 'GET /auth/tokens').length).toBeGreaterThan(0);
  });

  it('an unknown token (404) is null, and remembered briefly', async () => {
    const c = client({ negativeCacheTime: 10 });
    expect(await c.validateToken('tok-nope')).toBeNull();
    expect(await c.validateToken('tok-nope')).toBeNull();
    expect(fk.counts.validate).toBe(1);
    clock += 11_000;
    expect(await c.validateToken('tok-nope')).toBeNull();
    expect(fk.counts.validate).toBe(2);
  });

  it('good answers are cached for token_cache_time', async () => {
    const c = client({ tokenCacheTime: 60 });
    const t = fk.issue('demo');
    await c.validateToken(t);
    await c.validateToken(t);
    await c.validateToken(t);
    expect(fk.counts.validate).toBe(1);
    expect(c.stats.cacheHits).toBe(2);
    clock += 61_000;
    await c.validateToken(t);
    expect(fk.counts.validate).toBe(2);
  });

  it('token_cache_time 0 disables the cache', async () => {
    const c = client({ tokenCacheTime: 0 });
    const t = fk.issue('demo');
    await c.validateToken(t);
    await c.validateToken(t);
    expect(fk.counts.validate).toBe(2);
  });

  it('never serves a cached token past its expiry', async () => {
    const c = client({ tokenCacheTime: 300 });
    const t = fk.issue('demo', 5_000);
    expect(await c.validateToken(t)).not.toBeNull();
    clock += 6_000;
    // Keystone still knows the token (its clock is real), but the cache must not use it.
    const again = await c.validateToken(t);
    expect(fk.counts.validate).toBe(2);
    expect(again).toBeNull();
  });

  it('concurrent validations of one token make one request', async () => {
    const c = client();
    const t = fk.issue('demo');
    await c.getServiceToken();
    const all = await Promise.all(Array.from({ length: 8 }, () => c.validateToken(t)));
    expect(all.every((x) => x?.user_id === 'u-demo')).toBe(true);
    expect(fk.counts.validate).toBe(1);
  });

  it('tokens that cannot be Keystone tokens are invalid without asking', async () => {
    const c = client();
    for (const bad of ['', 'has space', 'new\nline', 'ü-token', 'x'.repeat(20000)]) expect(await c.validateToken(bad)).toBeNull();
    expect(fk.counts.validate + fk.counts.auth).toBe(0);
  });

  it('401 on the service token -> re-authenticate once and carry on', async () => {
    const c = client();
    await c.validateToken(fk.issue('demo'));
    fk.revokeAll('ferry');
    expect((await c.validateToken(fk.issue('demo')))?.user_name).toBe('demo');
    expect(fk.counts.auth).toBe(2);
  });

  it('401 again after re-authenticating -> IdentityUnavailable', async () => {
    const c = client();
    fk.rejectServiceTokens = true;
    await expect(c.validateToken(fk.issue('demo'))).rejects.toThrow(IdentityUnavailable);
    expect(fk.counts.auth).toBe(2);
  });

  it('Keystone 5xx -> IdentityUnavailable at once (no retry)', async () => {
    const c = client();
    await c.getServiceToken();
    fk.failWith = 503;
    const before = fk.log.length;
    await expect(c.validateToken(fk.issue('demo'))).rejects.toThrow(/Keystone could not validate a token: HTTP 503: failing on purpose/);
    expect(fk.log.length - before).toBe(1);
  });
});

describe('connection errors', () => {
  let closedPort: number;
  let silent: net.Server;
  let silentPort: number;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    closedPort = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    silent = net.createServer((sock) => sockets.push(sock)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as AddressInfo).port;
  });
  afterEach(() => sockets.splice(0).forEach((s) => s.destroy()));
  afterAll(async () => {
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('refused connections are retried http_request_max_retries times, then IdentityUnavailable', async () => {
    let attempts = 0;
    const c = client({
      authUrl: `http://127.0.0.1:${closedPort}/v3`,
      maxRetries: 3,
      fetch: (input, init) => {
        attempts++;
        return fetch(input, init);
      },
    });
    await expect(c.validateToken('tok-x')).rejects.toThrow(/unreachable \(ECONNREFUSED\) after 4 attempt\(s\)/);
    expect(attempts).toBe(4);
  });

  it('a Keystone that does not answer times out', async () => {
    const c = client({ authUrl: `http://127.0.0.1:${silentPort}/v3`, maxRetries: 1, requestTimeoutMs: 150 });
    const started = Date.now();
    await expect(c.getServiceToken()).rejects.toThrow(/unreachable \(timed out\) after 2 attempt\(s\)/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a transient failure is ridden out', async () => {
    let n = 0;
    const c = client({
      fetch: (input, init) => (n++ === 0 ? Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } })) : fetch(input, init)),
    });
    expect((await c.validateToken(fk.issue('demo')))?.user_name).toBe('demo');
  });
});

describe('catalog lookups', () => {
  it('finds an endpoint by type, interface and region', async () => {
    const c = client();
    expect(await c.findEndpoint('identity', 'public', 'RegionOne')).toBe('http://127.0.0.1:5000/v3');
    expect(await c.findEndpoint('identity', 'public', null)).toBe('http://127.0.0.1:5000/v3');
    expect(await c.findEndpoint('identity', 'admin', 'RegionOne')).toBeNull();
    expect(await c.findEndpoint('identity', 'public', 'RegionTwo')).toBeNull();
    expect(await c.findEndpoint('compute')).toBeNull();
  });

  it('sees services registered after the token was issued', async () => {
    const c = client();
    await c.getServiceToken();
    fk.services.push({ id: 'svc-late', name: 'late', type: 'late-type', enabled: true });
    fk.endpoints.push({ id: 'ep-late', interface: 'internal', region_id: 'RegionOne', url: 'http://late:1/v1', service_id: 'svc-late' });
    try {
      expect(await c.findEndpoint('late-type', 'internal')).toBe('http://late:1/v1');
      expect(fk.counts.auth).toBe(1);
    } finally {
      fk.services = fk.services.filter((s) => s.id !== 'svc-late');
      fk.endpoints = fk.endpoints.filter((e) => e.id !== 'ep-late');
    }
  });
});

describe('helpers', () => {
  it('options from [keystone_authtoken]', () => {
    const conf = defaultConfig();
    conf.keystone_authtoken.password = 'p';
    conf.keystone_authtoken.http_connect_timeout = 7;
    const o = keystoneOptionsFromConf(conf);
    expect(o).toMatchObject({
      authUrl: 'http://127.0.0.1:5000/v3',
      credentials: { username: 'ferry', password: 'p', project_name: 'service', user_domain_name: 'Default', project_domain_name: 'Default' },
      regionName: 'RegionOne',
      tokenCacheTime: 300,
      maxRetries: 3,
      requestTimeoutMs: 7000,
    });
  });

  it('normalizeAuthUrl', () => {
    expect(normalizeAuthUrl('http://k:5000/v3/')).toBe('http://k:5000/v3');
    expect(normalizeAuthUrl('http://k:5000')).toBe('http://k:5000/v3');
    expect(normalizeAuthUrl('http://k/identity')).toBe('http://k/identity/v3');
  });

  it('parseTokenBody reads domain- and system-scoped tokens and refuses junk', () => {
    const base = { user: { id: 'u', name: 'n', domain: { id: 'd', name: 'D' } }, expires_at: '2030-01-01T00:00:00.000000Z', roles: [{ name: 'admin' }] };
    expect(parseTokenBody({ token: { ...base, domain: { id: 'd1', name: 'Dom' } } })).toMatchObject({ domain_id: 'd1', domain_name: 'Dom', project_id: null });
    expect(parseTokenBody({ token: { ...base, system: { all: true } } })).toMatchObject({ system_scope: 'all', project_id: null, roles: ['admin'] });
    expect(parseTokenBody({ token: { ...base, is_admin_project: false } }).is_admin_project).toBe(false);
    // A Keystone without an admin project leaves the flag out: then no project is the admin project.
    expect(parseTokenBody({ token: base }).is_admin_project).toBe(false);
    expect(parseTokenBody({ token: { ...base, is_admin_project: 'yes' } }).is_admin_project).toBe(false);
    expect(parseTokenBody({ token: { ...base, is_admin_project: true } }).is_admin_project).toBe(true);
    expect(() => parseTokenBody({ token: { expires_at: base.expires_at } })).toThrow(IdentityUnavailable);
    expect(() => parseTokenBody(null)).toThrow(IdentityUnavailable);
    expect(() => parseTokenBody({ token: { ...base, expires_at: 'soon' } })).toThrow(IdentityUnavailable);
  });
});
