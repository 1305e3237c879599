/**
 * The DevStack functions for Ferry's dashboard and tempest plugin (devstack/lib/ferry-dashboard-tempest),
 * run outside DevStack with its helpers stubbed (test/integration/osc/devstack-harness.sh;
 * iniset really edits the file): the panel's files land in Horizon's tree, tempest.conf gets
 * Ferry's options and tempest itself reads them back through the plugin's own options.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { repoRoot } from '../../helpers/cloud.js';
import { run } from '../osc/helpers.js';

const LIB = 'devstack/lib/ferry-dashboard-tempest';
const HARNESS = 'test/integration/osc/devstack-harness.sh';
// Sourced after the harness's own setup; DevStack's pip_install is stubbed to record its call.
const PRELUDE = `source "$REPO/${LIB}"; pip_install() { record "pip_install $*"; }`;

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-devstack-ui-'));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

async function harness(steps: string[], env: Record<string, string> = {}) {
  const calls = path.join(work, 'calls');
  const r = await run('bash', [HARNESS, PRELUDE, ...steps], { env: { ...process.env, CALLS: calls, WORK: work, ...env } });
  const recorded = fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean) : [];
  return { ...r, calls: recorded, nonIni: recorded.filter((l) => !l.startsWith('iniset ')) };
}

describe('lint', () => {
  test('bash -n and shellcheck pass on the library and plugin.sh that sources it', async () => {
    expect((await run('bash', ['-n', LIB])).code).toBe(0);
    const r = await run('shellcheck', ['-x', LIB, 'devstack/plugin.sh', 'devstack/settings']);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('install_ferry_dashboard', () => {
  test("installs the package and puts the panel's enabled file and settings snippet into Horizon", async () => {
    const horizon = path.join(work, 'horizon');
    fs.mkdirSync(path.join(horizon, 'openstack_dashboard'), { recursive: true });
    const r = await harness(['install_ferry_dashboard'], { HORIZON_DIR: horizon });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.nonIni).toEqual([`pip_install -e ${path.join(repoRoot, 'horizon-plugin')}`]);
    const local = path.join(horizon, 'openstack_dashboard/local');
    const enabled = fs.readFileSync(path.join(local, 'enabled/_2190_admin_container_migrations_panel.py'), 'utf8');
    expect(enabled).toContain("PANEL_DASHBOARD = 'admin'");
    expect(enabled).toContain("PANEL_GROUP = 'compute'");
    expect(fs.existsSync(path.join(local, 'local_settings.d/_90_ferry_dashboard.py'))).toBe(true);
  });

  test('stops with a clear reason when Horizon is not where DevStack says', async () => {
    const r = await harness(['install_ferry_dashboard'], { HORIZON_DIR: path.join(work, 'nowhere') });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/Horizon is not in .*nowhere/);
  });

  test('plugin.sh installs the dashboard only when horizon is enabled', async () => {
    const horizon = path.join(work, 'horizon');
    fs.mkdirSync(path.join(horizon, 'openstack_dashboard'), { recursive: true });
    // install_ferry itself (npm, CRIU) is not what this checks: stub it right after plugin.sh
    // sources lib/ferry (a `source` wrapper), so only the dispatch runs.
    const stubbed = 'source() { builtin source "$@"; if [[ "$1" == */lib/ferry ]]; then install_ferry() { record install_ferry; }; fi; }';
    const on = await harness([stubbed, 'source devstack/plugin.sh stack install'], {
      HORIZON_DIR: horizon,
      ENABLED_SERVICES: 'key,horizon,ferry-api',
    });
    expect(on.code).toBe(0);
    expect(on.nonIni.slice(0, 3)).toEqual(['echo_summary Installing Ferry', 'install_ferry', "echo_summary Installing Ferry's dashboard"]);
    expect(on.nonIni.some((l) => l.startsWith('pip_install -e '))).toBe(true);
    fs.rmSync(path.join(work, 'calls'));
    const off = await harness([stubbed, 'source devstack/plugin.sh stack install'], { HORIZON_DIR: horizon, ENABLED_SERVICES: 'key,ferry-api' });
    expect(off.code).toBe(0);
    expect(off.nonIni.some((l) => l.startsWith('pip_install'))).toBe(false);
  });
});

describe('configure_ferry_tempest', () => {
  test("writes Ferry's tempest options, which tempest reads back through the plugin", async () => {
    const conf = path.join(work, 'tempest.conf');
    const r = await harness(['FERRY_HOST=ctl1 configure_ferry_tempest'], {
      TEMPEST_CONFIG: conf,
      FERRY_TEMPEST_CLIENT_NETNS: 'tenant-client',
      FERRY_FABRIC_NETWORKS: 'provider-a, provider-b',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // tempest's own config loader with the installed plugin's options registered.
    const py = [
      'import sys',
      'from tempest import config',
      'config.CONF.set_config_path(sys.argv[1])',
      'c = config.CONF.container_migration',
      'print(config.CONF.service_available.ferry, c.catalog_type, c.endpoint_type, c.region, c.build_timeout,',
      '      c.docker_hosts, c.fabric_network, c.client_netns, c.hosts)',
    ].join('\n');
    const read = await run('/usr/bin/python3', ['-c', py, conf]);
    expect(read.stderr).not.toMatch(/Traceback/);
    expect(read.stdout.trim().split('\n').pop()).toBe(
      "True container-migration publicURL RegionTwo 300 {'ctl1': 'unix:///var/run/docker.sock'} provider-a tenant-client []",
    );
  });

  test('plugin.sh runs it at test-config only when tempest is enabled', async () => {
    const conf = path.join(work, 'tempest.conf');
    const all = 'key,rabbit,ferry-api,ferry-conductor,ferry-compute';
    const off = await harness(['source devstack/plugin.sh stack test-config'], { TEMPEST_CONFIG: conf, ENABLED_SERVICES: all });
    expect(off.code).toBe(0);
    expect(fs.existsSync(conf)).toBe(false);
    const on = await harness(['source devstack/plugin.sh stack test-config'], { TEMPEST_CONFIG: conf, ENABLED_SERVICES: `${all},tempest` });
    expect(on.code).toBe(0);
    expect(on.nonIni).toContain('echo_summary Configuring tempest for Ferry');
    expect(fs.readFileSync(conf, 'utf8')).toMatch(/\[service_available\]\s*\nferry = True/);
  });

  test('settings add the tempest plugin to TEMPEST_PLUGINS', async () => {
    const r = await harness(['echo "$TEMPEST_PLUGINS"']);
    expect(r.stdout.trim()).toBe(`${path.join(repoRoot, 'tempest-plugin')}`);
  });
});
