import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import type { ApiServer } from '../../../src/api/server.js';
import { EngineError, MessagingTimeout, MessagingUnavailable } from '../../../src/common/errors.js';
import { defaultConfig, type FerryConfig } from '../../../src/conf/index.js';
import { Policy } from '../../../src/identity/policy.js';
import { FakeConductor } from './fake-conductor.js';
import { ADMIN_TOKEN, call, DEMO_TOKEN, FakeIdentity, READER_TOKEN, REQ_ID_RE, serve, silentLogger } from './helpers.js';

let conf: FerryConfig;
let conductor: FakeConductor;
let identity: FakeIdentity;
let policy: Policy;
let server: ApiServer;
let base: string;

function expectErrorShape(r: { json: unknown }, code: number, title: string) {
  const body = r.json as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(body.error.title).toBe(title);
  expect(typeof body.error.message).toBe('string');
  expect((body.error.message as string).length).toBeGreaterThan(0);
  for (const k of Object.keys(body.error)) expect(['code', 'title', 'message', 'ferry_code']).toContain(k);
}

beforeAll(async () => {
  conf = defaultConfig();
  conf.keystone_authtoken.www_authenticate_uri = 'http://keystone.example:5000/v3';
  conf.api.max_body_bytes = 2048;
  conductor = new FakeConductor();
  identity = new FakeIdentity();
  policy = Policy.fromRules({});
  server = await serve(createApp({ conf, identity, policy, conductor, logger: silentLogger }));
  base = server.url;
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  conductor.calls.length = 0;
  conductor.migrations.clear();
  conductor.failNext = undefined;
  identity.unavailable = false;
});

describe('public documents', () => {
  it('GET / lists the versions without a token', async () => {
    const r = await call(base, 'GET', '/');
    expect(r.status).toBe(200);
    expect(r.json.versions).toHaveLength(1);
    expect(r.json.versions[0]).toMatchObject({ id: 'v1.0', status: 'CURRENT' });
    expect(r.json.versions[0].links[0]).toEqual({ rel: 'self', href: `${base}/v1/` });
    expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID_RE);
  });

  it('GET /v1 is the version document', async () => {
    for (const p of ['/v1', '/v1/']) {
      const r = await call(base, 'GET', p);
      expect(r.status).toBe(200);
      expect(r.json.version).toMatchObject({ id: 'v1.0', status: 'CURRENT' });
      expect(r.json.version['media-types'][0].base).toBe('application/json');
    }
  });

  it('GET /healthcheck answers OK in text', async () => {
    const r = await call(base, 'GET', '/healthcheck');
    expect(r.status).toBe(200);
    expect(r.text).toBe('OK');
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID_RE);
  });

  it('a failing health check is 503', async () => {
    const s = await serve(createApp({ conf, identity, policy, conductor, logger: silentLogger, healthcheck: () => false }));
    try {
      const r = await call(s.url, 'GET', '/healthcheck');
      expect(r.status).toBe(503);
      expectErrorShape(r, 503, 'Service Unavailable');
    } finally {
      await s.close();
    }
  });

  it('uses [api] public_endpoint for links when set', async () => {
    const c2 = structuredClone(conf);
    c2.api.public_endpoint = 'https://ferry.example.org:9517/v1';
    const s = await serve(createApp({ conf: c2, identity, policy, conductor, logger: silentLogger }));
    try {
      const r = await call(s.url, 'GET', '/');
      expect(r.json.versions[0].links[0].href).toBe('https://ferry.example.org:9517/v1/');
    } finally {
      await s.close();
    }
  });
});

describe('request id', () => {
  it('is on every response, unique, including errors and unknown routes', async () => {
    const replies = await Promise.all([
      call(base, 'GET', '/'),
      call(base, 'GET', '/nowhere'),
      call(base, 'GET', '/v1/hosts'),
      call(base, 'GET', '/v1/hosts', { token: DEMO_TOKEN }),
      call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN }),
      call(base, 'PUT', '/v1/hosts', { token: ADMIN_TOKEN }),
      call(base, 'POST', '/v1/containers/counter/migrate', { token: ADMIN_TOKEN, raw: '{', headers: { 'content-type': 'application/json' } }),
    ]);
    const ids = replies.map((r) => r.headers.get('x-openstack-request-id'));
    for (const id of ids) expect(id).toMatch(REQ_ID_RE);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('reaches the conductor in the context; a valid inbound id becomes the global request id', async () => {
    const inbound = 'req-11111111-2222-3333-4444-555555555555';
    const r = await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN, headers: { 'x-openstack-request-id': inbound } });
    expect(r.status).toBe(200);
    const ctx = conductor.calls[0].ctx;
    expect(ctx.request_id).toBe(r.headers.get('x-openstack-request-id'));
    expect(ctx.request_id).not.toBe(inbound);
    expect(ctx.global_request_id).toBe(inbound);
    await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN, headers: { 'x-openstack-request-id': 'made-up' } });
    expect(conductor.calls[1].ctx.global_request_id).toBeNull();
  });
});

