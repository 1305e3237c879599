/** Ferry's own services in the development cloud: ferry-api, ferry-conductor, one ferry-compute per host. */
import fs from 'node:fs';
import path from 'node:path';
import { configFiles, writeConfigFiles } from './config.js';
import { FERRY_PORTS, HOST_NAMES, repoRoot, stateDir } from './layout.js';
import { withServicesLock } from './lock.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';
import { conductorNames, MAX_CONDUCTORS, readShape } from './shape.js';

export interface ServiceSpec {
  name: string; // pid/log file name
  entry: string; // dist/cmd/<entry>.js
  configFile: string;
}

/** The services of the cloud's shape (readShape): one conductor per configured conductor. */
export function serviceSpecs(conductors = readShape().conductors): ServiceSpec[] {
  const files = configFiles();
  return [
    ...conductorNames(conductors).map((c) => ({ name: c.service, entry: 'conductor', configFile: files[c.configKey] ?? path.join(path.dirname(files.controller), `ferry-${c.configKey}.conf`) })),
    ...HOST_NAMES.map((h) => ({ name: `ferry-compute-${h}`, entry: 'compute', configFile: files[h] })),
    { name: 'ferry-api', entry: 'api', configFile: files.controller },
  ];
}

function entryPath(s: ServiceSpec) {
  return path.join(repoRoot, 'dist', 'cmd', `${s.entry}.js`);
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

/** `ferry-manage db sync` on the conductors' database (a conductor refuses an older schema). */
async function syncDatabase(log: (s: string) => void): Promise<void> {
  const manage = path.join(repoRoot, 'dist', 'cmd', 'manage.js');
  if (!fs.existsSync(manage)) return;
  const r = await run(process.execPath, [manage, '--config-file', configFiles().controller, 'db', 'sync']);
  log(r.stdout.trim());
}

/** Start every service that is not running (after syncing the database schema). */
export async function startServices(log: (s: string) => void): Promise<void> {
  await withServicesLock(async () => {
    await syncDatabase(log);
    const started = serviceSpecs().filter((s) => serviceAvailable(s) && servicePid(s) === null);
    for (const s of started) startService(s, log);
    for (const s of started) await waitApi(s);
  });
}

/** Stop every Ferry service, including conductors of a larger shape than the current one. */
export async function stopServices(): Promise<void> {
  await withServicesLock(async () => {
    for (const s of serviceSpecs(MAX_CONDUCTORS).reverse()) await stopDaemon(pidFile(s), marker(s), 20_000);
  });
}

/** Restart one service, and only that one (tests use it to kill the conductor mid-migration). */
export async function restartService(name: string, log: (s: string) => void, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const s = serviceSpecs().find((x) => x.name === name);
  if (!s) throw new Error(`unknown service ${name}; services: ${serviceSpecs().map((x) => x.name).join(', ')}`);
  await withServicesLock(async () => {
    const pid = servicePid(s);
    if (pid !== null && signal === 'SIGKILL') process.kill(pid, 'SIGKILL');
    await stopDaemon(pidFile(s), marker(s), 20_000);
    writeConfigFiles(); // a restarted service reads what this code would write (new options included)
    if (s.entry === 'conductor') await syncDatabase(log); // code newer than the schema: as `up` does
    startService(s, log);
    await waitApi(s);
  });
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
