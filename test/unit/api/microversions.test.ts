/** API microversions: the header, the range (400/406, latest, Vary) and each gated field and route at N-1 vs N. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import { MAX_VERSION, MICROVERSIONS, MIN_VERSION, requestedVersion } from '../../../src/api/microversions.js';
import type { ApiServer } from '../../../src/api/server.js';
import { ApiVersionNotAvailable, InvalidApiVersion } from '../../../src/common/errors.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { Policy } from '../../../src/identity/policy.js';
import { FakeConductor, hostFixture } from './fake-conductor.js';
import { ADMIN_TOKEN, call, FakeIdentity, serve, silentLogger } from './helpers.js';

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
  conductor.migrations.clear();
  conductor.evacuations.clear();
  conductor.hosts = [
    hostFixture('compute1', {
      memory_used_bytes: 1,
      memory_total_bytes: 2,
      modes: { post_copy: { ok: true, reason: null }, pre_copy: { ok: true, reason: null } },
    }),
    hostFixture('compute2', { containers: 0 }),
  ];
});

/** A request at `version` (null: no header). */
const at = (version: string | null, method: string, path: string, body?: unknown) =>
  call(base, method, `/v1${path}`, { token: ADMIN_TOKEN, body, apiVersion: version });

describe('the history', () => {
  it('starts at 1.0, goes up one minor version at a time and says what each adds', () => {
    expect(MIN_VERSION).toBe('1.0');
    MICROVERSIONS.forEach((m, i) => {
      expect(m.version).toBe(`1.${i}`);
      expect(m.adds.length).toBeGreaterThan(20);
    });
    expect(MAX_VERSION).toBe(MICROVERSIONS[MICROVERSIONS.length - 1].version);
  });
});

describe('the header', () => {
  it.each([
    [undefined, '1.0'],
    ['container-migration 1.2', '1.2'],
    ['Container-Migration   1.3', '1.3'],
    ['container-migration latest', MAX_VERSION],
    ['container-migration LATEST', MAX_VERSION],
    ['compute 2.90', '1.0'],
    ['compute 2.90, container-migration 1.1', '1.1'],
  ])('%j asks for %s', (header, version) => {
    const v = requestedVersion(header);
    expect(`${v.major}.${v.minor}`).toBe(version);
  });

  it.each([
    'container-migration',
    'container-migration 1',
    'container-migration 1.x',
    'container-migration 01.1',
    'container-migration 1.1 1.2',
    'container-migration 1.1, container-migration 1.2',
  ])('%j is malformed (InvalidApiVersion)', (header) => {
    expect(() => requestedVersion(header)).toThrow(InvalidApiVersion);
  });

  it.each(['container-migration 0.9', 'container-migration 2.0', 'container-migration 1.99'])('%j is outside the range (ApiVersionNotAvailable)', (header) => {
    expect(() => requestedVersion(header)).toThrow(ApiVersionNotAvailable);
  });

  it('no header is 1.0: the response says so, with Vary', async () => {
    const r = await at(null, 'GET', '/hosts');
    expect(r.status).toBe(200);
    expect(r.headers.get('openstack-api-version')).toBe('container-migration 1.0');
    expect(r.headers.get('vary')).toBe('OpenStack-API-Version');
  });

  it('latest is answered with the newest version', async () => {
    const r = await at('latest', 'GET', '/hosts');
    expect(r.headers.get('openstack-api-version')).toBe(`container-migration ${MAX_VERSION}`);
  });

  it('a version outside the range is 406 naming the range, and nothing is asked of the conductor', async () => {
    const r = await at('1.99', 'GET', '/hosts');
    expect(r.status).toBe(406);
    expect(r.json.error).toMatchObject({ code: 406, ferry_code: 'api_version_not_available' });
    expect(r.json.error.message).toBe(`Version 1.99 of the container-migration API is not supported: this server supports 1.0 to ${MAX_VERSION}.`);
    expect(r.headers.get('vary')).toBe('OpenStack-API-Version');
    expect(conductor.calls).toEqual([]);
    expect((await at('2.0', 'GET', '/hosts')).status).toBe(406);
  });

  it('a malformed version is 400 saying what to send', async () => {
    const r = await at('one', 'GET', '/hosts');
    expect(r.status).toBe(400);
    expect(r.json.error.ferry_code).toBe('invalid_api_version');
    expect(r.json.error.message).toMatch(/Invalid microversion "one" .* X\.Y .* "latest"/);
  });

  it('the version documents carry min_version and version (the maximum)', async () => {
    for (const path of ['/', '/v1']) {
      const r = await call(base, 'GET', path, { apiVersion: null });
      const v = path === '/' ? r.json.versions[0] : r.json.version;
      expect(v).toMatchObject({ id: 'v1.0', min_version: MIN_VERSION, version: MAX_VERSION });
    }
  });
});