describe('authentication', () => {
  it('no token -> 401 with WWW-Authenticate', async () => {
    const r = await call(base, 'GET', '/v1/migrations');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Keystone uri="http://keystone.example:5000/v3"');
    expectErrorShape(r, 401, 'Unauthorized');
    expect(r.json.error.message).toMatch(/X-Auth-Token/);
    expect(conductor.calls).toHaveLength(0);
  });

  it('an invalid token -> 401 with WWW-Authenticate', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', { token: 'nope', body: {} });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Keystone uri="http://keystone.example:5000/v3"');
    expect(r.json.error.message).toMatch(/invalid or has expired/);
    expect(r.json.error.ferry_code).toBe('not_authenticated');
    expect(conductor.calls).toHaveLength(0);
  });

  it('caller-supplied identity headers are ignored', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      body: {},
      headers: { 'x-identity-status': 'Confirmed', 'x-roles': 'admin', 'x-user-id': 'evil', 'x-project-id': 'p-admin', 'x-is-admin-project': 'True' },
    });
    expect(r.status).toBe(401);
    const r2 = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: DEMO_TOKEN,
      body: {},
      headers: { 'x-roles': 'admin', 'X-Identity-Status': 'Confirmed', 'x-user-id': 'u-admin' },
    });
    expect(r2.status).toBe(403);
    expect(conductor.calls).toHaveLength(0);
  });

  it('Keystone unreachable -> 503', async () => {
    identity.unavailable = true;
    const r = await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN });
    expect(r.status).toBe(503);
    expectErrorShape(r, 503, 'Service Unavailable');
    expect(r.json.error.ferry_code).toBe('identity_unavailable');
    expect(r.headers.get('www-authenticate')).toBeNull();
  });

  it('the context carries the token, names, roles and is_admin from context_is_admin', async () => {
    await call(base, 'GET', '/v1/containers', { token: ADMIN_TOKEN });
    const ctx = conductor.calls[0].ctx;
    expect(ctx).toMatchObject({
      user_id: 'u-admin',
      user_name: 'admin',
      project_id: 'p-admin',
      project_name: 'admin',
      user_domain_id: 'default',
      project_domain_id: 'default',
      is_admin: true,
      auth_token: ADMIN_TOKEN,
    });
    expect(ctx.roles).toEqual(['admin', 'member', 'reader']);
  });
});

