/** Running the real `openstack` CLI and shell commands for the osc suites. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { cloud, repoRoot } from '../../helpers/cloud.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd ?? repoRoot, timeout: opts.timeout ?? 600_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The environment of an `openstack` user of the development cloud (admin by default). */
export function osEnv(who: 'admin' | 'demo' = 'admin'): NodeJS.ProcessEnv {
  const ks = cloud().keystone;
  const c = ks[who];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OS_')) env[k] = v;
  return {
    ...env,
    OS_AUTH_URL: ks.auth_url,
    OS_USERNAME: c.username,
    OS_PASSWORD: c.password,
    OS_PROJECT_NAME: c.project_name,
    OS_USER_DOMAIN_NAME: c.user_domain_name,
    OS_PROJECT_DOMAIN_NAME: c.project_domain_name,
    OS_REGION_NAME: 'RegionOne',
    OS_IDENTITY_API_VERSION: '3',
    OS_INTERFACE: 'public',
  };
}

export function openstack(args: string[], who: 'admin' | 'demo' = 'admin'): Promise<Run> {
  return run('/usr/bin/openstack', args, { env: osEnv(who), timeout: 600_000 });
}

/** Install this checkout's osc-plugin for /usr/bin/python3 (the README's install step does the same). */
export function installPlugin(): Promise<Run> {
  const lib = path.join(repoRoot, 'scripts/lib');
  return run('bash', ['-c', `set -e; . '${lib}/common.sh'; . '${lib}/install.sh'; ferry_install_osc_plugin '${repoRoot}/osc-plugin'`]);
}
