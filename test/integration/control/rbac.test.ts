/**
 * Secure RBAC with the development cloud's real Keystone tokens: Keystone's bootstrap roles
 * (reader < member < admin), the dev cloud's demo-reader (only reader in demo) and demo (member
 * of demo) against the dev cloud's own ferry-api with the default policy. Two real migrations
 * made by the admin: one of a container labelled with the demo project (so the demo project's),
 * one of an unlabelled container (so the admin project's). A project reader lists and shows its
 * project's, finds the other project's "not found", and changes nothing; the admin sees both.
 * The [oslo_policy] options are tried on a ferry-api app run in this test (real Keystone
 * validation, the real conductor over the bus), with a real system-scoped token.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import type { ApiServer } from '../../../src/api/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { ConductorRPCAPI } from '../../../src/conductor/rpcapi.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { KeystoneClient, keystoneOptionsFromConf } from '../../../src/identity/keystone.js';
import { Policy } from '../../../src/identity/policy.js';
import { PROJECT_LABEL, type Container } from '../../../src/objects/host.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin as adminCall, apiBase, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { call, serve, silentLogger } from '../../unit/api/helpers.js';
import { keystoneCloud } from '../identity/keystone-cloud.js';

jest.setTimeout(300_000);

const ks = keystoneCloud();
const c1 = engine('compute1');
const c2 = engine('compute2');
const demoContainer = uniqueName('rbac-demo'); // labelled with the demo project
const adminContainer = uniqueName('rbac-admin'); // unlabelled: its migration is the admin's project's
let identity: KeystoneClient;
let tokens: { admin: string; member: string; reader: string; system: string };
let demoProject = '';
let adminProject = '';
let ours: Migration; // the demo project's
let theirs: Migration; // the admin project's

/** A system-scoped token (KeystoneClient issues project-scoped ones): Keystone's bootstrap gives the admin the admin role on the system. */
async function systemToken(): Promise<string> {
  const r = await fetch(`${ks.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: ks.admin.username, domain: { name: 'Default' }, password: ks.admin.password } } },
        scope: { system: { all: true } },
      },
    }),
  });
  expect(r.status).toBe(201);
  return r.headers.get('x-subject-token')!;
}

beforeAll(async () => {
  const conf = defaultConfig();
  conf.keystone_authtoken.auth_url = ks.authUrl;
  conf.keystone_authtoken.username = ks.service.username;
  conf.keystone_authtoken.password = ks.service.password;
  conf.keystone_authtoken.project_name = ks.service.project_name;
  identity = new KeystoneClient(keystoneOptionsFromConf(conf, { logger: silentLogger }));
  tokens = {
    admin: (await identity.issueToken(ks.admin, { catalog: false })).token,
    member: (await identity.issueToken(ks.demo, { catalog: false })).token,
    reader: (await identity.issueToken(ks.reader, { catalog: false })).token,
    system: await systemToken(),
  };
  const reader = (await identity.validateToken(tokens.reader))!;
  const member = (await identity.validateToken(tokens.member))!;
  // Keystone's role implication: member brings reader along; the reader has nothing more.
  expect([...reader.roles].sort()).toEqual(['reader']);
  expect([...member.roles].sort()).toEqual(['member', 'reader']);
  demoProject = reader.project_id!;
  expect(member.project_id).toBe(demoProject);
  adminProject = (await identity.validateToken(tokens.admin))!.project_id!;
  expect((await identity.validateToken(tokens.system))!.system_scope).toBe('all');

  for (const [name, project] of [
    [demoContainer, demoProject],
    [adminContainer, null],
  ] as const) {
    const ct = await c1.createContainer({
      Image: 'ferry/counter:latest',
      name,
      Env: ['COUNTER_INTERVAL=0.2'],
      Labels: project ? { [PROJECT_LABEL]: project } : {},
    });
    await ct.start();
  }
  for (const name of [demoContainer, adminContainer]) await waitKnown(name, 'compute1');
  const started: Migration[] = [];
  for (const name of [demoContainer, adminContainer]) {
    const r = await adminCall<{ migration: Migration }>('POST', `/v1/containers/${name}/migrate`, {});
    expect(r.status).toBe(202);
    started.push(r.body.migration);
  }
  [ours, theirs] = started;
  expect([ours.project_id, theirs.project_id]).toEqual([demoProject, adminProject]);
  for (const m of started) expect((await waitMigration(m.uuid)).status).toBe('completed');
});

afterAll(async () => {
  for (const n of [demoContainer, adminContainer]) {
    await removeQuietly(c1, n);
    await removeQuietly(c2, n);
  }
});

describe("the dev cloud's ferry-api with the default policy", () => {
  const ids = (r: { json: { migrations: Migration[] } }) => r.json.migrations.map((m) => m.uuid);
  const containerNames = async (token: string) => {
    const r = await call(apiBase(), 'GET', '/v1/containers', { token });
    expect(r.status).toBe(200);
    return (r.json.containers as Container[])
      .map((c) => c.name)
      .filter((n) => [demoContainer, adminContainer].includes(n))
      .sort();
  };

  it("a project reader (and a member) lists and shows its project's migrations, and only those", async () => {
    for (const who of ['reader', 'member'] as const) {
      const token = tokens[who];
      const listed = await call(apiBase(), 'GET', '/v1/migrations', { token });
      expect([who, listed.status]).toEqual([who, 200]);
      expect(ids(listed)).toContain(ours.uuid);
      expect(ids(listed)).not.toContain(theirs.uuid);
      expect((listed.json.migrations as Migration[]).every((m) => m.project_id === demoProject)).toBe(true);
      const shown = await call(apiBase(), 'GET', `/v1/migrations/${ours.uuid}`, { token });
      expect([who, shown.status, shown.json.migration?.container_name]).toEqual([who, 200, demoContainer]);
      expect(await containerNames(token)).toEqual([demoContainer]);
    }
  });

  it("another project's migration is not found to a reader, and asking for that project's list is 403", async () => {
    const other = await call(apiBase(), 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.reader });
    expect([other.status, other.json.error.ferry_code]).toEqual([404, 'migration_not_found']);
    const list = await call(apiBase(), 'GET', `/v1/migrations?project_id=${adminProject}`, { token: tokens.reader });
    expect([list.status, list.json.error.message]).toEqual([403, "Policy doesn't allow ferry:migration:all_projects to be performed."]);
  });

  it('a reader or a member changes nothing: migrate, abort, force-complete, hosts are 403', async () => {
    for (const who of ['reader', 'member'] as const) {
      for (const [method, path, body] of [
        ['POST', `/v1/containers/${demoContainer}/migrate`, {}],
        ['DELETE', `/v1/migrations/${ours.uuid}`, undefined],
        ['POST', `/v1/migrations/${ours.uuid}/action`, { force_complete: null }],
        ['GET', '/v1/hosts', undefined],
        ['PUT', '/v1/hosts/compute1', { status: 'disabled' }],
      ] as const) {
        const r = await call(apiBase(), method, path, { token: tokens[who], body });
        expect([who, method, path, r.status, r.json.error.ferry_code]).toEqual([who, method, path, 403, 'policy_not_authorized']);
      }
    }
    // Nothing moved: the demo project's container is still where the admin put it.
    expect((await call(apiBase(), 'GET', '/v1/migrations?container=' + demoContainer, { token: tokens.admin })).json.migrations).toHaveLength(1);
  });

  it('the admin sees every project', async () => {
    const listed = await call(apiBase(), 'GET', '/v1/migrations', { token: tokens.admin });
    expect(ids(listed)).toEqual(expect.arrayContaining([ours.uuid, theirs.uuid]));
    expect(await containerNames(tokens.admin)).toEqual([demoContainer, adminContainer].sort());
  });
});

describe('[oslo_policy] options with real tokens', () => {
  const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
  const servers: ApiServer[] = [];
  const app = async (policy: Policy) => {
    const conf = defaultConfig();
    conf.keystone_authtoken.www_authenticate_uri = ks.authUrl;
    const s = await serve(createApp({ conf, identity, policy, conductor: new ConductorRPCAPI(transport), logger: silentLogger }));
    servers.push(s);
    return s.url;
  };
  beforeAll(async () => {
    await transport.connect();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await transport.close();
  });

  it('enforce_scope: a system-scoped admin token is refused the migration rules (403 invalid_scope) and keeps the host rules', async () => {
    const strict = await app(Policy.fromRules({}, { enforce_scope: true, logger: silentLogger }));
    const r = await call(strict, 'GET', '/v1/migrations', { token: tokens.system });
    expect([r.status, r.json.error.ferry_code]).toEqual([403, 'invalid_scope']);
    expect((await call(strict, 'GET', '/v1/hosts', { token: tokens.system })).status).toBe(200);
    expect((await call(strict, 'GET', '/v1/migrations', { token: tokens.reader })).status).toBe(200);
    // Off (the default): the rule alone decides; a system admin is an administrator.
    const lax = await app(Policy.fromRules({}, { enforce_scope: false, logger: silentLogger }));
    const all = await call(lax, 'GET', '/v1/migrations', { token: tokens.system });
    expect(all.status).toBe(200);
    expect(all.json.migrations.map((m: Migration) => m.uuid)).toEqual(expect.arrayContaining([ours.uuid, theirs.uuid]));
  });

  it("enforce_new_defaults = false: the old admin-only default is kept beside the new one, so an operator's admin_api role still reads", async () => {
    // An operator's own role, none of Keystone's three, that they named an administrator in admin_api (the reads' old default).
    const keystoneAdmin = new KeystoneClient({ authUrl: ks.authUrl, credentials: ks.admin });
    const roleName = `ferry-test-ops-${process.pid}`;
    const userName = `ferry-test-ops-${process.pid}`;
    const password = `pw-${process.pid}-${Date.now()}`;
    const role = await keystoneAdmin.request('POST', '/roles', { body: { role: { name: roleName } } });
    expect(role.status).toBe(201);
    const roleId = (role.json as { role: { id: string } }).role.id;
    const user = await keystoneAdmin.request('POST', '/users', {
      body: { user: { name: userName, password, domain_id: 'default', default_project_id: demoProject } },
    });
    expect(user.status).toBe(201);
    const userId = (user.json as { user: { id: string } }).user.id;
    try {
      expect((await keystoneAdmin.request('PUT', `/projects/${demoProject}/users/${userId}/roles/${roleId}`)).status).toBe(204);
      const opsToken = (await identity.issueToken({ ...ks.demo, username: userName, password }, { catalog: false })).token;
      expect((await identity.validateToken(opsToken))!.roles).toEqual([roleName]);
      const overrides = { admin_api: `is_admin:True or rule:context_is_admin or role:${roleName}` };
      const old = await app(Policy.fromRules(overrides, { enforce_new_defaults: false }));
      const fresh = await app(Policy.fromRules(overrides, { enforce_new_defaults: true }));
      // Through the old default (and all_projects, still admin_api): every project's migrations.
      const viaOld = await call(old, 'GET', '/v1/migrations', { token: opsToken });
      expect(viaOld.status).toBe(200);
      expect(viaOld.json.migrations.map((m: Migration) => m.uuid)).toEqual(expect.arrayContaining([ours.uuid, theirs.uuid]));
      expect((await call(old, 'GET', `/v1/migrations/${theirs.uuid}`, { token: opsToken })).status).toBe(200);
      // The new default alone names the reader role and context_is_admin: refused.
      for (const path of ['/v1/migrations', `/v1/migrations/${ours.uuid}`]) {
        const r = await call(fresh, 'GET', path, { token: opsToken });
        expect([path, r.status, r.json.error.ferry_code]).toEqual([path, 403, 'policy_not_authorized']);
      }
      // The reader reads its own project under either, and no more.
      for (const base of [old, fresh]) {
        expect((await call(base, 'GET', `/v1/migrations/${ours.uuid}`, { token: tokens.reader })).status).toBe(200);
        expect((await call(base, 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.reader })).status).toBe(404);
      }
    } finally {
      await keystoneAdmin.request('DELETE', `/users/${userId}`);
      await keystoneAdmin.request('DELETE', `/roles/${roleId}`);
    }
  });
});