describe('policy', () => {
  const denied: [string, string, unknown?][] = [
    ['GET', '/v1/hosts', undefined],
    ['PUT', '/v1/hosts/compute1', { status: 'disabled' }],
    ['POST', '/v1/hosts/compute1/evacuate', {}],
    ['GET', '/v1/evacuations', undefined],
    ['POST', '/v1/containers/counter/migrate', {}],
  ];
  it.each(denied)('a project member gets 403 on %s %s', async (method, path, body) => {
    const r = await call(base, method, path, { token: DEMO_TOKEN, body });
    expect(r.status).toBe(403);
    expectErrorShape(r, 403, 'Forbidden');
    expect(r.json.error.message).toMatch(/^Policy doesn't allow ferry:/);
    expect(conductor.calls).toHaveLength(0);
  });

  it("a project member cannot abort a migration, nor see another project's", async () => {
    const m = conductor.add({ container_name: 'counter', project_id: 'p-admin' });
    expect((await call(base, 'GET', `/v1/migrations/${m.uuid}`, { token: DEMO_TOKEN })).status).toBe(404);
    expect((await call(base, 'DELETE', `/v1/migrations/${m.uuid}`, { token: DEMO_TOKEN })).status).toBe(403);
    expect(conductor.calls.map((c) => c.method)).not.toContain('abortMigration');
    expect(conductor.migrations.get(m.uuid)?.status).toBe('accepted');
  });

  it('policy is checked before the body is read (403, not 400, for a demo user with bad JSON)', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: DEMO_TOKEN,
      raw: '{bad',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(403);
  });

  it("overrides apply: owners may read their migrations; another project's is not found, exactly like a missing one", async () => {
    const p2 = Policy.fromRules({
      'ferry:migration:get': 'rule:admin_api or project_id:%(project_id)s',
      'ferry:migration:delete': 'rule:admin_api or project_id:%(project_id)s',
    });
    const s = await serve(createApp({ conf, identity, policy: p2, conductor, logger: silentLogger }));
    try {
      const mine = conductor.add({ container_name: 'counter', project_id: 'p-demo', status: 'pre-migrating' });
      const theirs = conductor.add({ container_name: 'redis', project_id: 'p-admin', status: 'pre-migrating' });
      const missing = '0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10';
      expect((await call(s.url, 'GET', `/v1/migrations/${mine.uuid}`, { token: DEMO_TOKEN })).status).toBe(200);
      for (const method of ['GET', 'DELETE']) {
        const a = await call(s.url, method, `/v1/migrations/${theirs.uuid}`, { token: DEMO_TOKEN });
        const b = await call(s.url, method, `/v1/migrations/${missing}`, { token: DEMO_TOKEN });
        expect([method, a.status, b.status]).toEqual([method, 404, 404]);
        expect(a.json.error.message).toBe(`Migration ${theirs.uuid} could not be found.`);
        expect(a.json.error.message.replace(theirs.uuid, 'X')).toBe(b.json.error.message.replace(missing, 'X'));
      }
      expect(conductor.migrations.get(theirs.uuid)?.status).toBe('pre-migrating');
      expect(conductor.calls.map((c) => c.method)).not.toContain('abortMigration');
      // The admin sees and aborts every project's.
      expect((await call(s.url, 'GET', `/v1/migrations/${mine.uuid}`, { token: ADMIN_TOKEN })).status).toBe(200);
      expect((await call(s.url, 'DELETE', `/v1/migrations/${mine.uuid}`, { token: DEMO_TOKEN })).status).toBe(202);
    } finally {
      await s.close();
    }
  });

  it("a member allowed to list sees only their project's migrations; asking for another project is refused", async () => {
    const p2 = Policy.fromRules({ 'ferry:migration:get_all': 'rule:admin_api or role:member' });
    const s = await serve(createApp({ conf, identity, policy: p2, conductor, logger: silentLogger }));
    try {
      conductor.add({ container_name: 'a', project_id: 'p-demo' });
      conductor.add({ container_name: 'b', project_id: 'p-admin' });
      const r = await call(s.url, 'GET', '/v1/migrations', { token: DEMO_TOKEN });
      expect(r.status).toBe(200);
      expect(r.json.migrations.map((m: { container_name: string }) => m.container_name)).toEqual(['a']);
      expect(conductor.calls.at(-1)?.args[0]).toMatchObject({ project_id: 'p-demo' });
      expect((await call(s.url, 'GET', '/v1/migrations?project_id=p-demo', { token: DEMO_TOKEN })).status).toBe(200);
      const other = await call(s.url, 'GET', '/v1/migrations?project_id=p-admin', { token: DEMO_TOKEN });
      expect(other.status).toBe(403);
      expect(other.json.error.message).toBe("Policy doesn't allow ferry:migration:all_projects to be performed.");
      const all = await call(s.url, 'GET', '/v1/migrations', { token: ADMIN_TOKEN });
      expect(all.json.migrations).toHaveLength(2);
      const filtered = await call(s.url, 'GET', '/v1/migrations?project_id=p-demo', { token: ADMIN_TOKEN });
      expect(filtered.json.migrations.map((m: { container_name: string }) => m.container_name)).toEqual(['a']);
    } finally {
      await s.close();
    }
  });

  it("a caller whose token has no project reaches no project's migrations: a 403, never every project's", async () => {
    const p2 = Policy.fromRules({
      'ferry:migration:get_all': 'rule:admin_api or role:member',
      'ferry:migration:get': 'rule:admin_api or project_id:%(project_id)s',
    });
    const noProject = { project_id: null, project_name: null, project_domain_id: null, project_domain_name: null };
    identity.tokens.set('domain-member', { ...identity.tokens.get(DEMO_TOKEN)!, ...noProject, domain_id: 'default', domain_name: 'Default' });
    identity.tokens.set('unscoped', { ...identity.tokens.get(DEMO_TOKEN)!, ...noProject });
    const s = await serve(createApp({ conf, identity, policy: p2, conductor, logger: silentLogger }));
    try {
      conductor.add({ container_name: 'a', project_id: 'p-demo' });
      const unowned = conductor.add({ container_name: 'b', project_id: null });
      for (const token of ['domain-member', 'unscoped']) {
        for (const path of [
          '/v1/migrations',
          '/v1/migrations?project_id=p-demo',
          `/v1/migrations/${unowned.uuid}`,
          '/v1/migrations/0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10',
        ]) {
          const r = await call(s.url, 'GET', path, { token });
          expect([token, path, r.status, r.json.error?.ferry_code]).toEqual([token, path, 403, 'project_scope_required']);
          expect(r.json.error.message).toMatch(/this token has no project/);
        }
      }
      expect(conductor.calls.map((c) => c.method)).toEqual([]);
      // A system-scoped admin passes the all-projects rule: everything, as before.
      identity.tokens.set('system-admin', { ...identity.tokens.get(ADMIN_TOKEN)!, ...noProject, system_scope: 'all' });
      expect((await call(s.url, 'GET', '/v1/migrations', { token: 'system-admin' })).json.migrations).toHaveLength(2);
    } finally {
      await s.close();
    }
  });

  it("members allowed to migrate reach only their project's containers (the creator's label); another's or an unlabelled one is not found", async () => {
    const p2 = Policy.fromRules({
      'ferry:migration:create': 'rule:admin_api or role:member',
      'ferry:container:get_all': 'rule:admin_api or role:member',
    });
    identity.tokens.set('domain-member', {
      ...identity.tokens.get(DEMO_TOKEN)!,
      project_id: null,
      project_name: null,
      project_domain_id: null,
      project_domain_name: null,
      domain_id: 'default',
    });
    const s = await serve(createApp({ conf, identity, policy: p2, conductor, logger: silentLogger }));
    try {
      const own = await call(s.url, 'POST', '/v1/containers/counter/migrate', { token: DEMO_TOKEN, body: {} });
      expect(own.status).toBe(202);
      expect(own.json.migration).toMatchObject({ container_name: 'counter', project_id: 'p-demo', user_id: 'u-demo' });
      expect(conductor.calls.at(-1)?.args).toEqual(['counter', null, { project_id: 'p-demo' }]);
      // redis has no project label: to a member it does not exist.
      const other = await call(s.url, 'POST', '/v1/containers/redis/migrate', { token: DEMO_TOKEN, body: {} });
      const missing = await call(s.url, 'POST', '/v1/containers/nosuch/migrate', { token: DEMO_TOKEN, body: {} });
      expect([other.status, missing.status]).toEqual([404, 404]);
      expect(other.json.error.message.replace('redis', 'X')).toBe(missing.json.error.message.replace('nosuch', 'X'));
      const listed = await call(s.url, 'GET', '/v1/containers', { token: DEMO_TOKEN });
      expect(listed.json.containers.map((c: { name: string }) => c.name)).toEqual(['counter']);
      // No project, no container.
      const none = await call(s.url, 'POST', '/v1/containers/counter/migrate', { token: 'domain-member', body: {} });
      expect([none.status, none.json.error.ferry_code]).toEqual([403, 'project_scope_required']);
      expect((await call(s.url, 'GET', '/v1/containers', { token: 'domain-member' })).status).toBe(403);
      // The admin: any container, no scope sent (unchanged).
      const byAdmin = await call(s.url, 'POST', '/v1/containers/redis/migrate', { token: ADMIN_TOKEN, body: {} });
      expect(byAdmin.status).toBe(202);
      expect(conductor.calls.at(-1)?.args).toEqual(['redis', null]);
      expect((await call(s.url, 'GET', '/v1/containers', { token: ADMIN_TOKEN })).json.containers).toHaveLength(2);
    } finally {
      await s.close();
    }
  });

  it("the admin role counts only in the admin project ([api] admin_project_name), as Keystone's convention", async () => {
    identity.tokens.set('tenant-admin', { ...identity.tokens.get(DEMO_TOKEN)!, roles: ['admin', 'member'], is_admin_project: true });
    identity.tokens.set('system-admin', {
      ...identity.tokens.get(ADMIN_TOKEN)!,
      project_id: null,
      project_name: null,
      project_domain_id: null,
      project_domain_name: null,
      system_scope: 'all',
    });
    expect((await call(base, 'GET', '/v1/hosts', { token: 'tenant-admin' })).status).toBe(403);
    expect((await call(base, 'GET', '/v1/hosts', { token: 'system-admin' })).status).toBe(200);
    expect((await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN })).status).toBe(200);
    // Empty admin_project_name: Keystone's own is_admin_project flag decides.
    const c2 = { ...conf, api: { ...conf.api, admin_project_name: '' } };
    const s = await serve(createApp({ conf: c2, identity, policy, conductor, logger: silentLogger }));
    try {
      expect((await call(s.url, 'GET', '/v1/hosts', { token: 'tenant-admin' })).status).toBe(200);
      identity.tokens.set('tenant-admin', { ...identity.tokens.get('tenant-admin')!, is_admin_project: false });
      expect((await call(s.url, 'GET', '/v1/hosts', { token: 'tenant-admin' })).status).toBe(403);
    } finally {
      await s.close();
    }
  });
});