describe('1.1: paging', () => {
  it('GET /migrations?limit= is an unknown parameter at 1.0 and pages at 1.1', async () => {
    for (let i = 0; i < 3; i++) conductor.add({ container_name: `c${i}` });
    const old = await at('1.0', 'GET', '/migrations?limit=1');
    expect(old.status).toBe(400);
    expect(old.json.error.message).toMatch(/Unknown query parameter: "limit" .*"limit" needs microversion 1\.1 or later/);
    const now = await at('1.1', 'GET', '/migrations?limit=1');
    expect(now.status).toBe(200);
    expect(now.json.migrations).toHaveLength(1);
    expect(now.json.migrations_links[0].rel).toBe('next');
  });

  it('a list longer than max_limit has no next link at 1.0', async () => {
    const conf = defaultConfig();
    conf.api.max_limit = 2;
    const small = await serve(createApp({ conf, identity: new FakeIdentity(), policy: Policy.fromRules({}), conductor, logger: silentLogger }));
    try {
      for (let i = 0; i < 3; i++) conductor.add({ container_name: `c${i}` });
      const old = await call(small.url, 'GET', '/v1/migrations', { token: ADMIN_TOKEN, apiVersion: '1.0' });
      expect(old.json.migrations).toHaveLength(2);
      expect(old.json.migrations_links).toBeUndefined();
      const now = await call(small.url, 'GET', '/v1/migrations', { token: ADMIN_TOKEN, apiVersion: '1.1' });
      expect(now.json.migrations).toHaveLength(2);
      expect(now.json.migrations_links).toHaveLength(1);
    } finally {
      await small.close();
    }
  });

  it('GET /containers?limit= is refused at 1.0 and pages at 1.1', async () => {
    expect((await at('1.0', 'GET', '/containers?limit=1')).status).toBe(400);
    const now = await at('1.1', 'GET', '/containers?limit=1');
    expect(now.status).toBe(200);
    expect(now.json.containers).toHaveLength(1);
    expect(now.json.containers_links).toHaveLength(1);
  });
});

