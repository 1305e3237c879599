/**
 * The dev-cloud side shared by the fault tests and the soak: restarting Ferry's services (with
 * faults armed through FERRY_FAULTS, or SIGKILLed), reading each host's copy of a container and
 * what a migration left in the agents' folders, putting an image on the second engine.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import type { Faults } from '../compute/faults.js';
import { repoRoot } from '../devcloud/layout.js';
import type { CloudStatus } from '../devcloud/status.js';
import { HOSTS, type CopyState, type HostName } from './verdict.js';

const pexec = promisify(execFile);

/** Restart Ferry services of the development cloud, optionally with fault injection in their environment. */
export async function restartServices(names: string[], env: Record<string, string> = {}, kill = false): Promise<void> {
  const cleanEnv = { ...process.env };
  delete cleanEnv.FERRY_FAULTS;
  delete cleanEnv.FERRY_ENABLE_FAULTS;
  delete cleanEnv.NODE_ENV; // jest sets it to "test", which would arm faults in the services
  delete cleanEnv.NODE_OPTIONS;
  // Services log at the dev cloud's level (info), as `ferry-devcloud up` started them, not at the tests' own.
  delete cleanEnv.FERRY_LOG_LEVEL;
  await pexec(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), 'restart', ...names, ...(kill ? ['--kill'] : [])], {
    env: { ...cleanEnv, ...env },
    timeout: 120_000,
  });
}

// The faults each compute service runs with now (as JSON), so that only changes restart it.
const armed: Record<string, string> = {};

/** Restart the compute services whose faults differ from what they run with now (none = {}). */
export async function useFaults(faults: Partial<Record<HostName, Faults>>): Promise<void> {
  for (const h of HOSTS) {
    const want = JSON.stringify(faults[h] ?? {});
    if ((armed[h] ?? '{}') === want) continue;
    await restartServices([`ferry-compute-${h}`], want === '{}' ? {} : { FERRY_ENABLE_FAULTS: '1', FERRY_FAULTS: want });
    armed[h] = want;
  }
}

/** SIGKILL a Ferry service and start it again, clean (no faults). */
export async function killService(name: string): Promise<void> {
  await restartServices([name], {}, true);
  for (const h of HOSTS) if (name === `ferry-compute-${h}`) armed[h] = '{}';
}

/** Make sure `image` is on `to` (the dev cloud loads its images into compute1 only). */
export async function ensureImage(from: Docker, to: Docker, image: string): Promise<void> {
  if ((await to.listImages({ filters: { reference: [image] } })).length > 0) return;
  const tar = (await from.getImage(image).get()) as unknown as NodeJS.ReadableStream;
  const res = (await to.loadImage(tar)) as unknown as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => {
    res.on('end', () => resolve());
    res.on('error', reject);
    res.resume();
  });
}

/** The container of exactly this name on an engine: running, stopped or absent. */
export async function copyState(d: Docker, name: string): Promise<CopyState> {
  const l = await d.listContainers({ all: true, filters: { name: [`^/${name}$`] } });
  if (l.length === 0) return 'absent';
  return l[0].State === 'running' ? 'running' : 'stopped';
}

/** A migration's staging folders and unfinished agent records still on either host. */
export function leftoversOf(st: Pick<CloudStatus, 'state_dir' | 'hosts'>, uuid: string): string[] {
  const out: string[] = [];
  for (const h of HOSTS) {
    const dataRoot = st.hosts.find((x) => x.name === h)?.data_root;
    if (dataRoot) {
      const staged = path.join(dataRoot, 'ferry-staging', h, uuid);
      if (fs.existsSync(staged)) out.push(staged);
    }
    const rec = path.join(st.state_dir, 'ferry', h, 'migrations', uuid, 'record.json');
    if (fs.existsSync(rec)) {
      const stage = (JSON.parse(fs.readFileSync(rec, 'utf8')) as { stage: string }).stage;
      if (!['restored', 'rolled_back'].includes(stage)) out.push(`${rec} (stage ${stage})`);
    }
  }
  return out;
}