describe('secure RBAC defaults (reader, member, admin)', () => {
  const names = (r: { json: { migrations: { container_name: string }[] } }) => r.json.migrations.map((m) => m.container_name).sort();

  it("a project reader lists and shows its project's migrations and containers, and nothing else", async () => {
    conductor.add({ container_name: 'mine', project_id: 'p-demo' });
    const theirs = conductor.add({ container_name: 'theirs', project_id: 'p-admin' });
    const mine = [...conductor.migrations.values()].find((m) => m.container_name === 'mine')!;
    for (const token of [READER_TOKEN, DEMO_TOKEN]) {
      const listed = await call(base, 'GET', '/v1/migrations', { token });
      expect([token, listed.status]).toEqual([token, 200]);
      // The filter goes to the conductor: the list is the project's, not the whole table filtered here.
      expect(conductor.calls.at(-1)?.args[0]).toMatchObject({ project_id: 'p-demo' });
      expect(names(listed)).toEqual(['mine']);
      expect((await call(base, 'GET', `/v1/migrations/${mine.uuid}`, { token })).json.migration.container_name).toBe('mine');
      expect((await call(base, 'GET', `/v1/migrations/${theirs.uuid}`, { token })).status).toBe(404);
      const other = await call(base, 'GET', '/v1/migrations?project_id=p-admin', { token });
      expect([other.status, other.json.error.message]).toEqual([403, "Policy doesn't allow ferry:migration:all_projects to be performed."]);
      const containers = await call(base, 'GET', '/v1/containers', { token });
      expect(containers.status).toBe(200);
      expect(conductor.calls.at(-1)?.args[0]).toMatchObject({ project_id: 'p-demo' });
    }
    expect(names(await call(base, 'GET', '/v1/migrations', { token: ADMIN_TOKEN }))).toEqual(['mine', 'theirs']);
  });

  it('a reader changes nothing: migrate, abort, force-complete and host maintenance are 403', async () => {
    const mine = conductor.add({ container_name: 'mine', project_id: 'p-demo', status: 'running' });
    for (const [method, path, body] of [
      ['POST', '/v1/containers/counter/migrate', {}],
      ['DELETE', `/v1/migrations/${mine.uuid}`, undefined],
      ['POST', `/v1/migrations/${mine.uuid}/action`, { force_complete: null }],
      ['GET', '/v1/hosts', undefined],
      ['PUT', '/v1/hosts/compute1', { status: 'disabled' }],
    ] as const) {
      const r = await call(base, method, path, { token: READER_TOKEN, body });
      expect([method, path, r.status, r.json.error.ferry_code]).toEqual([method, path, 403, 'policy_not_authorized']);
    }
    expect(conductor.calls.map((c) => c.method)).toEqual([]);
  });

  it('a role that is none of reader, member, admin reads nothing, even in its own project', async () => {
    identity.tokens.set('observer', { ...identity.tokens.get(READER_TOKEN)!, roles: ['heat_stack_owner'] });
    for (const path of ['/v1/migrations', '/v1/containers']) {
      const r = await call(base, 'GET', path, { token: 'observer' });
      expect([path, r.status]).toEqual([path, 403]);
    }
  });

  it("enforce_new_defaults = false keeps the old default too: an operator's admin_api override still grants the reads", async () => {
    // The operator's own administrators, named in admin_api before the new defaults existed.
    identity.tokens.set('operator', { ...identity.tokens.get(READER_TOKEN)!, project_id: 'p-ops', roles: ['cloud-operator'] });
    conductor.add({ container_name: 'mine', project_id: 'p-demo' });
    const overrides = { admin_api: 'is_admin:True or rule:context_is_admin or role:cloud-operator' };
    for (const [enforce_new_defaults, status] of [
      [false, 200],
      [true, 403],
    ] as const) {
      const p2 = Policy.fromRules(overrides, { enforce_new_defaults });
      const s = await serve(createApp({ conf, identity, policy: p2, conductor, logger: silentLogger }));
      try {
        const r = await call(s.url, 'GET', '/v1/migrations', { token: 'operator' });
        expect([enforce_new_defaults, r.status]).toEqual([enforce_new_defaults, status]);
        // The old default also passes them for all_projects (still admin_api): every project's.
        if (status === 200) expect(names(r)).toEqual(['mine']);
        // A project reader reads either way: the old default is added, never instead.
        expect((await call(s.url, 'GET', '/v1/migrations', { token: READER_TOKEN })).status).toBe(200);
      } finally {
        await s.close();
      }
    }
  });

  it('enforce_scope = true refuses a system-scoped token on project rules (403 invalid_scope) and keeps it for hosts', async () => {
    identity.tokens.set('system-admin', {
      ...identity.tokens.get(ADMIN_TOKEN)!,
      project_id: null,
      project_name: null,
      project_domain_id: null,
      project_domain_name: null,
      is_admin_project: false,
      system_scope: 'all',
    });
    for (const [enforce_scope, migrations] of [
      [false, 200],
      [true, 403],
    ] as const) {
      const p2 = Policy.fromRules({}, { enforce_scope, logger: silentLogger });
      const s = await serve(createApp({ conf, identity, policy: p2, conductor, logger: silentLogger }));
      try {
        const r = await call(s.url, 'GET', '/v1/migrations', { token: 'system-admin' });
        expect([enforce_scope, r.status]).toEqual([enforce_scope, migrations]);
        if (enforce_scope) {
          expect(r.json.error.ferry_code).toBe('invalid_scope');
          expect(r.json.error.message).toBe(
            'Policy ferry:migration:get_all is for project-scoped tokens and this token is system-scoped: ask Keystone for a project-scoped token.',
          );
        }
        expect((await call(s.url, 'GET', '/v1/hosts', { token: 'system-admin' })).status).toBe(200);
        // The admin project's token is project-scoped: everything, either way.
        expect((await call(s.url, 'GET', '/v1/migrations', { token: ADMIN_TOKEN })).status).toBe(200);
      } finally {
        await s.close();
      }
    }
  });
});

