/** The host-maintenance resources of the REST API (PUT /v1/hosts/{host}, evacuate, evacuations) over a fake conductor. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import type { ApiServer } from '../../../src/api/server.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { Policy } from '../../../src/identity/policy.js';
import { FakeConductor, hostFixture } from './fake-conductor.js';
import { ADMIN_TOKEN, call, DEMO_TOKEN, FakeIdentity, serve, silentLogger } from './helpers.js';

let conductor: FakeConductor;
let server: ApiServer;
let base: string;

beforeAll(async () => {
  conductor = new FakeConductor();
  server = await serve(createApp({ conf: defaultConfig(), identity: new FakeIdentity(), policy: Policy.fromRules({}), conductor, logger: silentLogger }));
  base = server.url;
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  conductor.calls.length = 0;
  conductor.evacuations.clear();
  conductor.hosts = [hostFixture('compute1'), hostFixture('compute2', { containers: 0 })];
});

const admin = (method: string, path: string, body?: unknown) => call(base, method, `/v1${path}`, { token: ADMIN_TOKEN, body });

describe('PUT /v1/hosts/{host}', () => {
  it('disables a host with a reason and enables it again', async () => {
    const r = await admin('PUT', '/hosts/compute2', { status: 'disabled', disabled_reason: 'kernel upgrade' });
    expect(r.status).toBe(200);
    expect(r.json.host).toMatchObject({ name: 'compute2', status: 'disabled', disabled_reason: 'kernel upgrade' });
    expect(conductor.calls[0]).toMatchObject({ method: 'setHostStatus', args: ['compute2', 'disabled', 'kernel upgrade'] });
    const back = await admin('PUT', '/hosts/compute2', { status: 'enabled' });
    expect(back.json.host).toMatchObject({ status: 'enabled', disabled_reason: null });
  });

  it.each([
    [{}, /Invalid field "status": is required/],
    [{ status: 'off' }, /Invalid field "status": must be one of enabled, disabled/],
    [{ status: 'disabled', disabled_reason: 5 }, /Invalid field "disabled_reason": must be a string or null/],
    [{ status: 'disabled', disabled_reason: 'x'.repeat(256) }, /at most 255 characters/],
    [{ status: 'enabled', disabled_reason: 'why' }, /only allowed with "status": "disabled"/],
    [{ status: 'disabled', force: true }, /Unknown field in the request body: "force"/],
    [[], /must be a JSON object/],
  ])('refuses the body %j with a 400 that says why', async (body, message) => {
    const r = await admin('PUT', '/hosts/compute2', body);
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(message);
    expect(conductor.calls).toEqual([]);
  });

  it('an unknown host is 404', async () => {
    const r = await admin('PUT', '/hosts/compute9', { status: 'disabled' });
    expect(r.status).toBe(404);
    expect(r.json.error.ferry_code).toBe('host_not_found');
  });

  it('is admin-only by default (403 for a member)', async () => {
    const r = await call(base, 'PUT', '/v1/hosts/compute2', { token: DEMO_TOKEN, body: { status: 'disabled' } });
    expect(r.status).toBe(403);
    expect(r.json.error.message).toMatch(/ferry:host:update/);
  });

  it('other methods are 405', async () => {
    expect((await admin('DELETE', '/hosts/compute2')).status).toBe(405);
  });
});

describe('POST /v1/hosts/{host}/evacuate and GET /v1/evacuations', () => {
  it('answers 202 with the evacuation and its Location, then shows and lists it', async () => {
    const r = await admin('POST', '/hosts/compute1/evacuate', { max_parallel: 2 });
    expect(r.status).toBe(202);
    const e = r.json.evacuation;
    expect(e).toMatchObject({ host: 'compute1', max_parallel: 2, status: 'running' });
    expect(e.containers.map((c: { container_name: string }) => c.container_name)).toEqual(['counter', 'redis']);
    expect(r.headers.get('location')).toBe(`/v1/evacuations/${e.uuid}`);
    const shown = await admin('GET', `/evacuations/${e.uuid}`);
    expect(shown.status).toBe(200);
    expect(shown.json.evacuation.uuid).toBe(e.uuid);
    const list = await admin('GET', '/evacuations?host=compute1');
    expect(list.json.evacuations.map((x: { uuid: string }) => x.uuid)).toEqual([e.uuid]);
    expect(conductor.calls.find((c) => c.method === 'listEvacuations')?.args[0]).toEqual({ host: 'compute1' });
  });

  it('takes no body as {}', async () => {
    const r = await call(base, 'POST', '/v1/hosts/compute1/evacuate', { token: ADMIN_TOKEN });
    expect(r.status).toBe(202);
  });

  it.each([
    [{ max_parallel: 0 }, /Invalid field "max_parallel": must be an integer from 1 to 64/],
    [{ max_parallel: 65 }, /must be an integer from 1 to 64/],
    [{ max_parallel: 1.5 }, /must be an integer from 1 to 64/],
    [{ max_parallel: '2' }, /must be an integer from 1 to 64/],
    [{ post_copy: 'yes' }, /Invalid field "post_copy": must be true or false/],
    [{ target_host: '' }, /Invalid field "target_host": must not be empty/],
    [{ parallel: 2 }, /Unknown field in the request body: "parallel"/],
  ])('refuses %j with a 400', async (body, message) => {
    const r = await admin('POST', '/hosts/compute1/evacuate', body);
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(message);
    expect(conductor.calls).toEqual([]);
  });

  it('an unknown host is 404; a disabled target is 409 with the reason', async () => {
    expect((await admin('POST', '/hosts/compute9/evacuate', {})).status).toBe(404);
    conductor.hosts[1] = hostFixture('compute2', { status: 'disabled', disabled_reason: 'rack move' });
    const r = await admin('POST', '/hosts/compute1/evacuate', { target_host: 'compute2' });
    expect(r.status).toBe(409);
    expect(r.json.error.message).toMatch(/"compute2" is disabled \(rack move\)/);
  });

  it('an evacuation id that cannot exist is 404; bad filters are 400', async () => {
    const r = await admin('GET', '/evacuations/not-a-uuid');
    expect(r.status).toBe(404);
    expect(r.json.error.ferry_code).toBe('evacuation_not_found');
    expect((await admin('GET', '/evacuations/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const bad = await admin('GET', '/evacuations?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/Invalid query parameter "limit"/);
    expect((await admin('GET', '/evacuations?sort=x')).status).toBe(400);
  });

  it('is admin-only by default', async () => {
    const r = await call(base, 'POST', '/v1/hosts/compute1/evacuate', { token: DEMO_TOKEN, body: {} });
    expect(r.status).toBe(403);
    expect((await call(base, 'GET', '/v1/evacuations', { token: DEMO_TOKEN })).status).toBe(403);
  });
});
