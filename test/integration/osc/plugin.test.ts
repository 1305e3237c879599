/**
 * The plugin's own Python tests (osc-plugin/ferryclient/tests): the client, the progress
 * display and the real `openstack` command against a fake Ferry API, no Keystone needed.
 */
import path from 'node:path';
import { beforeAll, expect, jest, test } from '@jest/globals';
import { repoRoot } from '../../helpers/cloud.js';
import { installPlugin, run } from './helpers.js';

jest.setTimeout(300_000);

beforeAll(async () => {
  expect((await installPlugin()).code).toBe(0);
});

test('the plugin unit tests pass, none skipped', async () => {
  const r = await run('/usr/bin/python3', ['-m', 'unittest', 'discover', '-v'], { cwd: path.join(repoRoot, 'osc-plugin') });
  expect(r.stderr).toMatch(/^Ran \d+ tests in /m);
  expect(r.stderr).not.toMatch(/skipped/);
  expect(r.stderr).toMatch(/\nOK\s*$/);
  expect(r.code).toBe(0);
});
