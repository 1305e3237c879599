/** Ferry's own services in the development cloud: ferry-api, ferry-conductor, one ferry-compute per host. */
import fs from 'node:fs';
import path from 'node:path';
import { computeConfigFile, configFiles, writeConfigFiles } from './config.js';
import { FerryClient } from './ferry-client.js';
import { credentials } from './keystone.js';
import { FERRY_PORTS, KEYSTONE, MAX_HOSTS, hostNames, repoRoot, stateDir } from './layout.js';
import { withServicesLock } from './lock.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';
import { readRelease, type Release } from './release.js';
import { conductorNames, MAX_CONDUCTORS, readShape } from './shape.js';

export interface ServiceSpec {
  name: string; // pid/log file name
  entry: string; // dist/cmd/<entry>.js
  configFile: string;
}

/** The services of the cloud's shape (readShape): one conductor per configured conductor, one agent per compute host. */
export function serviceSpecs(conductors = readShape().conductors, hosts = readShape().hosts): ServiceSpec[] {
  const files = configFiles();
  return [
    ...conductorNames(conductors).map((c) => ({
      name: c.service,
      entry: 'conductor',
      configFile: files[c.configKey] ?? path.join(path.dirname(files.controller), `ferry-${c.configKey}.conf`),
    })),
    ...hostNames(hosts).map((h) => ({ name: `ferry-compute-${h}`, entry: 'compute', configFile: files[h] ?? computeConfigFile(h) })),
    { name: 'ferry-api', entry: 'api', configFile: files.controller },
  ];
}

/**
 * Which services run another release's code (rolling upgrades: `up --release`, `upgrade`), by
 * service name: its tree. A service not listed runs this checkout's.
 */
const releasesFile = path.join(stateDir, 'service-releases.json');

