/**
 * The compute hosts (compute1..computeN, src/devcloud/shape.ts): each a Docker engine (experimental, for checkpoint/restore) in a
 * network namespace of its own, with its own data root, exec root and socket; and the
 * shared tenant network `ferry-fabric` that joins them (a bridge in its own namespace,
 * a veth from each host, a macvlan Docker network over it on each engine) plus the
 * `client` namespace where tenants' clients sit.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { DOCKER_CLI, FABRIC, MAX_HOSTS, hostDirs, hostNames, hostNetns } from './layout.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';

export function netnsExists(name: string): boolean {
  return fs.existsSync(`/run/netns/${name}`);
}

async function ensureNetns(name: string): Promise<void> {
  if (!netnsExists(name)) {
    await run('ip', ['netns', 'add', name]);
  }
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

async function linkExists(netns: string, dev: string): Promise<boolean> {
  return (await run('ip', ['-n', netns, 'link', 'show', 'dev', dev], { allowFail: true })).code === 0;
}

/** `docker` CLI against one engine. */
export function docker(host: string, args: string[], opts: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}) {
  return run(DOCKER_CLI, ['-H', `unix://${hostDirs(host).socket}`, ...args], { ...opts, timeoutMs: opts.timeoutMs ?? 300_000 });
}