describe('routes', () => {
  it('GET /v1/hosts -> {"hosts": [...]}', async () => {
    const r = await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.json.hosts.map((h: { name: string }) => h.name)).toEqual(['compute1', 'compute2']);
    expect(r.json.hosts[0]).toMatchObject({ state: 'up', docker_version: '28.1.1', criu_version: '4.2', containers: 1 });
  });

  it('GET /v1/containers -> {"containers": [...]}', async () => {
    const r = await call(base, 'GET', '/v1/containers', { token: ADMIN_TOKEN });
    expect(r.status).toBe(200);
    expect(r.json.containers[0]).toEqual(expect.objectContaining({ name: 'counter', host: 'compute1', image: 'busybox', status: 'running' }));
  });

  it('POST migrate -> 202, Location and the migration', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', { token: ADMIN_TOKEN, body: { host: 'compute2' } });
    expect(r.status).toBe(202);
    const m = r.json.migration;
    expect(m).toMatchObject({ container_name: 'counter', source_host: 'compute1', dest_host: 'compute2', status: 'accepted' });
    expect(r.headers.get('location')).toBe(`/v1/migrations/${m.uuid}`);
    expect(conductor.calls[0]).toMatchObject({ method: 'migrateContainer', args: ['counter', 'compute2'] });
  });

  it('POST migrate without a body, with {} and with host null lets the conductor choose', async () => {
    for (const opts of [{}, { body: {} }, { body: { host: null } }]) {
      conductor.calls.length = 0;
      const r = await call(base, 'POST', '/v1/containers/counter/migrate', { token: ADMIN_TOKEN, ...opts });
      expect(r.status).toBe(202);
      expect(conductor.calls[0].args).toEqual(['counter', null]);
    }
  });

  it('GET /v1/migrations with filters passes them on', async () => {
    conductor.add({ container_name: 'counter', status: 'running' });
    conductor.add({ container_name: 'redis', status: 'completed' });
    const r = await call(base, 'GET', '/v1/migrations?status=running&source_host=compute1', { token: ADMIN_TOKEN });
    expect(r.status).toBe(200);
    expect(r.json.migrations).toHaveLength(1);
    expect(r.json.migrations[0].container_name).toBe('counter');
    // One more than the page size, to learn whether a next page exists; an admin's list is not limited to a project.
    expect(conductor.calls[0].args[0]).toEqual({ status: 'running', source_host: 'compute1', limit: 1001 });
    const all = await call(base, 'GET', '/v1/migrations', { token: ADMIN_TOKEN });
    expect(all.json.migrations).toHaveLength(2);
  });

  it('GET /v1/migrations pages with limit and marker; `migrations_links` leads to the next page until the last', async () => {
    const made = Array.from({ length: 5 }, (_, i) => conductor.add({ container_name: `c${i}` }));
    const seen: string[] = [];
    let url = '/v1/migrations?limit=2&status=accepted';
    const pages: number[] = [];
    for (;;) {
      const r = await call(base, 'GET', url, { token: ADMIN_TOKEN });
      expect(r.status).toBe(200);
      pages.push(r.json.migrations.length);
      seen.push(...r.json.migrations.map((m: { uuid: string }) => m.uuid));
      if (!r.json.migrations_links) break;
      expect(r.json.migrations_links).toHaveLength(1);
      const next = r.json.migrations_links[0];
      expect(next.rel).toBe('next');
      expect(next.href.startsWith(`${base}/v1/migrations?`)).toBe(true);
      const q = new URL(next.href).searchParams;
      expect([q.get('limit'), q.get('status'), q.get('marker')]).toEqual(['2', 'accepted', seen[seen.length - 1]]);
      url = next.href.slice(base.length);
    }
    expect(pages).toEqual([2, 2, 1]);
    expect(seen).toEqual(made.map((m) => m.uuid));
  });

  it('a limit above [api] max_limit gets max_limit; no limit gets max_limit too', async () => {
    const c2 = { ...conf, api: { ...conf.api, max_limit: 3 } };
    const s = await serve(createApp({ conf: c2, identity, policy, conductor, logger: silentLogger }));
    try {
      for (let i = 0; i < 5; i++) conductor.add({ container_name: `c${i}` });
      for (const q of ['', '?limit=100']) {
        const r = await call(s.url, 'GET', `/v1/migrations${q}`, { token: ADMIN_TOKEN });
        expect(r.json.migrations).toHaveLength(3);
        expect(new URL(r.json.migrations_links[0].href).searchParams.get('limit')).toBe('3');
      }
      const c = await call(s.url, 'GET', '/v1/containers?limit=1', { token: ADMIN_TOKEN });
      expect(c.json.containers).toHaveLength(1);
      expect(c.json.containers_links[0].href).toBe(`${s.url}/v1/containers?limit=1&marker=${conductor.containers[0].id}`);
      const last = await call(s.url, 'GET', `/v1/containers?limit=1&marker=${conductor.containers[0].id}`, { token: ADMIN_TOKEN });
      expect(last.json).toEqual({ containers: [conductor.containers[1]] });
    } finally {
      await s.close();
    }
  });

  it('GET /v1/migrations/{uuid} -> {"migration": {...}}; any case of uuid', async () => {
    const m = conductor.add({ container_name: 'counter' });
    const r = await call(base, 'GET', `/v1/migrations/${m.uuid.toUpperCase()}`, { token: ADMIN_TOKEN });
    expect(r.status).toBe(200);
    expect(r.json.migration.uuid).toBe(m.uuid);
  });

  it('DELETE /v1/migrations/{uuid} -> 202 (abort)', async () => {
    const m = conductor.add({ container_name: 'counter', status: 'pre-migrating' });
    const r = await call(base, 'DELETE', `/v1/migrations/${m.uuid}`, { token: ADMIN_TOKEN });
    expect(r.status).toBe(202);
    expect(r.json.migration.status).toBe('cancelled');
    expect(conductor.calls.map((c) => c.method)).toEqual(['getMigration', 'abortMigration']);
  });
});

