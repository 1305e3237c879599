/**
 * Projects and roles with the development cloud's real Keystone and conductor: a caller who
 * may not see every project sees only their project's migrations, and another project's
 * migration is "not found" exactly like one that does not exist; the admin role counts only
 * in the admin project (Keystone's convention), not in a tenant's own project.
 *
 * The policy overrides that let members read their own migrations are applied to a ferry-api
 * app run in this test (createApp, real Keystone validation, the real conductor over the
 * bus); the default-policy checks go to the dev cloud's own ferry-api service. The records
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
import { unmeasured, type Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { apiBase } from '../../helpers/ferry.js';
import { call, serve, silentLogger } from '../../unit/api/helpers.js';
import { keystoneCloud } from '../identity/keystone-cloud.js';

jest.setTimeout(120_000);

const ks = keystoneCloud();
const user = `projects-${randomUUID()}`;
const tenantAdminName = `ferry-test-tenant-admin-${process.pid}`;
const tenantAdminPassword = `pw-${randomUUID()}`;
const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
let db: Db;
let server: ApiServer;
let base: string;
let identity: KeystoneClient;
let keystoneAdmin: KeystoneClient;
let tokens: { admin: string; demo: string; tenantAdmin: string };
let mine: Migration; // in the demo project
let theirs: Migration; // in the admin project
let tenantAdminId = '';

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
  const demoProject = ((await keystoneAdmin.request('GET', '/projects?name=demo')).json as { projects: { id: string }[] }).projects[0].id;
  const adminRole = ((await keystoneAdmin.request('GET', '/roles?name=admin')).json as { roles: { id: string }[] }).roles[0].id;
  const made = await keystoneAdmin.request('POST', '/users', {
    body: { user: { name: tenantAdminName, password: tenantAdminPassword, domain_id: 'default', default_project_id: demoProject } },
  });
  expect(made.status).toBe(201);
  tenantAdminId = (made.json as { user: { id: string } }).user.id;
  expect((await keystoneAdmin.request('PUT', `/projects/${demoProject}/users/${tenantAdminId}/roles/${adminRole}`)).status).toBe(204);

  tokens = {
    admin: (await identity.issueToken(ks.admin, { catalog: false })).token,
    demo: (await identity.issueToken(ks.demo, { catalog: false })).token,
    tenantAdmin: (await identity.issueToken({ ...ks.demo, username: tenantAdminName, password: tenantAdminPassword }, { catalog: false })).token,
  };
  const adminInfo = (await identity.validateToken(tokens.admin))!;
  const demoInfo = (await identity.validateToken(tokens.demo))!;
  expect(demoInfo.project_id).toBe(demoProject);

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
  });
  server = await serve(createApp({ conf, identity, policy, conductor: new ConductorRPCAPI(transport), logger: silentLogger }));
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  db?.prepare('DELETE FROM migrations WHERE user_id = ?').run(user);
  db?.close();
  if (tenantAdminId) await keystoneAdmin.request('DELETE', `/users/${tenantAdminId}`);
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

  it('a member gets the same 403 whether a migration exists or not', async () => {
    const a = await call(real(), 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.demo });
    const b = await call(real(), 'GET', `/v1/migrations/${randomUUID()}`, { token: tokens.demo });
    expect([a.status, b.status]).toEqual([403, 403]);
    expect(a.json.error.message).toBe(b.json.error.message);
    const d = await call(real(), 'DELETE', `/v1/migrations/${theirs.uuid}`, { token: tokens.demo });
    expect(d.status).toBe(403);
  });

  it('the admin role in a tenant project is not a cloud administrator; in the admin project it is', async () => {
    for (const [method, path] of [
      ['GET', '/v1/migrations'],
      ['GET', `/v1/migrations/${theirs.uuid}`],
      ['GET', '/v1/hosts'],
      ['GET', '/v1/containers'],
      ['POST', '/v1/containers/anything/migrate'],
    ] as const) {
      const r = await call(real(), method, path, { token: tokens.tenantAdmin, body: method === 'POST' ? {} : undefined });
      expect([method, path, r.status]).toEqual([method, path, 403]);
    }
    expect((await call(real(), 'GET', `/v1/migrations/${theirs.uuid}`, { token: tokens.admin })).status).toBe(200);
  });
});