function readServiceReleases(): Record<string, string> {
  try {
    return JSON.parse(fs.readFileSync(releasesFile, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

function writeServiceReleases(r: Record<string, string>): void {
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(releasesFile, `${JSON.stringify(r, null, 2)}\n`);
}

/** The release a service runs (or starts with), null for this checkout's code. */
export function serviceRelease(name: string): Release | null {
  const dir = readServiceReleases()[name];
  return dir ? readRelease(dir) : null;
}

/** The tree whose dist/ the service runs from. */
function codeRoot(s: ServiceSpec): string {
  return serviceRelease(s.name)?.dir ?? repoRoot;
}

function entryPath(s: ServiceSpec) {
  return path.join(codeRoot(s), 'dist', 'cmd', `${s.entry}.js`);
}

function pidFile(s: ServiceSpec) {
  return path.join(stateDir, 'run', `${s.name}.pid`);
}

/** The config file path is in the command line, so it tells our processes from any other. */
function marker(s: ServiceSpec) {
  return s.configFile;
}

export function serviceAvailable(s: ServiceSpec): boolean {
  return fs.existsSync(entryPath(s));
}

export function servicePid(s: ServiceSpec): number | null {
  return runningPid(pidFile(s), marker(s));
}

export const apiUrl = `http://127.0.0.1:${FERRY_PORTS.api}`;

async function apiHealthy(): Promise<boolean> {
  try {
    return (await fetch(`${apiUrl}/healthcheck`)).status === 200;
  } catch {
    return false;
  }
}

function startService(s: ServiceSpec, log: (s: string) => void): void {
  log(`starting ${s.name}`);
  startDaemon({
    name: s.name,
    cmd: process.execPath,
    args: [entryPath(s), '--config-file', s.configFile],
    pidFile: pidFile(s),
    logFile: path.join(stateDir, 'log', `${s.name}.log`),
    marker: marker(s),
    // The services' own level, whatever the caller's FERRY_LOG_LEVEL (a test run exports warn for itself).
    env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_DEVCLOUD_LOG_LEVEL ?? 'info' },
  });
}

async function waitApi(s: ServiceSpec): Promise<void> {
  if (s.entry !== 'api') return;
  await waitFor(`ferry-api on ${apiUrl} (log: ${path.join(stateDir, 'log', 'ferry-api.log')})`, apiHealthy, 60_000);
}

/**
 * `ferry-manage db sync` on the conductors' database (a conductor refuses an older schema), with
 * the code of `root` (this checkout, or a release's tree: a release refuses a newer schema).
 */
async function syncDatabase(log: (s: string) => void, root = repoRoot): Promise<void> {
  const manage = path.join(root, 'dist', 'cmd', 'manage.js');
  if (!fs.existsSync(manage)) return;
  const r = await run(process.execPath, [manage, '--config-file', configFiles().controller, 'db', 'sync']);
  log(`${root === repoRoot ? '' : `${path.basename(root).slice(0, 12)}: `}${r.stdout.trim()}`);
}

/**
 * Start every service that is not running, all of them on `release` (null: this checkout's
 * code), after syncing the database schema with that code. A service that runs other code than
 * that is restarted on it: `up` after a partial upgrade finishes it.
 */
export async function startServices(log: (s: string) => void, release: Release | null = null): Promise<void> {
  await withServicesLock(async () => {
    const specs = serviceSpecs();
    const was = readServiceReleases();
    for (const s of specs) {
      if ((was[s.name] ?? null) === (release?.dir ?? null) || servicePid(s) === null) continue;
      log(`stopping ${s.name} (it runs ${describeCode(serviceRelease(s.name))}, the cloud is asked for ${describeCode(release)})`);
      await stopDaemon(pidFile(s), marker(s), 20_000);
    }
    writeServiceReleases(release ? Object.fromEntries(specs.map((s) => [s.name, release.dir])) : {});
    await syncDatabase(log, release?.dir);
    const started = specs.filter((s) => serviceAvailable(s) && servicePid(s) === null);
    for (const s of started) startService(s, log);
    for (const s of started) await waitApi(s);
  });
}

/** How the logs and `status` name a service's code. */
export function describeCode(r: Release | null): string {
  return r ? `release ${r.revision} (${r.commit.slice(0, 12)})` : "this checkout's code";
}

/** The names `upgrade` and `restart` take for a service: its own, or short (api, conductor2, compute1). */
export function resolveServiceName(name: string): string | null {
  const names = serviceSpecs().map((s) => s.name);
  for (const candidate of [name, `ferry-${name}`, `ferry-compute-${name}`]) if (names.includes(candidate)) return candidate;
  return null;
}

/**
 * One step of a rolling upgrade: `db` syncs the schema with this checkout's code (the running
 * services carry on); a service is stopped and started on this checkout's code (a no-op when it
 * runs it already).
 */
export async function upgradeService(name: string, log: (s: string) => void): Promise<void> {
  if (name === 'db') {
    await withServicesLock(() => syncDatabase(log));
    return;
  }
  const s = serviceNamed(name);
  await withServicesLock(async () => {
    const from = serviceRelease(s.name);
    if (from === null && servicePid(s) !== null) {
      log(`${s.name} runs this checkout's code already`);
      return;
    }
    log(`upgrading ${s.name}: ${describeCode(from)} -> ${describeCode(null)}`);
    await stopDaemon(pidFile(s), marker(s), 20_000);
    const releases = readServiceReleases();
    delete releases[s.name];
    writeServiceReleases(releases);
    writeConfigFiles();
    const since = Date.now();
    startService(s, log);
    await waitApi(s);
    await waitReported(s, since);
  });
}

/**
 * A restarted agent is usable once the conductor has its report: until then the scheduler counts
 * its host down when the last report is older than service_down_time (after a broker outage, say),
 * and a migration asked at once is refused. Only while the API runs (it tells what the conductor knows).
 */
async function waitReported(s: ServiceSpec, since: number): Promise<void> {
  const host = s.name.startsWith('ferry-compute-') ? s.name.slice('ferry-compute-'.length) : null;
  const api = serviceSpecs().find((x) => x.entry === 'api');
  if (host === null || !api || servicePid(api) === null || !(await apiHealthy())) return;
  const ferry = new FerryClient(apiUrl, KEYSTONE.authUrl, credentials.admin);
  await waitFor(
    `${host}'s first report to the conductor after its restart (log: ${path.join(stateDir, 'log', `${s.name}.log`)})`,
    async () => {
      const r = await ferry.request<{ hosts?: { name: string; state: string; updated_at: string | null }[] }>('GET', '/v1/hosts').catch(() => null);
      const h = r?.body.hosts?.find((x) => x.name === host);
      return h !== undefined && h.state === 'up' && h.updated_at !== null && Date.parse(h.updated_at) >= since;
    },
    60_000,
    200,
  );
}

/** The service of that name in the current shape; an error naming the services otherwise. */
function serviceNamed(name: string): ReturnType<typeof serviceSpecs>[number] {
  const s = serviceSpecs().find((x) => x.name === name);
  if (!s)
    throw new Error(
      `unknown service ${name}; services: ${serviceSpecs()
        .map((x) => x.name)
        .join(', ')}`,
    );
  return s;
}

/** Stop every Ferry service, including conductors and agents of a larger shape than the current one. */
export async function stopServices(): Promise<void> {
  await withServicesLock(async () => {
    for (const s of serviceSpecs(MAX_CONDUCTORS, MAX_HOSTS).reverse()) await stopDaemon(pidFile(s), marker(s), 20_000);
  });
}

/** Stop the agents of these hosts (a smaller shape: hosts that no longer are in the cloud). */
export async function stopComputeServices(hosts: string[]): Promise<void> {
  await withServicesLock(async () => {
    for (const s of serviceSpecs(1, MAX_HOSTS).filter((x) => hosts.some((h) => x.name === `ferry-compute-${h}`)))
      await stopDaemon(pidFile(s), marker(s), 20_000);
  });
}

/** Restart one service, and only that one (tests use it to kill the conductor mid-migration). */
export async function restartService(name: string, log: (s: string) => void, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const s = serviceNamed(name);
  await withServicesLock(async () => {
    const pid = servicePid(s);
    if (pid !== null && signal === 'SIGKILL') process.kill(pid, 'SIGKILL');
    await stopDaemon(pidFile(s), marker(s), 20_000);
    writeConfigFiles(); // a restarted service reads what this code would write (new options included)
    // Code newer than the schema: as `up` does. A conductor of an older release starts on the schema as it is.
    if (s.entry === 'conductor' && serviceRelease(s.name) === null) await syncDatabase(log);
    const since = Date.now();
    startService(s, log);
    await waitApi(s);
    await waitReported(s, since);
  });
}

/** The services that run (or start with) another release's code than this checkout's, by name. */
export function servicesOnReleases(): Record<string, { revision: string; commit: string; dir: string }> {
  const out: Record<string, { revision: string; commit: string; dir: string }> = {};
  for (const s of serviceSpecs()) {
    const r = serviceRelease(s.name);
    if (r) out[s.name] = { revision: r.revision, commit: r.commit, dir: r.dir };
  }
  return out;
}

export async function servicesState(): Promise<Record<string, 'up' | 'down'>> {
  const out: Record<string, 'up' | 'down'> = {};
  for (const s of serviceSpecs()) {
    if (!serviceAvailable(s)) continue;
    out[s.name] = servicePid(s) !== null ? 'up' : 'down';
  }
  if (out['ferry-api'] === 'up' && !(await apiHealthy())) out['ferry-api'] = 'down';
  return out;
}
