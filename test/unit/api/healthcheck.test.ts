/**
 * /healthcheck as oslo.middleware answers it: plain OK for anyone, 503 DISABLED BY FILE while
 * the operator's file exists (read at each request), and the JSON detail only for an admin
 * token or, with [healthcheck] detailed on, for `?detail`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import type { ApiServer } from '../../../src/api/server.js';
import { packageVersion } from '../../../src/common/gmr.js';
import { defaultConfig, type FerryConfig } from '../../../src/conf/index.js';
import { Policy } from '../../../src/identity/policy.js';
import { FakeConductor } from './fake-conductor.js';
import { ADMIN_TOKEN, call, DEMO_TOKEN, FakeIdentity, serve, silentLogger } from './helpers.js';

let dir: string;
let flag: string;
let conf: FerryConfig;
let identity: FakeIdentity;
let server: ApiServer;
let alive = true;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-hc-'));
  flag = path.join(dir, 'disabled');
  conf = defaultConfig();
  identity = new FakeIdentity();
  const app = createApp({ conf, identity, policy: Policy.fromRules({}), conductor: new FakeConductor(), logger: silentLogger, healthcheck: () => alive });
  server = await serve(app);
});

afterAll(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  fs.rmSync(flag, { force: true });
  conf.healthcheck.disable_by_file_path = flag;
  conf.healthcheck.detailed = false;
  identity.unavailable = false;
  alive = true;
});

describe('/healthcheck', () => {
  it('answers OK, and DISABLED BY FILE (503) while the file exists', async () => {
    expect(await call(server.url, 'GET', '/healthcheck')).toMatchObject({ status: 200, text: 'OK' });
    fs.writeFileSync(flag, '');
    const r = await call(server.url, 'GET', '/healthcheck');
    expect(r).toMatchObject({ status: 503, text: 'DISABLED BY FILE' });
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    fs.rmSync(flag);
    expect((await call(server.url, 'GET', '/healthcheck')).status).toBe(200);
  });

  it('a path changed at run time (SIGHUP) is the one checked; an empty path never disables', async () => {
    fs.writeFileSync(flag, '');
    conf.healthcheck.disable_by_file_path = '';
    expect((await call(server.url, 'GET', '/healthcheck')).status).toBe(200);
    conf.healthcheck.disable_by_file_path = flag;
    expect((await call(server.url, 'GET', '/healthcheck')).status).toBe(503);
  });

  it('gives an admin token the detail: checks, versions, pid', async () => {
    fs.writeFileSync(flag, '');
    const r = await call(server.url, 'GET', '/healthcheck', { token: ADMIN_TOKEN });
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({
      detailed: true,
      available: false,
      reasons: [
        { class: 'DisableByFileHealthcheck', reason: 'DISABLED BY FILE', details: flag },
        { class: 'ServiceHealthcheck', reason: 'not checked' },
      ],
      service: 'ferry-api',
      version: packageVersion(),
      node_version: process.version,
      pid: process.pid,
    });
    fs.rmSync(flag);
    alive = false;
    const down = await call(server.url, 'GET', '/healthcheck?detail', { token: ADMIN_TOKEN });
    expect(down.status).toBe(503);
    expect(down.json.reasons).toContainEqual({ class: 'ServiceHealthcheck', reason: 'FAILED', details: 'the service check failed' });
  });

  it('stays plain for no token, a non-admin, a bad token or Keystone down, even with ?detail', async () => {
    for (const opts of [{}, { token: DEMO_TOKEN }, { token: 'not-a-token' }]) {
      expect(await call(server.url, 'GET', '/healthcheck?detail', opts)).toMatchObject({ status: 200, text: 'OK' });
    }
    identity.unavailable = true;
    expect(await call(server.url, 'GET', '/healthcheck', { token: ADMIN_TOKEN })).toMatchObject({ status: 200, text: 'OK' });
  });

  it('with [healthcheck] detailed, ?detail gives the detail to anyone', async () => {
    conf.healthcheck.detailed = true;
    const r = await call(server.url, 'GET', '/healthcheck?detail');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ detailed: true, available: true });
    expect(await call(server.url, 'GET', '/healthcheck')).toMatchObject({ status: 200, text: 'OK' });
  });
});