describe('errors', () => {
  it('unknown migration -> 404 in the contract shape; malformed ids too, without asking the conductor', async () => {
    const r = await call(base, 'GET', '/v1/migrations/0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10', { token: ADMIN_TOKEN });
    expect(r.status).toBe(404);
    expectErrorShape(r, 404, 'Not Found');
    expect(r.json.error.message).toBe('Migration 0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10 could not be found.');
    expect(r.json.error.ferry_code).toBe('migration_not_found');
    conductor.calls.length = 0;
    for (const bad of ['42', 'not-a-uuid', '0b6b2c1e4e1a4f439a3e2f1f3c7a9d10x']) {
      const b = await call(base, 'GET', `/v1/migrations/${bad}`, { token: ADMIN_TOKEN });
      expect(b.status).toBe(404);
      expect(b.json.error.message).toBe(`Migration ${bad} could not be found.`);
      const d = await call(base, 'DELETE', `/v1/migrations/${bad}`, { token: ADMIN_TOKEN });
      expect(d.status).toBe(404);
    }
    expect(conductor.calls).toHaveLength(0);
  });

  it('unknown container -> 404', async () => {
    const r = await call(base, 'POST', '/v1/containers/ghost/migrate', { token: ADMIN_TOKEN, body: {} });
    expect(r.status).toBe(404);
    expect(r.json.error).toMatchObject({ code: 404, title: 'Not Found', ferry_code: 'container_not_found' });
    const bad = await call(base, 'POST', `/v1/containers/${encodeURIComponent('no such!')}/migrate`, { token: ADMIN_TOKEN, body: {} });
    expect(bad.status).toBe(404);
  });

  it('unknown target host -> 404; target = source -> 400', async () => {
    expect((await call(base, 'POST', '/v1/containers/counter/migrate', { token: ADMIN_TOKEN, body: { host: 'compute9' } })).status).toBe(404);
    const same = await call(base, 'POST', '/v1/containers/counter/migrate', { token: ADMIN_TOKEN, body: { host: 'compute1' } });
    expect(same.status).toBe(400);
    expect(same.json.error.message).toMatch(/the container already runs on "compute1"; choose another target host/);
  });

  it('abort of a finished migration -> 409', async () => {
    const m = conductor.add({ container_name: 'counter', status: 'completed' });
    const r = await call(base, 'DELETE', `/v1/migrations/${m.uuid}`, { token: ADMIN_TOKEN });
    expect(r.status).toBe(409);
    expectErrorShape(r, 409, 'Conflict');
    expect(r.json.error.ferry_code).toBe('invalid_migration_state');
  });

  it('malformed JSON -> 400', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: ADMIN_TOKEN,
      raw: '{"host": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(400);
    expectErrorShape(r, 400, 'Bad Request');
    expect(r.json.error.message).toMatch(/^Malformed JSON in the request body/);
    expect(conductor.calls).toHaveLength(0);
  });

  it.each([
    [{ host: 42 }, /Invalid field "host": must be a string/],
    [{ host: '' }, /Invalid field "host": must not be empty/],
    [{ host: 'compute2', force: true }, /Unknown field in the request body: "force" \(allowed: host, post_copy\)/],
    [[], /must be a JSON object/],
    ['compute2', /must be a JSON object/],
    [null, /must be a JSON object/],
  ])('bad body %j -> 400', async (body, message) => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: ADMIN_TOKEN,
      raw: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(400);
    expectErrorShape(r, 400, 'Bad Request');
    expect(r.json.error.message).toMatch(message);
    expect(r.json.error.ferry_code).toBe('invalid_input');
    expect(conductor.calls).toHaveLength(0);
  });

  it.each([['latest'], ['1.0']])('a "__proto__" field at microversion %s -> 400 naming it, never a 500', async (version) => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: ADMIN_TOKEN,
      raw: '{"__proto__": {"host": "compute2"}}',
      headers: { 'content-type': 'application/json' },
      apiVersion: version,
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/Unknown field in the request body: "__proto__"/);
    expect(conductor.calls).toHaveLength(0);
  });

  it('a body that is not JSON -> 415; too large -> 413', async () => {
    const r = await call(base, 'POST', '/v1/containers/counter/migrate', {
      token: ADMIN_TOKEN,
      raw: 'host=compute2',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(415);
    expectErrorShape(r, 415, 'Unsupported Media Type');
    const big = await call(base, 'POST', '/v1/containers/counter/migrate', { token: ADMIN_TOKEN, body: { host: 'x'.repeat(4000) } });
    expect(big.status).toBe(413);
    expectErrorShape(big, 413, 'Payload Too Large');
    expect(big.json.error.message).toMatch(/2048 bytes/);
    expect(conductor.calls).toHaveLength(0);
  });

  it.each([
    ['?status=flying', /Invalid query parameter "status": must be one of accepted, pre-migrating, running/],
    ['?status=running&status=failed', /"status": must be given only once/],
    [
      '?colour=red',
      /Unknown query parameter: "colour" \(allowed: container, status, source_host, dest_host, user_id, project_id, changes-since, changes-before, limit, marker, sort_key, sort_dir\)/,
    ],
    ['?limit=0', /"limit": must be a positive integer/],
    ['?marker=abc', /"marker": must be the uuid of a migration/],
    ['?changes-since=soon', /"changes-since": must be an ISO 8601 date-time/],
    ['?container=', /"container": must not be empty/],
  ])('bad filters %s -> 400', async (query, message) => {
    const r = await call(base, 'GET', `/v1/migrations${query}`, { token: ADMIN_TOKEN });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(message);
    expect(conductor.calls).toHaveLength(0);
  });

  it('unknown routes -> 404 in the contract shape', async () => {
    for (const p of ['/nowhere', '/v2', '/v1/hosts/compute1/extra']) {
      const r = await call(base, 'GET', p, { token: ADMIN_TOKEN });
      expect(r.status).toBe(404);
      expectErrorShape(r, 404, 'Not Found');
      expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID_RE);
    }
  });

  it('wrong method on a known path -> 405 with Allow', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/v1/hosts', 'GET, HEAD, OPTIONS'],
      ['POST', '/v1/migrations', 'GET, HEAD, OPTIONS'],
      ['GET', '/v1/containers/counter/migrate', 'POST, OPTIONS'],
      ['PUT', '/v1/migrations/0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10', 'GET, DELETE, HEAD, OPTIONS'],
      ['POST', '/', 'GET, HEAD, OPTIONS'],
      ['POST', '/healthcheck', 'GET, HEAD, OPTIONS'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await call(base, method, path, { token: ADMIN_TOKEN });
      expect(r.status).toBe(405);
      expectErrorShape(r, 405, 'Method Not Allowed');
      expect(r.headers.get('allow')).toBe(allow);
    }
    expect(conductor.calls).toHaveLength(0);
  });

  it('conductor unavailable -> 503, timeout -> 504, internal -> 500 without details', async () => {
    conductor.failNext = new MessagingUnavailable('cannot reach the message bus');
    expect((await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN })).status).toBe(503);
    conductor.failNext = new MessagingTimeout('no reply from ferry-conductor in 60 s');
    const t = await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN });
    expect(t.status).toBe(504);
    expectErrorShape(t, 504, 'Gateway Timeout');
    conductor.failNext = new EngineError('secret /var/lib/docker path');
    const e = await call(base, 'GET', '/v1/hosts', { token: ADMIN_TOKEN });
    expect(e.status).toBe(500);
    expectErrorShape(e, 500, 'Internal Server Error');
    expect(e.text).not.toMatch(/secret|at |\.ts/);
    const boom = new TypeError("Cannot read properties of undefined (reading 'x')");
    conductor.failNext = boom;
    const b = await call(base, 'GET', '/v1/containers', { token: ADMIN_TOKEN });
    expect(b.status).toBe(500);
    expect(b.text).not.toMatch(/Cannot read|TypeError|stack/);
    expect(b.json.error.ferry_code).toBeUndefined();
  });
});
