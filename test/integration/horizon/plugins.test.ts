/**
 * The dashboard and tempest plugins as installed on this machine and run by the development
 * cloud: Horizon is up on 127.0.0.1 with Ferry's panel behind its login, the panel's policy
 * defaults are Ferry's own, and tempest lists the plugin. (The panel in a browser is
 * browser_test.py; the tempest run is scripts/test.sh's tempest step.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import yaml from 'js-yaml';
import { DEFAULT_POLICIES } from '../../../src/identity/policies.js';
import { cloud, repoRoot } from '../../helpers/cloud.js';
import { run } from '../osc/helpers.js';

const POLICY_DEFAULTS = path.join(repoRoot, 'horizon-plugin/ferry_dashboard/conf/default_policies/container-migration.yaml');

describe('Horizon in the development cloud', () => {
  test('status --json lists it on 127.0.0.1, up, and its login page answers', async () => {
    const h = cloud().horizon;
    expect(h).toEqual({ url: 'http://127.0.0.1:8088', state: 'up' });
    const r = await fetch(`${h!.url}/auth/login/`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('id_username');
  });

  test("Ferry's panel is served, behind the login", async () => {
    const r = await fetch(`${cloud().horizon!.url}/admin/container_migrations/`, { redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toMatch(/\/auth\/login\/\?next=\/admin\/container_migrations\//);
  });

  test('the status text names Horizon and the panel', async () => {
    const r = await run(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), 'status']);
    expect(r.stdout).toMatch(/^Horizon\s+up\s+http:\/\/127\.0\.0\.1:8088\s+\(Admin -> Compute -> Container Migrations\)$/m);
  });
});

describe('the panel hides what Ferry would refuse', () => {
  test("its policy defaults are exactly Ferry's rules (src/identity/policies.ts)", () => {
    const rules = yaml.load(fs.readFileSync(POLICY_DEFAULTS, 'utf8')) as { name: string; check_str: string }[];
    // When this fails: `npm run build && node horizon-plugin/tools/policy-defaults.mjs`.
    expect(rules.map((r) => [r.name, r.check_str])).toEqual(DEFAULT_POLICIES.map((p) => [p.name, p.check_str]));
  });

  test('every policy rule the panel checks is one of them', () => {
    const dir = path.join(repoRoot, 'horizon-plugin/ferry_dashboard/content/container_migrations');
    const used = new Set<string>();
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.py'))) {
      for (const m of fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/'(ferry:[a-z_:]+)'/g)) used.add(m[1]);
    }
    expect(used.size).toBeGreaterThanOrEqual(5);
    const known = new Set(DEFAULT_POLICIES.map((p) => p.name));
    for (const rule of used) expect(known).toContain(rule);
  });
});

describe('tempest', () => {
  test('`tempest list-plugins` shows ferry_tempest_plugin', async () => {
    const r = await run('tempest', ['list-plugins']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\|\s*ferry_tests\s*\|\s*ferry_tempest_plugin\.plugin:FerryTempestPlugin\s*\|/);
  });
});
