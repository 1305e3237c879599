/** RabbitMQ for the development cloud: one node on 127.0.0.1, vhost `ferry`, user `ferry`. */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { RABBIT, stateDir } from './layout.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';

const dir = path.join(stateDir, 'rabbitmq');
// We start the rabbitmq-server script (pidFile); the Erlang node it runs writes nodePidFile.
const pidFile = path.join(stateDir, 'run', 'rabbitmq.pid');
const nodePidFile = path.join(dir, 'rabbit.pid');
const epmdPidFile = path.join(stateDir, 'run', 'epmd.pid');
// rabbitmq-server execs erl: the node's command line carries its home, which is ours alone.
const MARKER = `-home ${dir}`;

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: dir, // the Erlang cookie lives here, shared by the server and rabbitmqctl
    RABBITMQ_NODENAME: RABBIT.node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(RABBIT.port),
    RABBITMQ_DIST_PORT: String(RABBIT.distPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: nodePidFile,
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
}

export function transportUrl(vhost = RABBIT.vhost): string {
  return `rabbit://${RABBIT.user}:${RABBIT.password}@127.0.0.1:${RABBIT.port}/${vhost}`;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export function rabbitRunning(): boolean {
  return runningPid(nodePidFile, MARKER) !== null;
}

export async function rabbitctl(args: string[]) {
  return run('/usr/lib/rabbitmq/bin/rabbitmqctl', ['-n', RABBIT.node, ...args], { env: env(), timeoutMs: 60_000 });
}

export async function startRabbit(log: (s: string) => void): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(path.join(dir, 'enabled_plugins'))) fs.writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  if (!fs.existsSync(path.join(dir, 'rabbitmq.conf'))) {
    fs.writeFileSync(path.join(dir, 'rabbitmq.conf'), 'loopback_users = none\nlisteners.tcp.default = 127.0.0.1:5672\n');
  }
  if (!rabbitRunning()) {
    // Run epmd ourselves so that `down` can end it by PID; reuse one that is already there.
    if (!(await portOpen(4369)) && runningPid(epmdPidFile, 'epmd') === null) {
      startDaemon({
        name: 'epmd',
        cmd: 'epmd',
        args: ['-address', '127.0.0.1'],
        pidFile: epmdPidFile,
        logFile: path.join(stateDir, 'log', 'epmd.log'),
        marker: 'epmd',
      });
      await waitFor('epmd', () => portOpen(4369), 10_000);
    }
    if (await portOpen(RABBIT.port)) {
      throw new Error(`port ${RABBIT.port} on 127.0.0.1 is taken by a RabbitMQ the development cloud did not start; stop it first`);
    }
    log('starting RabbitMQ on 127.0.0.1:5672 (about 10 s)');
    startDaemon({
      name: 'rabbitmq',
      cmd: '/usr/lib/rabbitmq/bin/rabbitmq-server',
      args: [],
      pidFile,
      logFile: path.join(stateDir, 'log', 'rabbitmq.log'),
      marker: 'rabbitmq-server',
      env: env(),
      cwd: dir,
    });
  }
  await rabbitctl(['wait', nodePidFile, '--timeout', '120']);
  await waitFor('RabbitMQ to listen on 5672', () => portOpen(RABBIT.port), 60_000);
  const vhosts = (await rabbitctl(['list_vhosts', '--quiet', '--no-table-headers'])).stdout.split('\n').map((s) => s.trim());
  if (!vhosts.includes(RABBIT.vhost)) await rabbitctl(['add_vhost', RABBIT.vhost]);
  const users = (await rabbitctl(['list_users', '--quiet', '--no-table-headers'])).stdout;
  if (!users.split('\n').some((l) => l.split(/\s+/)[0] === RABBIT.user)) {
    await rabbitctl(['add_user', RABBIT.user, RABBIT.password]);
  }
  await rabbitctl(['set_user_tags', RABBIT.user, 'administrator']);
  for (const vh of [RABBIT.vhost, '/']) await rabbitctl(['set_permissions', '-p', vh, RABBIT.user, '.*', '.*', '.*']);
  log(`RabbitMQ up: vhost ${RABBIT.vhost}, user ${RABBIT.user}`);
}

export async function stopRabbit(): Promise<void> {
  if (rabbitRunning()) {
    await rabbitctl(['stop']).catch(() => undefined);
  }
  await stopDaemon(nodePidFile, MARKER, 30_000);
  await stopDaemon(pidFile, 'rabbitmq-server', 5_000);
  await stopDaemon(epmdPidFile, 'epmd', 5_000);
}

export async function rabbitState(): Promise<'up' | 'down'> {
  return rabbitRunning() && (await portOpen(RABBIT.port)) ? 'up' : 'down';
}
