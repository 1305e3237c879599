/**
 * The CPU features pre-check against the real CRIU (issue 20, hole 8): this CPU's own image
 * passes `criu cpuinfo check`; the same image claiming one instruction set this CPU lacks fails
 * it, and the refusal names that feature. (The agents' path on the dev cloud is in
 * prechecks.test.ts, "a source CPU with a feature the target lacks".)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import { checkCpuinfo, compareCpuinfo, cpuRefusals, decodeCpuinfoImage } from '../../../src/compute/docker/cpuinfo.js';
import { craftedCpuinfo } from '../../helpers/cpuinfo.js';

const CRIU = process.env.FERRY_TEST_CRIU ?? 'criu';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cpuinfo-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("this CPU's own image passes criu cpuinfo check; one claiming a feature it lacks fails, and the refusal names it", async () => {
  const { own, crafted, feature } = await craftedCpuinfo(CRIU);
  expect(await checkCpuinfo(CRIU, own, work)).toMatchObject({ passed: true });

  const verdict = await checkCpuinfo(CRIU, crafted, work);
  expect(verdict.passed).toBe(false);
  expect(verdict.log).toMatch(/CPU instruction capabilities do not match/);

  const comparison = compareCpuinfo(decodeCpuinfoImage(crafted), decodeCpuinfoImage(own));
  expect(comparison.missing).toEqual([feature]);
  const [r] = cpuRefusals({ sourceHost: 'src', targetHost: 'dst', criuPassed: verdict.passed, criuLog: verdict.log, comparison });
  expect(r.reason).toBe('cpu_features');
  expect(r.message).toContain(`lacks ${feature}`);
  // the check leaves nothing behind in its work folder
  expect(fs.readdirSync(work)).toEqual([]);
});

test('an image that is not one is refused by CRIU, not trusted', async () => {
  const verdict = await checkCpuinfo(CRIU, Buffer.from('garbage that claims to be a cpuinfo image'), work);
  expect(verdict.passed).toBe(false);
});