describe('1.2: host maintenance', () => {
  it.each([
    ['PUT', '/hosts/compute2', { status: 'disabled' }],
    ['POST', '/hosts/compute2/evacuate', {}],
    ['GET', '/evacuations', undefined],
    ['GET', '/evacuations/8d7c5a3e-1c5a-4d7e-9b0a-0e6f4b9a1c2d', undefined],
  ])('%s %s is 404 at 1.1 and exists at 1.2', async (method, path, body) => {
    const old = await at('1.1', method, path, body);
    expect(old.status).toBe(404);
    expect(old.json.error.message).toMatch(/exists from microversion 1\.2 \(this request is at 1\.1/);
    expect(conductor.calls).toEqual([]);
    const now = await at('1.2', method, path, body);
    expect(now.status).not.toBe(405);
    expect(conductor.calls.length).toBe(1);
  });

  it('a wrong method on a 1.2 route is 404 at 1.1, not 405', async () => {
    expect((await at('1.1', 'GET', '/hosts/compute2')).status).toBe(404);
    expect((await at('1.2', 'GET', '/hosts/compute2')).status).toBe(405);
  });

  it('hosts show status and disabled_reason from 1.2', async () => {
    const old = (await at('1.1', 'GET', '/hosts')).json.hosts[0];
    expect(old).not.toHaveProperty('status');
    expect(old).not.toHaveProperty('disabled_reason');
    expect((await at('1.2', 'GET', '/hosts')).json.hosts[0]).toMatchObject({ status: 'enabled', disabled_reason: null });
  });
});

describe('1.5: disk pre-copy counters', () => {
  it('migrations show disk_rounds, disk_live_bytes and disk_frozen_bytes from 1.5', async () => {
    const m = conductor.add({ container_name: 'counter', disk_rounds: 2, disk_live_bytes: 1000, disk_frozen_bytes: 10 });
    for (const path of [`/migrations/${m.uuid}`, '/migrations']) {
      for (const v of ['1.0', '1.4']) {
        const r = await at(v, 'GET', path);
        const old = r.json.migration ?? r.json.migrations[0];
        expect(old.uuid).toBe(m.uuid);
        for (const k of ['disk_rounds', 'disk_live_bytes', 'disk_frozen_bytes']) expect(old).not.toHaveProperty(k);
      }
      const r5 = await at('1.5', 'GET', path);
      expect(r5.json.migration ?? r5.json.migrations[0]).toMatchObject({ mode: 'stop-and-copy', disk_rounds: 2, disk_live_bytes: 1000, disk_frozen_bytes: 10 });
    }
  });
});

describe('1.3: memory counters', () => {
  it('migrations show mode and the memory counters from 1.3', async () => {
    const m = conductor.add({ container_name: 'counter' });
    for (const path of [`/migrations/${m.uuid}`, '/migrations']) {
      const r = await at('1.2', 'GET', path);
      const old = r.json.migration ?? r.json.migrations[0];
      expect(old.uuid).toBe(m.uuid);
      for (const k of ['mode', 'memory_total_bytes', 'memory_processed_bytes', 'memory_remaining_bytes']) expect(old).not.toHaveProperty(k);
      expect(old).toHaveProperty('memory_bytes');
      const r3 = await at('1.3', 'GET', path);
      expect(r3.json.migration ?? r3.json.migrations[0]).toMatchObject({ mode: 'stop-and-copy', memory_total_bytes: null });
    }
  });

  it('the migrate answer follows the same rule', async () => {
    const old = await at('1.0', 'POST', '/containers/counter/migrate', {});
    expect(old.status).toBe(202);
    expect(old.json.migration).not.toHaveProperty('mode');
    expect((await at('1.3', 'POST', '/containers/counter/migrate', {})).json.migration.mode).toBe('stop-and-copy');
  });

  it('hosts show memory_used_bytes and memory_total_bytes from 1.3', async () => {
    expect((await at('1.2', 'GET', '/hosts')).json.hosts[0]).not.toHaveProperty('memory_total_bytes');
    expect((await at('1.3', 'GET', '/hosts')).json.hosts[0]).toMatchObject({ memory_used_bytes: 1, memory_total_bytes: 2 });
  });
});

describe('1.4: post-copy', () => {
  it('"post_copy" in the migrate body is an unknown field at 1.3 and accepted at 1.4', async () => {
    const old = await at('1.3', 'POST', '/containers/counter/migrate', { post_copy: true });
    expect(old.status).toBe(400);
    expect(old.json.error.message).toBe('Unknown field in the request body: "post_copy" (allowed: host; "post_copy" needs microversion 1.4 or later)');
    expect(conductor.calls).toEqual([]);
    const now = await at('1.4', 'POST', '/containers/counter/migrate', { post_copy: true });
    expect(now.status).toBe(202);
    expect(conductor.calls[0]).toMatchObject({ method: 'migrateContainer', args: ['counter', null, { post_copy: true }] });
  });

  it('"post_copy" in the evacuate body is refused at 1.3; evacuations show post_copy from 1.4', async () => {
    const old = await at('1.3', 'POST', '/hosts/compute1/evacuate', { post_copy: true });
    expect(old.status).toBe(400);
    expect(old.json.error.message).toMatch(/"post_copy" needs microversion 1\.4/);
    const made = await at('1.3', 'POST', '/hosts/compute1/evacuate', {});
    expect(made.status).toBe(202);
    expect(made.json.evacuation).not.toHaveProperty('post_copy');
    expect((await at('1.4', 'GET', `/evacuations/${made.json.evacuation.uuid}`)).json.evacuation).toHaveProperty('post_copy', false);
  });

  it('force-complete is 404 at 1.3 and an action at 1.4', async () => {
    const m = conductor.add({ container_name: 'counter', status: 'running' });
    const old = await at('1.3', 'POST', `/migrations/${m.uuid}/action`, { force_complete: null });
    expect(old.status).toBe(404);
    expect(conductor.calls).toEqual([]);
    const now = await at('1.4', 'POST', `/migrations/${m.uuid}/action`, { force_complete: null });
    expect(now.status).toBe(202);
  });

  it('hosts show modes from 1.4', async () => {
    expect((await at('1.3', 'GET', '/hosts')).json.hosts[0]).not.toHaveProperty('modes');
    expect((await at('1.4', 'GET', '/hosts')).json.hosts[0].modes).toMatchObject({ post_copy: { ok: true } });
  });
});
