/**
 * Ferry's CRIU patch and how it is recognized: the installer rebuilds CRIU unless the one found
 * says it carries the patch and its stamp holds this patch file's sha256; the line the patch
 * makes `criu --version` print is the one the agent looks for.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import { hasRlimitsPatch } from '../../../src/compute/docker/criu.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const patchFile = path.join(root, 'scripts/criu/0001-rlimits-from-proc-on-eperm.patch');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-criu-patch-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A stand-in criu whose --version prints `versionText`, with a stamp beside it when given. */
function fakeCriu(name: string, versionText: string, stamp: string | null): string {
  const bin = path.join(work, name);
  fs.writeFileSync(bin, `#!/bin/sh\nprintf '%s' '${versionText}'\n`, { mode: 0o755 });
  if (stamp !== null) fs.writeFileSync(`${bin}.ferry-patch`, `${stamp}\n`);
  return bin;
}

function installerSaysPatched(bin: string): boolean {
  try {
    execFileSync('bash', ['-c', '. scripts/lib/common.sh; . scripts/lib/install.sh; criu_patched "$1"', 'test', bin], { cwd: root, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const patchSha = crypto.createHash('sha256').update(fs.readFileSync(patchFile)).digest('hex');
const patchedVersion = 'Version: 4.2.1\nFerry-patch: rlimits-from-proc\n';

test('the installer keeps only a build that reports the patch and whose stamp matches this patch file', () => {
  expect(installerSaysPatched(fakeCriu('patched', patchedVersion, patchSha))).toBe(true);
  expect(installerSaysPatched(fakeCriu('unpatched', 'Version: 4.2.1\n', patchSha))).toBe(false);
  expect(installerSaysPatched(fakeCriu('nostamp', patchedVersion, null))).toBe(false);
  // built from an earlier version of the patch: rebuilt
  expect(installerSaysPatched(fakeCriu('stale', patchedVersion, '0'.repeat(64)))).toBe(false);
});

test('the line the patch adds to `criu --version` is the one the agent and the installer recognize', () => {
  const patch = fs.readFileSync(patchFile, 'utf8');
  const printed = /^\+\s*pr_msg\("(Ferry-patch: [^"\\]*)\\n"\);$/m.exec(patch)?.[1];
  expect(printed).toBe('Ferry-patch: rlimits-from-proc');
  expect(hasRlimitsPatch(`Version: 4.2.1\n${printed}\n`)).toBe(true);
  expect(hasRlimitsPatch('Version: 4.2.1\n')).toBe(false);
  // the EPERM fallback is in the function that dumps the limits
  expect(patch).toMatch(/^\+\s*if \(errno == EPERM && !rlimit_from_proc\(pid, res, &lim\)\) \{$/m);
});
