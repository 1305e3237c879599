/**
 * The express app with the development cloud's real Keystone (tokens, validation, policy on
 * real roles) and an in-memory conductor.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import { startApiService, type ApiServer, type ApiService } from '../../../src/api/server.js';
import { defaultConfig, type FerryConfig } from '../../../src/conf/index.js';
import { KeystoneClient, keystoneOptionsFromConf } from '../../../src/identity/keystone.js';
import { Policy } from '../../../src/identity/policy.js';
import { FakeConductor } from '../../unit/api/fake-conductor.js';
import { call, REQ_ID_RE, serve, silentLogger } from '../../unit/api/helpers.js';
import { keystoneCloud } from '../identity/keystone-cloud.js';

jest.setTimeout(60_000);

let conf: FerryConfig;
let conductor: FakeConductor;
let server: ApiServer;
let base: string;
let adminToken: string;
let demoToken: string;

beforeAll(async () => {
  const ks = keystoneCloud();
  conf = defaultConfig();
  conf.keystone_authtoken.auth_url = ks.authUrl;
  conf.keystone_authtoken.www_authenticate_uri = ks.authUrl;
  conf.keystone_authtoken.username = ks.service.username;
  conf.keystone_authtoken.password = ks.service.password;
  conf.keystone_authtoken.project_name = ks.service.project_name;
  conf.api.bind_port = 0;
  conf.api.register_endpoints = false;
  conf.api.policy_file = '/nonexistent/ferry/policy.yaml';
  conductor = new FakeConductor();
  const identity = new KeystoneClient(keystoneOptionsFromConf(conf, { logger: silentLogger }));
  server = await serve(createApp({ conf, identity, policy: Policy.load(conf.api.policy_file, { logger: silentLogger }), conductor, logger: silentLogger }));
  base = server.url;
  adminToken = (await identity.issueToken(ks.admin, { catalog: false })).token;
  demoToken = (await identity.issueToken(ks.demo, { catalog: false })).token;
});

afterAll(async () => {
  await server?.close();
});

describe('ferry-api with the real Keystone', () => {
  it('no token -> 401 with WWW-Authenticate pointing at Keystone', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', { body: {} });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(`Keystone uri="${conf.keystone_authtoken.www_authenticate_uri}"`);
    expect(r.json.error).toMatchObject({ code: 401, title: 'Unauthorized' });
  });

  it('an invalid token -> 401', async () => {
    for (const bad of ['bogus', `gAAAAAB${'q'.repeat(170)}`, demoToken.slice(0, -4) + 'AAAA']) {
      const r = await call(base, 'GET', '/v1/migrations', { token: bad });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Keystone uri="http/);
      expect(r.json.error.message).toMatch(/invalid or has expired/);
    }
  });

  it('the demo (non-admin) user -> 403 on migrate, even claiming admin in headers', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: demoToken,
      body: { host: 'compute2' },
      headers: { 'x-roles': 'admin', 'x-identity-status': 'Confirmed' },
    });
    expect(r.status).toBe(403);
    expect(r.json.error).toMatchObject({ code: 403, title: 'Forbidden', ferry_code: 'policy_not_authorized' });
    expect((await call(base, 'GET', '/v1/hosts', { token: demoToken })).status).toBe(403);
    expect(conductor.calls).toHaveLength(0);
  });

  it('admin -> 202 with Location; the record is readable there', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', { token: adminToken, body: { host: 'compute2' } });
    expect(r.status).toBe(202);
    const uuid = r.json.migration.uuid as string;
    expect(r.headers.get('location')).toBe(`/v1/migrations/${uuid}`);
    const ctx = conductor.calls[0].ctx;
    expect(ctx).toMatchObject({ user_name: 'admin', project_name: 'admin', is_admin: true });
    expect(ctx.roles).toContain('admin');
    expect(ctx.auth_token).toBe(adminToken);
    expect(ctx.request_id).toBe(r.headers.get('x-openstack-request-id'));
    const got = await call(base, 'GET', r.headers.get('location')!, { token: adminToken });
    expect(got.status).toBe(200);
    expect(got.json.migration).toMatchObject({ uuid, container_name: 'counter', status: 'accepted', user_id: ctx.user_id });
  });

  it('every response carries a request id', async () => {
    const replies = await Promise.all([
      call(base, 'GET', '/'),
      call(base, 'GET', '/v1'),
      call(base, 'GET', '/healthcheck'),
      call(base, 'GET', '/v1/hosts'),
      call(base, 'GET', '/v1/hosts', { token: 'bogus' }),
      call(base, 'GET', '/v1/hosts', { token: demoToken }),
      call(base, 'GET', '/v1/hosts', { token: adminToken }),
      call(base, 'GET', '/v1/nothing', { token: adminToken }),
      call(base, 'DELETE', '/v1/hosts', { token: adminToken }),
    ]);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 401, 401, 403, 200, 404, 405]);
    const ids = replies.map((r) => r.headers.get('x-openstack-request-id'));
    for (const id of ids) expect(id).toMatch(REQ_ID_RE);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('startApiService', () => {
  let svc: ApiService | undefined;
  afterAll(async () => {
    await svc?.close();
  });

  it('starts ferry-api from the config alone and serves with the real Keystone', async () => {
    svc = await startApiService({ conf: { ...conf, api: { ...conf.api, bind_port: 0 } }, conductor: new FakeConductor(), logger: silentLogger });
    expect(await svc.registration).toBeNull(); // register_endpoints = false here
    expect((await call(svc.url, 'GET', '/v1/containers', { token: adminToken })).status).toBe(200);
    // The default policy in force: the demo project's member reads its containers, and may not list hosts.
    expect((await call(svc.url, 'GET', '/v1/containers', { token: demoToken })).status).toBe(200);
    expect((await call(svc.url, 'GET', '/v1/hosts', { token: demoToken })).status).toBe(403);
  });

  it('refuses to start on a bad policy file', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-')), 'policy.yaml');
    fs.writeFileSync(f, '"ferry:migration:create": "rule:nope"\n');
    await expect(
      startApiService({ conf: { ...conf, api: { ...conf.api, bind_port: 0, policy_file: f } }, conductor: new FakeConductor(), logger: silentLogger }),
    ).rejects.toThrow(/refers to rule:nope, which is not defined/);
  });
});
