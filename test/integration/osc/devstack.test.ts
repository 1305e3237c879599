/**
 * The DevStack plugin: `bash -n` and shellcheck on every file, and its functions run outside
 * DevStack (devstack-harness.sh stubs DevStack's helpers; iniset really edits the file). The
 * ferry.conf it writes is loaded with Ferry's own config loader.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { loadConfig } from '../../../src/conf/index.js';
import { repoRoot } from '../../helpers/cloud.js';
import { run } from './helpers.js';

const FILES = ['devstack/plugin.sh', 'devstack/settings', 'devstack/lib/ferry'];
const HARNESS = 'test/integration/osc/devstack-harness.sh';

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-devstack-'));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** Run steps in the harness; returns the run and the recorded DevStack helper calls. */
async function harness(steps: string[], env: Record<string, string> = {}) {
  const calls = path.join(work, 'calls');
  const r = await run('bash', [HARNESS, ...steps], { env: { ...process.env, CALLS: calls, WORK: work, ...env } });
  const recorded = fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean) : [];
  return { ...r, calls: recorded, nonIni: recorded.filter((l) => !l.startsWith('iniset ')) };
}

const conf = () => path.join(work, 'etc/ferry/ferry.conf');

describe('lint', () => {
  test.each(FILES)('bash -n %s', async (f) => {
    const r = await run('bash', ['-n', f]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  test('shellcheck passes on every DevStack file and the harness', async () => {
    const r = await run('shellcheck', ['-x', ...FILES, HARNESS]);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(0);
  });

  test('shellcheck would catch a defect (the check is real)', async () => {
    const bad = path.join(work, 'bad.sh');
    fs.writeFileSync(bad, '#!/bin/bash\nrm -rf $1/*\n');
    expect((await run('shellcheck', [bad])).code).not.toBe(0);
  });
});

describe('configure_ferry', () => {
  test('writes a ferry.conf from DevStack settings that Ferry itself loads', async () => {
    const r = await harness(['configure_ferry']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = loadConfig([conf()]);
    expect(c.DEFAULT.transport_url).toBe('rabbit://stackrabbit:rabbit-secret@192.0.2.10:5672/');
    expect(c.DEFAULT.control_exchange).toBe('ferry');
    expect(c.DEFAULT.state_path).toBe(path.join(work, 'data/ferry'));
    expect(c.keystone_authtoken).toMatchObject({
      auth_url: 'http://192.0.2.10/identity',
      www_authenticate_uri: 'http://192.0.2.10/identity',
      username: 'ferry',
      password: 'devstack-service-secret',
      project_name: 'service',
      region_name: 'RegionTwo',
    });
    expect(c.api).toMatchObject({ bind_port: 9517, public_endpoint: 'http://192.0.2.10:9517/v1', region_name: 'RegionTwo', register_endpoints: false });
    expect(c.database.connection).toBe(`sqlite:///${work}/data/ferry/ferry.sqlite`);
    expect(c.compute).toMatchObject({ migration_bind_host: '192.0.2.11', migration_port: 9518, docker_url: 'unix:///var/run/docker.sock' });
    // The data channel's mutual TLS: a CA and this node's certificate, named after its host.
    const pki = path.join(work, 'etc/ferry/pki');
    expect(c.compute).toMatchObject({ data_channel_ca_file: path.join(pki, 'ca.crt'), data_channel_insecure: false });
    const cert = new crypto.X509Certificate(fs.readFileSync(c.compute.data_channel_cert_file));
    expect(cert.subject).toBe(`CN=${c.DEFAULT.host}`);
    expect(cert.subjectAltName).toBe(`DNS:${c.DEFAULT.host}`);
    expect(cert.verify(new crypto.X509Certificate(fs.readFileSync(c.compute.data_channel_ca_file)).publicKey)).toBe(true);
    expect(fs.statSync(c.compute.data_channel_key_file).mode & 0o077).toBe(0);
    expect(c.oslo_messaging_notifications.driver).toBe('messagingv2');
    // DevStack's authtoken helper was used, and what Ferry does not read was taken out again.
    expect(r.nonIni).toContain(`configure_keystone_authtoken_middleware ${conf()} ferry`);
    expect(
      r.nonIni
        .filter((l) => l.startsWith('inidelete'))
        .map((l) => l.split(' ').pop())
        .sort(),
    ).toEqual(['cafile', 'interface', 'memcached_servers']);
    expect(fs.existsSync(path.join(work, 'etc/ferry/policy.yaml'))).toBe(true);
  });

  test('is idempotent: a second run gives the same file', async () => {
    await harness(['configure_ferry']);
    const first = fs.readFileSync(conf(), 'utf8');
    await harness(['configure_ferry']);
    expect(fs.readFileSync(conf(), 'utf8')).toBe(first);
  });
});

describe('the data channel CA (issue 20 hole 7): only the signing node holds its key', () => {
  const pkiOf = (root: string) => path.join(root, 'etc/ferry/pki');

  test('the signer issues certificates for its peers without the CA key; a peer stacks with them and never holds the key', async () => {
    const signer = await harness(['configure_ferry'], { FERRY_HOST: 'node-a', FERRY_DATA_CHANNEL_PEERS: 'node-b node-c' });
    expect(signer.stderr).toBe('');
    expect(signer.code).toBe(0);
    const pki = pkiOf(work);
    const ca = new crypto.X509Certificate(fs.readFileSync(path.join(pki, 'ca.crt')));
    expect(fs.statSync(path.join(pki, 'ca.key')).mode & 0o077).toBe(0);
    for (const peer of ['node-b', 'node-c']) {
      const issued = path.join(pki, 'issued', peer);
      expect(fs.readdirSync(issued).sort()).toEqual(['ca.crt', `${peer}.crt`, `${peer}.key`]);
      const cert = new crypto.X509Certificate(fs.readFileSync(path.join(issued, `${peer}.crt`)));
      expect(cert.subjectAltName).toBe(`DNS:${peer}`);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(fs.statSync(path.join(issued, `${peer}.key`)).mode & 0o077).toBe(0);
    }

    // node-b: a node of its own (another WORK), given only what the signer issued for it
    const nodeB = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-devstack-b-'));
    try {
      const run2 = (env: Record<string, string>) =>
        run('bash', [HARNESS, 'configure_ferry'], {
          env: { ...process.env, CALLS: path.join(nodeB, 'calls'), WORK: nodeB, FERRY_HOST: 'node-b', FERRY_DATA_CHANNEL_SIGNER: 'False', ...env },
        });
      // nothing copied yet: it refuses, and makes no CA of its own
      const bare = await run2({});
      expect(bare.code).not.toBe(0);
      expect(bare.stderr).toMatch(/no .*pki\/ca\.crt: copy ca\.crt, node-b\.crt and node-b\.key from the signing node/);
      expect(fs.existsSync(path.join(pkiOf(nodeB), 'ca.key'))).toBe(false);
      expect(fs.existsSync(path.join(pkiOf(nodeB), 'ca.crt'))).toBe(false);

      fs.cpSync(path.join(pki, 'issued', 'node-b'), pkiOf(nodeB), { recursive: true });
      const ok = await run2({});
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(fs.readdirSync(pkiOf(nodeB)).sort()).toEqual(['ca.crt', 'node-b.crt', 'node-b.key']);
      const c = loadConfig([path.join(nodeB, 'etc/ferry/ferry.conf')]);
      expect(c.compute).toMatchObject({
        data_channel_cert_file: path.join(pkiOf(nodeB), 'node-b.crt'),
        data_channel_key_file: path.join(pkiOf(nodeB), 'node-b.key'),
        data_channel_ca_file: path.join(pkiOf(nodeB), 'ca.crt'),
      });

      // the CA key copied there anyway: it refuses to stack
      fs.copyFileSync(path.join(pki, 'ca.key'), path.join(pkiOf(nodeB), 'ca.key'));
      const leaked = await run2({});
      expect(leaked.code).not.toBe(0);
      expect(leaked.stderr).toMatch(/ca\.key is on a node that does not sign: remove it/);
    } finally {
      fs.rmSync(nodeB, { recursive: true, force: true });
    }
  });

  test('a signer with the CA certificate but not its key refuses instead of making a second CA', async () => {
    fs.mkdirSync(pkiOf(work), { recursive: true });
    fs.writeFileSync(path.join(pkiOf(work), 'ca.crt'), 'from elsewhere\n');
    const r = await harness(['configure_ferry']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/has ca\.crt but not ca\.key: this node cannot sign/);
    expect(fs.existsSync(path.join(pkiOf(work), 'ca.key'))).toBe(false);
  });
});

describe('Keystone and processes', () => {
  test('create_ferry_accounts: service user, service and three endpoints', async () => {
    const r = await harness(['create_ferry_accounts']);
    expect(r.code).toBe(0);
    const url = 'http://192.0.2.10:9517/v1';
    expect(r.nonIni).toEqual([
      'create_service_user ferry admin',
      'get_or_create_service ferry container-migration Container live migration (Ferry)',
      `get_or_create_endpoint container-migration RegionTwo ${url} ${url} ${url}`,
    ]);
  });

  test('start_ferry on a controller and on a compute node', async () => {
    // local.conf's `disable_service` wins over settings' `enable_service`, as in DevStack.
    const ctl = await harness(['start_ferry'], { ENABLED_SERVICES: 'key,rabbit', DISABLED_SERVICES: 'ferry-compute' });
    expect(ctl.code).toBe(0);
    const c = path.join(work, 'etc/ferry/ferry.conf');
    expect(ctl.nonIni).toEqual([
      `run_process ferry-api node ${repoRoot}/dist/cmd/api.js --config-file ${c}`,
      'wait_for_service 60 http://192.0.2.10:9517/healthcheck',
      `run_process ferry-conductor node ${repoRoot}/dist/cmd/conductor.js --config-file ${c}`,
    ]);
    fs.rmSync(path.join(work, 'calls'));
    const cpu = await harness(['start_ferry'], { ENABLED_SERVICES: 'n-cpu', DISABLED_SERVICES: 'ferry-api,ferry-conductor' });
    expect(cpu.nonIni).toEqual([`run_process ferry-compute node ${repoRoot}/dist/cmd/compute.js --config-file ${c}  root`]);
    for (const f of ['api', 'conductor', 'compute']) expect(fs.existsSync(path.join(repoRoot, 'src/cmd', `${f}.ts`))).toBe(true);
  });

  test('plugin.sh dispatches post-config, unstack and clean; does nothing when disabled', async () => {
    const all = 'key,rabbit,ferry-api,ferry-conductor,ferry-compute';
    const post = await harness(['source devstack/plugin.sh stack post-config'], { ENABLED_SERVICES: all });
    expect(post.code).toBe(0);
    expect(post.nonIni[0]).toBe('echo_summary Configuring Ferry');
    expect(post.nonIni).toContain('create_service_user ferry admin');
    expect(fs.existsSync(conf())).toBe(true);
    fs.rmSync(path.join(work, 'calls'));
    const un = await harness(['source devstack/plugin.sh unstack'], { ENABLED_SERVICES: all });
    expect(un.code).toBe(0);
    expect(un.nonIni).toEqual(['stop_process ferry-compute', 'stop_process ferry-conductor', 'stop_process ferry-api']);
    const clean = await harness(['source devstack/plugin.sh clean'], { ENABLED_SERVICES: all });
    expect(clean.code).toBe(0);
    expect(fs.existsSync(conf())).toBe(false);
    fs.rmSync(path.join(work, 'calls'), { force: true });
    const off = await harness(['source devstack/plugin.sh stack post-config', 'source devstack/plugin.sh stack extra'], {
      ENABLED_SERVICES: 'key,rabbit',
      DISABLED_SERVICES: 'ferry-api,ferry-conductor,ferry-compute',
    });
    expect(off.code).toBe(0);
    expect(off.calls).toEqual([]);
    // settings enables the three services
    const on = await harness(['echo "$ENABLED_SERVICES"'], { ENABLED_SERVICES: 'key' });
    expect(on.stdout.trim()).toBe('key,ferry-api,ferry-conductor,ferry-compute');
  });
});

describe('install helpers', () => {
  test('Docker experimental is merged into daemon.json, restarting Docker only on change', async () => {
    const json = path.join(work, 'etc/docker/daemon.json');
    fs.mkdirSync(path.dirname(json), { recursive: true });
    fs.writeFileSync(json, '{"data-root": "/srv/docker"}');
    const r = await harness(['ferry_docker_experimental', 'ferry_docker_experimental']);
    expect(r.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(json, 'utf8'))).toEqual({ 'data-root': '/srv/docker', experimental: true });
    expect(r.nonIni).toEqual(['restart_service docker']);
  });

  test('CRIU options for runc are added once, keeping what was there', async () => {
    const f = path.join(work, 'etc/criu/runc.conf');
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, 'tcp-established\nlog-file /tmp/x\n');
    await harness(['ferry_criu_runc_conf', 'ferry_criu_runc_conf']);
    expect(fs.readFileSync(f, 'utf8')).toBe('tcp-established\nlog-file /tmp/x\nskip-in-flight\n');
  });

  test("packages: the project's list without its development cloud's control plane", async () => {
    const r = await harness(['ferry_devstack_packages']);
    const pkgs = r.stdout.split('\n').filter(Boolean);
    expect(pkgs).toEqual(expect.arrayContaining(['docker.io', 'iproute2', 'libprotobuf-c-dev', 'protobuf-c-compiler', 'python3-setuptools']));
    for (const p of ['keystone', 'rabbitmq-server', 'python3-openstackclient', 'redis-server']) expect(pkgs).not.toContain(p);
  });

  test('the osc plugin goes into the Python of the `openstack` command', async () => {
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'openstack'), '#!/opt/stack/data/venv/bin/python3\n', { mode: 0o755 });
    const venv = await harness(['ferry_osc_python'], { PATH: `${bin}:${process.env.PATH}` });
    expect(venv.stdout.trim()).toBe('/opt/stack/data/venv/bin/python3');
    fs.writeFileSync(path.join(bin, 'openstack'), '#!/usr/bin/env python3\n', { mode: 0o755 });
    expect((await harness(['ferry_osc_python'], { PATH: `${bin}:${process.env.PATH}` })).stdout.trim()).toBe('python3');
    expect((await harness(['ferry_osc_python'])).stdout.trim()).toBe('/usr/bin/python3');
  });

  test("the project's install functions run in a subshell: a real plugin install, DevStack's die kept", async () => {
    const site = path.join(work, 'site');
    const r = await harness([
      `FERRY_OSC_SITE=${site} FERRY_OSC_PYTHON=/usr/bin/python3 _ferry_with_install_lib ferry_install_osc_plugin "$FERRY_DIR/osc-plugin"`,
      'declare -f die | grep -q "DIE\\[" && echo devstack-die-kept',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('devstack-die-kept');
    expect(fs.existsSync(path.join(site, 'ferryclient/osc/plugin.py'))).toBe(true);
    // The egg-info folder carries the plugin's version, which follows package.json's.
    const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const eps = fs.readFileSync(path.join(site, `python_ferryclient-${version}.egg-info/entry_points.txt`), 'utf8');
    expect(eps).toContain('container_migration = ferryclient.osc.plugin');
    expect(eps).toContain('container_migrate = ferryclient.osc.v1.migrations:MigrateContainer');
    expect(fs.existsSync(path.join(site, 'ferryclient/tests'))).toBe(false);
  });

  test('Node.js too old: DevStack installs nodejs, then stops with a clear reason', async () => {
    const fake = path.join(work, 'node18');
    fs.writeFileSync(fake, '#!/bin/sh\necho v18.19.0\n', { mode: 0o755 });
    const r = await harness(['ferry_install_node'], { FERRY_NODE: fake });
    expect(r.code).toBe(3);
    expect(r.nonIni[0]).toBe('install_package nodejs npm');
    expect(r.stderr).toMatch(/Ferry needs Node.js 20 or newer; .* is 18/);
    fs.rmSync(path.join(work, 'calls'));
    const ok = await harness(['ferry_install_node'], { FERRY_NODE: process.execPath });
    expect(ok.code).toBe(0);
    expect(ok.nonIni).toEqual([]);
  });
});
