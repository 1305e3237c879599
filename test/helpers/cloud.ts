/**
 * Integration tests run against the development cloud that scripts/test.sh brought up.
 * Its description is read from `ferry-devcloud status --json`.
 */
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CloudStatus } from '../../src/devcloud/status.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let cached: CloudStatus | undefined;

export function cloud(): CloudStatus {
  if (!cached) {
    // Exit 3 means a part is down (a broker a test stopped, say): the description is printed all the same.
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), 'status', '--json'], { encoding: 'utf8' });
    if (r.status !== 0 && r.status !== 3) throw new Error(`ferry-devcloud status --json exited ${r.status}: ${r.stderr}`);
    cached = JSON.parse(r.stdout) as CloudStatus;
  }
  return cached;
}

/**
 * Run `ferry-devcloud ARGS` (a test that changes the cloud's shape, and puts it back); its stdout.
 * The services it starts must not inherit the test's settings (faults, jest's Node options, log level).
 * The next cloud() reads the status again.
 */
export async function runDevcloud(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['FERRY_FAULTS', 'FERRY_ENABLE_FAULTS', 'NODE_ENV', 'NODE_OPTIONS', 'FERRY_LOG_LEVEL']) delete env[k];
  cached = undefined;
  const r = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), ...args], {
    env: { ...env, ...opts.env },
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 16 << 20,
  });
  return r.stdout;
}

export function host(name: string) {
  const h = cloud().hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name} in the development cloud`);
  return h;
}
