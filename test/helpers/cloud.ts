/**
 * Integration tests run against the development cloud that scripts/test.sh brought up.
 * Its description is read from `ferry-devcloud status --json`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CloudStatus } from '../../src/devcloud/status.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let cached: CloudStatus | undefined;

export function cloud(): CloudStatus {
  if (!cached) {
    const out = execFileSync(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), 'status', '--json'], {
      encoding: 'utf8',
    });
    cached = JSON.parse(out) as CloudStatus;
  }
  return cached;
}

export function host(name: string) {
  const h = cloud().hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name} in the development cloud`);
  return h;
}