/** GET /_ping on the engine's socket. */
export function pingEngine(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

export function engineRunning(host: string): boolean {
  return runningPid(hostDirs(host).pidFile, hostDirs(host).socket) !== null;
}

/**
 * /etc/criu/runc.conf: runc passes it to CRIU. tcp-established lets live TCP connections move;
 * skip-in-flight lets a server be frozen while a client's connection waits in its accept queue
 * (that client reconnects; without it the whole checkpoint fails).
 */
export const RUNC_CRIU_OPTIONS = ['tcp-established', 'skip-in-flight'];

export function ensureRuncCriuConf(log: (s: string) => void): void {
  const file = '/etc/criu/runc.conf';
  let current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const have = new Set(current.split('\n').map((l) => l.trim()));
  const missing = RUNC_CRIU_OPTIONS.filter((o) => !have.has(o));
  if (missing.length === 0) return;
  fs.mkdirSync('/etc/criu', { recursive: true });
  if (current && !current.endsWith('\n')) current += '\n';
  fs.writeFileSync(file, `${current}${missing.join('\n')}\n`);
  log(`wrote ${missing.join(', ')} into ${file}`);
}

export async function startEngine(host: string, log: (s: string) => void): Promise<void> {
  const d = hostDirs(host);
  const ns = hostNetns(host);
  await ensureNetns(ns);
  if (engineRunning(host) && (await pingEngine(d.socket))) return;
  if (engineRunning(host)) {
    // Alive but not answering: a half-started engine; start over.
    await stopDaemon(d.pidFile, d.socket, 20_000);
  }
  for (const dir of [d.state, d.dataRoot, d.execRoot, path.dirname(d.socket)]) fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(d.socket, { force: true });
  fs.rmSync(path.join(d.state, 'dockerd.pid'), { force: true }); // dockerd refuses to start over a stale one
  fs.writeFileSync(
    d.configFile,
    JSON.stringify({ experimental: true, 'storage-driver': 'overlay2', 'cgroup-parent': `ferry-${host}`, 'log-level': 'warn' }, null, 2),
  );
  log(`starting Docker engine ${host} in netns ${ns}`);
  // `ip netns exec` remounts /sys and breaks dockerd's cgroup setup; nsenter only switches the network (docs/platform-facts.md).
  startDaemon({
    name: `dockerd-${host}`,
    cmd: 'nsenter',
    args: [
      `--net=/run/netns/${ns}`,
      'dockerd',
      '--config-file',
      d.configFile,
      '--data-root',
      d.dataRoot,
      '--exec-root',
      d.execRoot,
      '-H',
      `unix://${d.socket}`,
      '--pidfile',
      path.join(d.state, 'dockerd.pid'),
    ],
    pidFile: d.pidFile,
    logFile: d.logFile,
    marker: d.socket,
  });
  await waitFor(`Docker engine ${host} (log: ${d.logFile})`, () => pingEngine(d.socket), 90_000);
}

export async function stopEngine(host: string): Promise<void> {
  const d = hostDirs(host);
  await stopDaemon(d.pidFile, d.socket, 30_000);
}

async function ensureVeth(outerNs: string, outerDev: string, innerNs: string, innerDev: string): Promise<void> {
  const a = await linkExists(outerNs, outerDev);
  const b = await linkExists(innerNs, innerDev);
  if (a && b) return;
  if (a) await run('ip', ['-n', outerNs, 'link', 'del', outerDev]);
  if (b) await run('ip', ['-n', innerNs, 'link', 'del', innerDev]);
  await run('ip', ['link', 'add', 'ferrytmp0', 'netns', outerNs, 'type', 'veth', 'peer', 'name', 'ferrytmp1', 'netns', innerNs]);
  await run('ip', ['-n', outerNs, 'link', 'set', 'ferrytmp0', 'name', outerDev]);
  await run('ip', ['-n', innerNs, 'link', 'set', 'ferrytmp1', 'name', innerDev]);
}

/** The fabric's wiring: bridge namespace, one veth per host and one for the client namespace. */
export async function ensureFabricLinks(hosts: string[], log: (s: string) => void): Promise<void> {
  const br = FABRIC.bridgeNetns;
  await ensureNetns(br);
  if (!(await linkExists(br, FABRIC.bridge))) {
    await run('ip', ['-n', br, 'link', 'add', FABRIC.bridge, 'type', 'bridge']);
  }
  await run('ip', ['-n', br, 'link', 'set', FABRIC.bridge, 'up']);
  const gw = `${FABRIC.gateway}/${FABRIC.prefix}`;
  const addrs = (await run('ip', ['-n', br, '-o', 'addr', 'show', 'dev', FABRIC.bridge])).stdout;
  if (!addrs.includes(` ${gw} `)) await run('ip', ['-n', br, 'addr', 'add', gw, 'dev', FABRIC.bridge]);

  for (const host of hosts) {
    const ns = hostNetns(host);
    await ensureNetns(ns);
    await ensureVeth(br, `fab-${host}`, ns, 'fabric0');
    await run('ip', ['-n', br, 'link', 'set', `fab-${host}`, 'master', FABRIC.bridge, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'fabric0', 'up']);
  }
  const cl = FABRIC.clientNetns;
  await ensureNetns(cl);
  await ensureVeth(br, 'fab-client', cl, 'eth0');
  await run('ip', ['-n', br, 'link', 'set', 'fab-client', 'master', FABRIC.bridge, 'up']);
  await run('ip', ['-n', cl, 'link', 'set', 'eth0', 'up']);
  const caddr = `${FABRIC.clientIp}/${FABRIC.prefix}`;
  const caddrs = (await run('ip', ['-n', cl, '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  if (!caddrs.includes(` ${caddr} `)) await run('ip', ['-n', cl, 'addr', 'add', caddr, 'dev', 'eth0']);
  log(`fabric ${FABRIC.subnet}: bridge in netns ${br}, client ${FABRIC.clientIp} in netns ${cl}`);
}

/** The `ferry-fabric` macvlan network on one engine, over that host's end of the fabric. */
export async function ensureFabricNetwork(host: string): Promise<void> {
  const existing = await docker(host, ['network', 'inspect', FABRIC.network], { allowFail: true });
  if (existing.code === 0) return;
  await docker(host, [
    'network',
    'create',
    '-d',
    'macvlan',
    '--subnet',
    FABRIC.subnet,
    '--gateway',
    FABRIC.gateway,
    '--ip-range',
    FABRIC.ipRanges[host],
    '-o',
    'parent=fabric0',
    FABRIC.network,
  ]);
}

/**
 * Hosts taken out of the cloud (a smaller `up --hosts`): engine stopped, namespace removed (its
 * veth into the fabric bridge goes with it); the data root stays, as MariaDB's does.
 */
export async function removeHosts(hosts: string[]): Promise<void> {
  for (const h of hosts) {
    await stopEngine(h);
    if (netnsExists(hostNetns(h))) await run('ip', ['netns', 'del', hostNetns(h)], { allowFail: true });
  }
}

/** Every namespace the cloud may have made, those of hosts of a larger shape than the current one included. */
export async function deleteNamespaces(): Promise<void> {
  for (const ns of [...hostNames(MAX_HOSTS).map(hostNetns), FABRIC.bridgeNetns, FABRIC.clientNetns]) {
    if (netnsExists(ns)) await run('ip', ['netns', 'del', ns], { allowFail: true });
  }
}
