/**
 * Projects and roles with the development cloud's real Keystone and conductor: a caller who
 * may not see every project sees only their project's migrations, and another project's
 * migration is "not found" exactly like one that does not exist; the admin role counts only
 * in the admin project (Keystone's convention), not in a tenant's own project. Containers carry
 * their creator's project label: a member allowed to migrate moves their own (the label moves
 * with it) and finds no other; a token without a project reaches nothing.
 *
 * The policy overrides that let members migrate and abort are applied to a ferry-api app run in
 * this test (createApp, real Keystone validation, the real conductor over the bus); the
 * default-policy checks (project readers read their own project: see rbac.test.ts) go to the
 * dev cloud's own ferry-api service. The records
 * are written into the conductor's database through its repository.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createApp } from '../../../src/api/app.js';
import type { ApiServer } from '../../../src/api/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { ConductorRPCAPI } from '../../../src/conductor/rpcapi.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { defaultConfig, loadConfig } from '../../../src/conf/index.js';
import { openDatabase, type Db } from '../../../src/db/schema.js';
import { KeystoneClient, keystoneOptionsFromConf } from '../../../src/identity/keystone.js';
import { Policy } from '../../../src/identity/policy.js';
import { PROJECT_LABEL, type Container } from '../../../src/objects/host.js';
import { unmeasured, type Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { containerOn, engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin as adminCall, apiBase, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { call, serve, silentLogger } from '../../unit/api/helpers.js';
import { keystoneCloud } from '../identity/keystone-cloud.js';

jest.setTimeout(120_000);

const ks = keystoneCloud();
const user = `projects-${randomUUID()}`;
const tenantAdminName = `ferry-test-tenant-admin-${process.pid}`;
const tenantAdminPassword = `pw-${randomUUID()}`;
const domainMemberName = `ferry-test-domain-member-${process.pid}`;
const domainMemberPassword = `pw-${randomUUID()}`;
const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
let db: Db;
let server: ApiServer;
let base: string;
let identity: KeystoneClient;
let keystoneAdmin: KeystoneClient;
let tokens: { admin: string; demo: string; tenantAdmin: string; domainMember: string };
let mine: Migration; // in the demo project
let theirs: Migration; // in the admin project
let tenantAdminId = '';
let domainMemberId = '';
let demoProject = '';
let adminProject = '';
let demoUser = '';

/** A domain-scoped token (KeystoneClient issues project-scoped ones only). */
async function domainToken(username: string, password: string): Promise<string> {
  const r = await fetch(`${ks.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: username, domain: { id: 'default' }, password } } },
        scope: { domain: { id: 'default' } },
      },
    }),
  });
  expect(r.status).toBe(201);
  return r.headers.get('x-subject-token')!;
}

function record(projectId: string): Migration {
  const now = new Date().toISOString();
  return {
    uuid: randomUUID(),
    mode: 'stop-and-copy',
    container_id: 'e'.repeat(64),
    container_name: 'projects-test',
    source_host: 'compute1',
    dest_host: 'compute2',
    status: 'failed',
    phase: null,
    progress: 5,
    error: 'refused by the pre-checks (projects test record)',
    ...unmeasured(),
    connections_preserved: null,
    abort_requested: false,
    request_id: null,
    user_id: user,
    project_id: projectId,
    created_at: now,
    updated_at: now,
  };
}

beforeAll(async () => {
  await transport.connect();
  const conf = defaultConfig();
  conf.keystone_authtoken.auth_url = ks.authUrl;
  conf.keystone_authtoken.www_authenticate_uri = ks.authUrl;
  conf.keystone_authtoken.username = ks.service.username;
  conf.keystone_authtoken.password = ks.service.password;
  conf.keystone_authtoken.project_name = ks.service.project_name;
  identity = new KeystoneClient(keystoneOptionsFromConf(conf, { logger: silentLogger }));
  keystoneAdmin = new KeystoneClient({ authUrl: ks.authUrl, credentials: ks.admin });

  // A tenant's own administrator: the admin role, but in the demo project.
  demoProject = ((await keystoneAdmin.request('GET', '/projects?name=demo')).json as { projects: { id: string }[] }).projects[0].id;
  const adminRole = ((await keystoneAdmin.request('GET', '/roles?name=admin')).json as { roles: { id: string }[] }).roles[0].id;
  const made = await keystoneAdmin.request('POST', '/users', {
    body: { user: { name: tenantAdminName, password: tenantAdminPassword, domain_id: 'default', default_project_id: demoProject } },
  });
  expect(made.status).toBe(201);
  tenantAdminId = (made.json as { user: { id: string } }).user.id;
  expect((await keystoneAdmin.request('PUT', `/projects/${demoProject}/users/${tenantAdminId}/roles/${adminRole}`)).status).toBe(204);
  // A member of the Default domain itself: a domain-scoped token, with a role but no project.
  const memberRole = ((await keystoneAdmin.request('GET', '/roles?name=member')).json as { roles: { id: string }[] }).roles[0].id;
  const dm = await keystoneAdmin.request('POST', '/users', {
    body: { user: { name: domainMemberName, password: domainMemberPassword, domain_id: 'default' } },
  });
  expect(dm.status).toBe(201);
  domainMemberId = (dm.json as { user: { id: string } }).user.id;
  expect((await keystoneAdmin.request('PUT', `/domains/default/users/${domainMemberId}/roles/${memberRole}`)).status).toBe(204);

  tokens = {
    admin: (await identity.issueToken(ks.admin, { catalog: false })).token,
    demo: (await identity.issueToken(ks.demo, { catalog: false })).token,
    tenantAdmin: (await identity.issueToken({ ...ks.demo, username: tenantAdminName, password: tenantAdminPassword }, { catalog: false })).token,
    domainMember: await domainToken(domainMemberName, domainMemberPassword),
  };
  const adminInfo = (await identity.validateToken(tokens.admin))!;
  const demoInfo = (await identity.validateToken(tokens.demo))!;
  expect(demoInfo.project_id).toBe(demoProject);
  adminProject = adminInfo.project_id!;
  demoUser = demoInfo.user_id!;
  const domainInfo = (await identity.validateToken(tokens.domainMember))!;
  expect([domainInfo.project_id, domainInfo.domain_id]).toEqual([null, 'default']);
  expect(domainInfo.roles).toContain('member');

  db = openDatabase(loadConfig([cloud().config_files.controller]).database.connection);
  const repo = new SqliteRepository(db);
  mine = record(demoInfo.project_id!);
  theirs = record(adminInfo.project_id!);
  await repo.createMigration(mine);
  await repo.createMigration(theirs);

  const policy = Policy.fromRules({
    'ferry:migration:get_all': 'rule:admin_api or role:member',
    'ferry:migration:get': 'rule:admin_api or project_id:%(project_id)s',
    'ferry:migration:delete': 'rule:admin_api or project_id:%(project_id)s',
    'ferry:migration:create': 'rule:admin_api or role:member',
    'ferry:container:get_all': 'rule:admin_api or role:member',
  });
  server = await serve(createApp({ conf, identity, policy, conductor: new ConductorRPCAPI(transport), logger: silentLogger }));
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  db?.prepare('DELETE FROM migrations WHERE user_id = ?').run(user);
  db?.close();
  if (tenantAdminId) await keystoneAdmin.request('DELETE', `/users/${tenantAdminId}`);
  if (domainMemberId) await keystoneAdmin.request('DELETE', `/users/${domainMemberId}`);
  await transport.close();
});

describe("members allowed to read their project's migrations", () => {
  it("list only their project's, even without a project filter; another project's is refused", async () => {
    const r = await call(base, 'GET', `/v1/migrations?user_id=${user}`, { token: tokens.demo });
    expect(r.status).toBe(200);
    expect(r.json.migrations.map((m: Migration) => m.uuid)).toEqual([mine.uuid]);
    const other = await call(base, 'GET', `/v1/migrations?project_id=${theirs.project_id}`, { token: tokens.demo });
    expect(other.status).toBe(403);
    const admin = await call(base, 'GET', `/v1/migrations?user_id=${user}`, { token: tokens.admin });
    expect(admin.json.migrations.map((m: Migration) => m.uuid).sort()).toEqual([mine.uuid, theirs.uuid].sort());
  });

  it("read their own; another project's is 404 with the same answer as a migration that does not exist", async () => {
    expect((await call(base, 'GET', `/v1/migrations/${mine.uuid}`, { token: tokens.demo })).status).toBe(200);
    const missing = randomUUID();
    for (const method of ['GET', 'DELETE']) {
      const a = await call(base, method, `/v1/migrations/${theirs.uuid}`, { token: tokens.demo });
      const b = await call(base, method, `/v1/migrations/${missing}`, { token: tokens.demo });
      expect([method, a.status, b.status]).toEqual([method, 404, 404]);
      expect(a.json.error.message.replace(theirs.uuid, 'ID')).toBe(b.json.error.message.replace(missing, 'ID'));
    }
    // The admin sees it.
    expect((await call(base, 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.admin })).status).toBe(200);
  });
});

describe("the dev cloud's ferry-api with the default policy", () => {
  const real = () => apiBase();

  it("a member gets the same 404 for another project's migration as for none; aborting is 403 either way", async () => {
    const a = await call(real(), 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.demo });
    const missing = randomUUID();
    const b = await call(real(), 'GET', `/v1/migrations/${missing}`, { token: tokens.demo });
    expect([a.status, b.status]).toEqual([404, 404]);
    expect(a.json.error.message.replace(theirs.uuid, 'ID')).toBe(b.json.error.message.replace(missing, 'ID'));
    expect((await call(real(), 'GET', `/v1/migrations/${mine.uuid}`, { token: tokens.demo })).status).toBe(200);
    const d = await call(real(), 'DELETE', `/v1/migrations/${theirs.uuid}`, { token: tokens.demo });
    expect(d.status).toBe(403);
  });

  it('the admin role in a tenant project is not a cloud administrator (its reads stay in its project); in the admin project it is', async () => {
    for (const [method, path] of [
      ['GET', '/v1/hosts'],
      ['POST', '/v1/containers/anything/migrate'],
      ['DELETE', `/v1/migrations/${mine.uuid}`],
    ] as const) {
      const r = await call(real(), method, path, { token: tokens.tenantAdmin, body: method === 'POST' ? {} : undefined });
      expect([method, path, r.status]).toEqual([method, path, 403]);
    }
    // Keystone's admin role implies reader: the tenant's admin reads its own project, like any reader.
    const listed = await call(real(), 'GET', `/v1/migrations?user_id=${user}`, { token: tokens.tenantAdmin });
    expect(listed.json.migrations.map((m: Migration) => m.uuid)).toEqual([mine.uuid]);
    expect((await call(real(), 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.tenantAdmin })).status).toBe(404);
    expect((await call(real(), 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.admin })).status).toBe(200);
  });
});

describe("containers carry their creator's project (the org.openstack.project_id label)", () => {
  const c1 = engine('compute1');
  const c2 = engine('compute2');
  const mine = uniqueName('proj-mine'); // labelled with the demo project
  const theirs = uniqueName('proj-theirs'); // labelled with the admin project
  const plain = uniqueName('proj-plain'); // no label
  let mineMigration = '';

  const listed = async (token: string) => {
    const r = await call(base, 'GET', '/v1/containers', { token });
    expect(r.status).toBe(200);
    return (r.json.containers as Container[]).filter((c) => [mine, theirs, plain].includes(c.name));
  };

  beforeAll(async () => {
    for (const [name, project] of [
      [mine, demoProject],
      [theirs, adminProject],
      [plain, null],
    ] as const) {
      const ct = await c1.createContainer({
        Image: 'ferry/counter:latest',
        name,
        Env: ['COUNTER_INTERVAL=0.2'],
        Labels: project ? { [PROJECT_LABEL]: project } : {},
      });
      await ct.start();
    }
    for (const name of [mine, theirs, plain]) await waitKnown(name, 'compute1');
  });

  afterAll(async () => {
    for (const n of [mine, theirs, plain]) {
      await removeQuietly(c1, n);
      await removeQuietly(c2, n);
    }
  });

  it("a member lists and migrates their project's container; another project's or an unlabelled one is 404 like a missing one", async () => {
    expect((await listed(tokens.demo)).map((c) => [c.name, c.project_id])).toEqual([[mine, demoProject]]);
    expect((await listed(tokens.admin)).map((c) => [c.name, c.project_id ?? null]).sort()).toEqual(
      [
        [mine, demoProject],
        [theirs, adminProject],
        [plain, null],
      ].sort(),
    );

    const missing = uniqueName('proj-missing');
    const gone = await call(base, 'POST', `/v1/containers/${missing}/migrate`, { token: tokens.demo, body: {} });
    expect(gone.status).toBe(404);
    for (const name of [theirs, plain]) {
      const r = await call(base, 'POST', `/v1/containers/${name}/migrate`, { token: tokens.demo, body: {} });
      expect([name, r.status, r.json.error.ferry_code]).toEqual([name, 404, gone.json.error.ferry_code]);
      expect(r.json.error.message.replace(name, 'NAME')).toBe(gone.json.error.message.replace(missing, 'NAME'));
    }
    expect(await containerOn(c1, theirs)).toMatchObject({ State: 'running' });
    expect(await containerOn(c1, plain)).toMatchObject({ State: 'running' });

    const r = await call(base, 'POST', `/v1/containers/${mine}/migrate`, { token: tokens.demo, body: {} });
    expect(r.status).toBe(202);
    expect(r.json.migration).toMatchObject({ container_name: mine, project_id: demoProject, user_id: demoUser });
    mineMigration = r.json.migration.uuid;
    expect((await waitMigration(mineMigration)).status).toBe('completed');
    // The label moved with it: on the target it is still the demo project's.
    const moved = await containerOn(c2, mine);
    expect(moved?.State).toBe('running');
    expect(moved?.Labels[PROJECT_LABEL]).toBe(demoProject);
    await waitKnown(mine, 'compute2');
    expect((await listed(tokens.demo)).map((c) => [c.name, c.host, c.project_id])).toEqual([[mine, 'compute2', demoProject]]);
    const theirList = await call(base, 'GET', `/v1/migrations?container=${mine}`, { token: tokens.demo });
    expect(theirList.json.migrations.map((m: Migration) => m.uuid)).toEqual([mineMigration]);
  });

  it("an admin's migration of a member's container is that project's to see; of an unlabelled one, the admin's own", async () => {
    expect(mineMigration).not.toBe('');
    const back = await adminCall<{ migration: Migration }>('POST', `/v1/containers/${mine}/migrate`, { host: 'compute1' });
    expect(back.status).toBe(202);
    const adminUser = (await identity.validateToken(tokens.admin))!.user_id;
    expect(back.body.migration).toMatchObject({ project_id: demoProject, user_id: adminUser });
    const other = await adminCall<{ migration: Migration }>('POST', `/v1/containers/${plain}/migrate`, {});
    expect(other.status).toBe(202);
    expect(other.body.migration).toMatchObject({ project_id: adminProject });
    for (const m of [back.body.migration, other.body.migration]) expect((await waitMigration(m.uuid)).status).toBe('completed');
    expect((await call(base, 'GET', `/v1/migrations/${back.body.migration.uuid}`, { token: tokens.demo })).status).toBe(200);
    expect((await call(base, 'GET', `/v1/migrations/${other.body.migration.uuid}`, { token: tokens.demo })).status).toBe(404);
  });

  it("a token without a project (domain-scoped) reaches nothing: 403, never every project's", async () => {
    for (const [method, path] of [
      ['GET', '/v1/migrations'],
      ['GET', `/v1/migrations/${mineMigration}`],
      ['GET', '/v1/containers'],
      ['POST', `/v1/containers/${mine}/migrate`],
    ] as const) {
      const r = await call(base, method, path, { token: tokens.domainMember, body: method === 'POST' ? {} : undefined });
      expect([method, path, r.status, r.json.error.ferry_code]).toEqual([method, path, 403, 'project_scope_required']);
    }
  });
});
