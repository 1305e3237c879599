/**
 * `ferry-status upgrade check` run for real against the development cloud: its database, the
 * controller's config file and policy file, with the conductor and both compute agents
 * recording their service versions as they run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVICE_VERSION } from '../../../src/common/service-version.js';
import { cloud, repoRoot } from '../../helpers/cloud.js';

const status = path.join(repoRoot, 'dist/cmd/status.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [status, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the check until it passes or `deadlineMs` runs out (a service that just started may not have recorded itself yet); the last run. */
async function checkUntilClean(args: string[], deadlineMs = 60_000): Promise<Run> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = await run(args);
    if (r.code === 0 || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 2000));
  }
}

describe('ferry-status upgrade check on the development cloud', () => {
  const conf = () => cloud().config_files.controller;

  it('passes every check (exit 0) and prints the table', async () => {
    const r = await checkUntilClean(['--config-file', conf(), 'upgrade', 'check']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^\+-+\+\n\| Upgrade Check Results +\|\n\+-+\+\n/);
    for (const check of ['Database schema', 'Service versions', 'Compute hosts on old agents', 'Policy file', 'Configuration options']) {
      expect(r.stdout).toContain(`| Check: ${check}`);
    }
    expect(r.stdout.match(/\| Result: Success +\|/g)).toHaveLength(5);
  });

  it('has a record of the conductor and both compute agents at this service version (--json)', async () => {
    const r = await checkUntilClean(['--config-file', conf(), '--json', 'upgrade', 'check']);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout) as { check: string; result: number; details: string | null }[];
    const versions = results.find((x) => x.check === 'Service versions');
    const n = Number(/all (\d+) running service\(s\) at service version (\d+)/.exec(versions?.details ?? '')?.[1]);
    expect(n).toBeGreaterThanOrEqual(3); // one conductor or more, compute1, compute2
    expect(versions?.details).toContain(`at service version ${SERVICE_VERSION}`);
    expect(results.find((x) => x.check === 'Compute hosts on old agents')?.details).toMatch(/^all \d+ up compute host\(s\) report their service version$/);
  });

  it('warns (exit 1) with a second config file that pins [upgrade_levels] compute below this release', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-status-'));
    try {
      const pin = path.join(dir, 'pin.conf');
      fs.writeFileSync(pin, '[upgrade_levels]\ncompute = 1.0\n');
      const r = await run(['--config-file', conf(), '--config-file', pin, '--json', 'upgrade', 'check']);
      expect(r.code).toBe(1);
      const results = JSON.parse(r.stdout) as { check: string; result: number; details: string | null }[];
      expect(results.find((x) => x.check === 'Configuration options')).toMatchObject({
        result: 1,
        details: expect.stringMatching(/\[upgrade_levels\] compute = 1\.0 holds calls/),
      });
      expect(results.find((x) => x.check === 'Service versions')?.details).toContain('ferry-compute RPC 1.0 (pinned)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('warns (exit 1) and counts the rules left on a deprecated default with [oslo_policy] enforce_new_defaults = false', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-status-'));
    try {
      const old = path.join(dir, 'old-defaults.conf');
      fs.writeFileSync(old, '[oslo_policy]\nenforce_new_defaults = false\n');
      const r = await run(['--config-file', conf(), '--config-file', old, '--json', 'upgrade', 'check']);
      expect(r.code).toBe(1);
      const results = JSON.parse(r.stdout) as { check: string; result: number; details: string | null }[];
      expect(results.find((x) => x.check === 'Policy file')).toMatchObject({
        result: 1,
        details: expect.stringMatching(
          /^3 rule\(s\) still let callers through with their deprecated default \(\[oslo_policy\] enforce_new_defaults = false\): "ferry:migration:get"/,
        ),
      });
      // The option is Ferry's: not reported as an unknown one.
      expect(results.find((x) => x.check === 'Configuration options')?.result).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
