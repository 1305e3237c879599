import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DOCKER_CLI } from '../../../src/devcloud/layout.js';
import { cloud, repoRoot } from '../../helpers/cloud.js';

const devcloud = path.join(repoRoot, 'dist/cmd/devcloud.js');

describe('ferry-devcloud command', () => {
  it('prints usage and fails on an unknown verb', () => {
    const r = spawnSync(process.execPath, [devcloud, 'explode'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command "explode"/);
    expect(r.stderr).toMatch(/usage: ferry-devcloud up/);
  });

  it('refuses an unknown option', () => {
    const r = spawnSync(process.execPath, [devcloud, 'status', '--jsn'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --jsn/);
  });

  it('stops and starts one RabbitMQ node by name, nothing else', () => {
    const svc = spawnSync(process.execPath, [devcloud, 'stop', 'ferry-api'], { encoding: 'utf8' });
    expect(svc.status).toBe(2);
    expect(svc.stderr).toMatch(/"stop" applies to a RabbitMQ node \(rabbitmq, rabbitmq2\), not "ferry-api"/);
    const none = spawnSync(process.execPath, [devcloud, 'start'], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/"start" takes one broker: rabbitmq or rabbitmq2/);
    const kill = spawnSync(process.execPath, [devcloud, 'start', 'rabbitmq2', '--kill'], { encoding: 'utf8' });
    expect(kill.status).toBe(2);
    expect(kill.stderr).toMatch(/option --kill does not apply to "start"/);
  });

  it('restarts the second RabbitMQ node alone (--kill: SIGKILL first): a new PID, the first untouched', () => {
    const before = cloud().rabbit.brokers;
    const r = spawnSync(process.execPath, [devcloud, 'restart', 'rabbitmq2', '--kill'], { encoding: 'utf8', timeout: 180_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/starting RabbitMQ rabbitmq2/);
    const after = JSON.parse(spawnSync(process.execPath, [devcloud, 'status', '--json'], { encoding: 'utf8' }).stdout).rabbit.brokers;
    expect(after.map((b: { state: string }) => b.state)).toEqual(['up', 'up']);
    expect(after[0].pid).toBe(before[0].pid);
    expect(after[1].pid).not.toBe(before[1].pid);
  });

  it('refuses an upgrade of nothing or of an unknown service, and a malformed or unknown --release, changing nothing', () => {
    const none = spawnSync(process.execPath, [devcloud, 'upgrade'], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/"upgrade" takes what to upgrade: db, or services/);
    const bogus = spawnSync(process.execPath, [devcloud, 'upgrade', 'db', 'compute9'], { encoding: 'utf8' });
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toMatch(/cannot upgrade "compute9": db, or one of ferry-conductor, .*ferry-api/);
    expect(bogus.stderr).not.toMatch(/database schema/); // nothing ran, db included
    const malformed = spawnSync(process.execPath, [devcloud, 'up', '--release', 'v1;rm'], { encoding: 'utf8' });
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).toMatch(/--release takes a git revision/);
    const before = JSON.parse(spawnSync(process.execPath, [devcloud, 'status', '--json'], { encoding: 'utf8' }).stdout).services;
    const unknown = spawnSync(process.execPath, [devcloud, 'up', '--release', 'no-such-release-tag'], { encoding: 'utf8', timeout: 60_000 });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/git does not know the revision "no-such-release-tag"/);
    expect(unknown.stderr).not.toMatch(/RabbitMQ|stopping/);
    const after = JSON.parse(spawnSync(process.execPath, [devcloud, 'status', '--json'], { encoding: 'utf8' }).stdout);
    expect(after.services).toEqual(before);
    expect(after.releases).toBeUndefined();
  });

  it('upgrades nothing that runs this checkout already: `upgrade db` syncs (current), a service keeps its PID', () => {
    const pidFile = path.join(cloud().state_dir, 'run', 'ferry-compute-compute1.pid');
    const pid = fs.readFileSync(pidFile, 'utf8').trim();
    const r = spawnSync(process.execPath, [devcloud, 'upgrade', 'db', 'compute1'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/database schema is current/);
    expect(r.stderr).toMatch(/ferry-compute-compute1 runs this checkout's code already/);
    expect(fs.readFileSync(pidFile, 'utf8').trim()).toBe(pid);
  });

  it('describes the running cloud as JSON', () => {
    const s = cloud();
    expect(s.keystone.auth_url).toBe('http://127.0.0.1:5000/v3');
    for (const who of ['admin', 'demo'] as const) {
      expect(Object.keys(s.keystone[who]).sort()).toEqual(['password', 'project_domain_name', 'project_name', 'user_domain_name', 'username'].sort());
    }
    expect(s.rabbit.transport_url).toMatch(/^rabbit:\/\//);
    expect(s.rabbit.brokers.map((b) => [b.name, b.node, b.port, b.state])).toEqual([
      ['rabbitmq', 'ferry@localhost', 5672, 'up'],
      ['rabbitmq2', 'ferry2@localhost', 5673, 'up'],
    ]);
    expect(s.hosts.map((h) => h.name)).toEqual(['compute1', 'compute2']);
    for (const h of s.hosts) {
      expect(h.state).toBe('up');
      expect(h.docker_host).toMatch(/^unix:\/\//);
      expect(h.netns).toBeTruthy();
      expect(h.data_root).toBeTruthy();
    }
    expect(s.fabric).toMatchObject({ network: 'ferry-fabric', subnet: '10.250.0.0/24', client_netns: 'ferry-client' });
    expect(Object.keys(s.config_files)).toEqual(expect.arrayContaining(['controller', 'compute1', 'compute2']));
  });

  it('is idempotent: a second `up` finds everything running and changes nothing', () => {
    const before = cloud();
    const r = spawnSync(process.execPath, [devcloud, 'up', '--json'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status).toBe(0);
    const after = JSON.parse(r.stdout);
    expect(after.hosts.map((h: { docker_host: string }) => h.docker_host)).toEqual(before.hosts.map((h) => h.docker_host));
    expect(r.stderr).not.toMatch(/starting Docker engine|starting RabbitMQ|starting Keystone/);
  });

  it('repairs a cloud whose engine died: `up` starts it again', () => {
    const pidFile = path.join(cloud().state_dir, 'run', 'dockerd-compute2.pid');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      spawnSync('sleep', ['0.1']);
    }
    const down = spawnSync(process.execPath, [devcloud, 'status', '--json'], { encoding: 'utf8' });
    expect(down.status).toBe(3);
    expect(JSON.parse(down.stdout).hosts.find((h: { name: string }) => h.name === 'compute2').state).toBe('down');
    const r = spawnSync(process.execPath, [devcloud, 'up', '--json'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/starting Docker engine compute2/);
    expect(JSON.parse(r.stdout).hosts.every((h: { state: string }) => h.state === 'up')).toBe(true);
    expect(Number(fs.readFileSync(pidFile, 'utf8'))).not.toBe(pid);
  });

  it('comes back whole after `down`: namespaces, engines, the fabric network and the services', async () => {
    const d = spawnSync(process.execPath, [devcloud, 'down'], { encoding: 'utf8', timeout: 300_000 });
    expect(d.status).toBe(0);
    expect(fs.existsSync('/run/netns/ferry-fabric')).toBe(false);
    const r = spawnSync(process.execPath, [devcloud, 'up', '--json'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.hosts.every((h: { state: string }) => h.state === 'up')).toBe(true);
    expect(s.rabbit.brokers.map((b: { state: string }) => b.state)).toEqual(['up', 'up']);
    expect(s.api.state).toBe('up');
    // The macvlan network works again (its parent link was recreated): a container starts on it.
    const socket = s.hosts.find((x: { name: string }) => x.name === 'compute1').docker_host;
    const name = `fabric-check-${process.pid}`;
    const started = spawnSync(
      DOCKER_CLI,
      ['-H', socket, 'run', '-d', '--name', name, '--network', 'ferry-fabric', '--ip', '10.250.0.59', 'ferry/counter:latest'],
      {
        encoding: 'utf8',
      },
    );
    spawnSync(DOCKER_CLI, ['-H', socket, 'rm', '-f', name]);
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
  });
});
