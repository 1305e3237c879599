/** Keystone in front of the real ferry-api: tokens, roles and policy, the catalog registration. */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { cloud, repoRoot } from '../../helpers/cloud.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { api, token, waitKnown, waitMigration } from '../../helpers/ferry.js';

const pexec = promisify(execFile);

describe('authentication and policy on the real API', () => {
  const name = uniqueName('auth');
  const c1 = engine('compute1');
  afterAll(async () => {
    await removeQuietly(c1, name);
    await removeQuietly(engine('compute2'), name);
  });

  it('no token -> 401 with WWW-Authenticate pointing at Keystone', async () => {
    const r = await api('GET', '/v1/migrations');
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(`Keystone uri="${cloud().keystone.auth_url}"`);
    expect(r.headers.get('x-openstack-request-id')).toMatch(/^req-/);
  });

  it('an invalid token -> 401', async () => {
    const r = await api('GET', '/v1/hosts', { token: 'gAAAAABnot-a-real-token' });
    expect(r.status).toBe(401);
  });

  it('identity headers sent by the caller are ignored', async () => {
    const r = await api('GET', '/v1/hosts', { headers: { 'X-Identity-Status': 'Confirmed', 'X-Roles': 'admin', 'X-User-Id': 'me' } });
    expect(r.status).toBe(401);
  });

  it('the demo (non-admin) user -> 403 on migrate, on abort and on listing hosts', async () => {
    const demo = await token('demo');
    const m = await api('POST', '/v1/containers/anything/migrate', { token: demo, body: {} });
    expect(m.status).toBe(403);
    expect((m.body as { error: { message: string } }).error.message).toMatch(/ferry:migration:create/);
    expect((await api('GET', '/v1/hosts', { token: demo })).status).toBe(403);
  });

  it('admin -> 202 with Location, and the migration completes', async () => {
    const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name });
    await ct.start();
    await waitKnown(name, 'compute1');
    const r = await api<{ migration: { uuid: string } }>('POST', `/v1/containers/${name}/migrate`, { token: await token('admin'), body: {} });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/v1/migrations/${r.body.migration.uuid}`);
    expect((await waitMigration(r.body.migration.uuid)).status).toBe('completed');
  });

  it('version documents and healthcheck need no token', async () => {
    expect((await api('GET', '/')).status).toBeLessThan(400);
    expect((await api('GET', '/v1')).status).toBe(200);
    expect((await api('GET', '/healthcheck')).status).toBe(200);
  });
});

describe('Keystone catalog registration', () => {
  async function keystone(urlPath: string) {
    const r = await fetch(`${cloud().keystone.auth_url}${urlPath}`, { headers: { 'x-auth-token': await token('admin') } });
    return (await r.json()) as Record<string, { id: string; interface?: string; url?: string; name?: string }[]>;
  }

  it('lists the container-migration service and its three endpoints once, even after registering again', async () => {
    const manage = path.join(repoRoot, 'dist/cmd/manage.js');
    const conf = cloud().config_files.controller;
    for (let i = 0; i < 2; i++) await pexec(process.execPath, [manage, '--config-file', conf, 'register']);
    const services = (await keystone('/services?type=container-migration')).services;
    expect(services).toHaveLength(1);
    expect(services[0].name).toBe('ferry');
    const endpoints = (await keystone(`/endpoints?service_id=${services[0].id}`)).endpoints;
    expect(endpoints.map((e) => e.interface).sort()).toEqual(['admin', 'internal', 'public']);
    for (const e of endpoints) expect(e.url).toBe(cloud().api?.url);
  });
});
