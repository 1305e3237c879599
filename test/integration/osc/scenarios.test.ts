/**
 * The tempest-style scenario suite (scenarios/, Python unittest) against the development
 * cloud: the counter, Redis behind a live feed, and the 2016 TCP stream demo.
 */
import { expect, jest, test } from '@jest/globals';
import { repoRoot } from '../../helpers/cloud.js';
import { run } from './helpers.js';

jest.setTimeout(900_000);

test('the three scenarios pass against the development cloud', async () => {
  // No OS_* variables: the suite then takes the development cloud's admin from its status.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OS_')) env[k] = v;
  const r = await run('/usr/bin/python3', ['-m', 'unittest', 'discover', '-v', '-s', 'scenarios', '-t', '.'], {
    cwd: repoRoot,
    env,
    timeout: 850_000,
  });
  console.log(r.stderr);
  expect(r.stderr).toMatch(/^Ran 3 tests in /m);
  expect(r.stderr).not.toMatch(/skipped/);
  for (const kind of ['counter', 'redis', 'stream']) expect(r.stderr).toMatch(new RegExp(`${kind}: client-side downtime \\d+ ms`));
  expect(r.stderr).toMatch(/stream: one connection .*longest pause \d+ ms/);
  expect(r.stderr).toMatch(/\nOK\s*$/);
  expect(r.code).toBe(0);
});
