/** The Keystone client against the development cloud's real Keystone. */
import { beforeAll, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { IdentityUnavailable, NotAuthenticated } from '../../../src/common/errors.js';
import { KeystoneClient } from '../../../src/identity/keystone.js';
import type { PasswordCredentials } from '../../../src/identity/types.js';
import { keystoneCloud, type KeystoneCloud } from './keystone-cloud.js';

jest.setTimeout(60_000);
const logger = pino({ level: 'silent' });
let ks: KeystoneCloud;

function client(service: PasswordCredentials, over: Partial<ConstructorParameters<typeof KeystoneClient>[0]> = {}) {
  return new KeystoneClient({ authUrl: ks.authUrl, credentials: service, regionName: ks.region, logger, ...over });
}

beforeAll(() => {
  ks = keystoneCloud();
});

describe('tokens', () => {
  it("issues tokens and the admin validates the demo user's token", async () => {
    const admin = client(ks.admin);
    const demo = await admin.issueToken(ks.demo, { catalog: false });
    expect(demo.token.length).toBeGreaterThan(20);
    expect(demo.info.user_name).toBe('demo');
    const info = await admin.validateToken(demo.token);
    expect(info).not.toBeNull();
    expect(info).toMatchObject({ user_name: 'demo', project_name: 'demo', user_domain_name: 'Default', project_domain_id: 'default' });
    expect(info!.user_id).toBe(demo.info.user_id);
    expect(info!.roles).toContain('member');
    expect(info!.roles).not.toContain('admin');
    expect(Date.parse(info!.expires_at)).toBeGreaterThan(Date.now());
  });

  it('the ferry service user validates admin and demo tokens (admin role in project service)', async () => {
    const svc = client(ks.service);
    const adminTok = (await svc.issueToken(ks.admin, { catalog: false })).token;
    const demoTok = (await svc.issueToken(ks.demo, { catalog: false })).token;
    expect((await svc.validateToken(adminTok))?.roles).toContain('admin');
    expect((await svc.validateToken(demoTok))?.user_name).toBe('demo');
    const own = await svc.getServiceTokenInfo();
    expect(own).toMatchObject({ user_name: ks.service.username, project_name: ks.service.project_name });
    expect(own.roles).toContain('admin');
  });

  it('a bad token is invalid (null), not an error', async () => {
    const svc = client(ks.service);
    expect(await svc.validateToken('not-a-token')).toBeNull();
    // Looks like a fernet token, is not one.
    expect(await svc.validateToken(`gAAAAAB${'x'.repeat(170)}`)).toBeNull();
    expect(await svc.validateToken('')).toBeNull();
  });

  it('a wrong password is a 401 from Keystone: NotAuthenticated', async () => {
    const svc = client(ks.service);
    const raw = await svc.rawRequest('POST', '/auth/tokens', {
      body: {
        auth: {
          identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: 'wrong' } } },
          scope: { project: { name: 'demo', domain: { name: 'Default' } } },
        },
      },
    });
    expect(raw.status).toBe(401);
    await expect(svc.issueToken({ ...ks.demo, password: 'wrong' })).rejects.toThrow(NotAuthenticated);
  });

  it('a service user with a wrong password cannot validate: IdentityUnavailable', async () => {
    const bad = client({ ...ks.service, password: 'wrong' });
    const demoTok = (await client(ks.admin).issueToken(ks.demo, { catalog: false })).token;
    await expect(bad.validateToken(demoTok)).rejects.toThrow(IdentityUnavailable);
  });
});

describe('service token', () => {
  it('one authentication serves many validations; the cache answers repeats', async () => {
    const issuer = client(ks.admin);
    const tokens = await Promise.all([
      issuer.issueToken(ks.demo, { catalog: false }),
      issuer.issueToken(ks.admin, { catalog: false }),
      issuer.issueToken(ks.demo, { catalog: false }),
    ]);
    const svc = client(ks.service);
    // Concurrent first calls share the one authentication in flight.
    await Promise.all(tokens.map((t) => svc.validateToken(t.token)));
    for (let i = 0; i < 3; i++) for (const t of tokens) expect(await svc.validateToken(t.token)).not.toBeNull();
    expect(svc.stats.serviceAuthentications).toBe(1);
    expect(svc.stats.validationRequests).toBe(3);
    expect(svc.stats.cacheHits).toBe(9);
  });

  it('a revoked service token (401) is replaced once, transparently', async () => {
    const svc = client(ks.service, { tokenCacheTime: 0 });
    const admin = client(ks.admin);
    const demoTok = (await admin.issueToken(ks.demo, { catalog: false })).token;
    expect(await svc.validateToken(demoTok)).not.toBeNull();
    const own = await svc.getServiceToken();
    // The admin revokes the service's token behind its back.
    const del = await admin.request('DELETE', '/auth/tokens', { headers: { 'x-subject-token': own } });
    expect(del.status).toBe(204);
    expect((await svc.validateToken(demoTok))?.user_name).toBe('demo');
    expect(svc.stats.serviceAuthentications).toBe(2);
    expect(await svc.getServiceToken()).not.toBe(own);
  });

  it("revoked callers' tokens become invalid once the cache time is over", async () => {
    const svc = client(ks.service, { tokenCacheTime: 0 });
    const admin = client(ks.admin);
    const demoTok = (await admin.issueToken(ks.demo, { catalog: false })).token;
    expect(await svc.validateToken(demoTok)).not.toBeNull();
    await admin.request('DELETE', '/auth/tokens', { headers: { 'x-subject-token': demoTok } });
    expect(await svc.validateToken(demoTok)).toBeNull();
  });
});

describe('catalog lookups', () => {
  it('finds Keystone itself in the catalog', async () => {
    const svc = client(ks.service);
    expect(await svc.findEndpoint('identity', 'public', ks.region)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v3\/?$/);
    expect(await svc.findEndpoint('no-such-service-type', 'public', ks.region)).toBeNull();
  });
});
