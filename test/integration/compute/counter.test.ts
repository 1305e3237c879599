/**
 * The counter moves compute1 -> compute2 and goes on counting from where it was (not from 0),
 * with a file created and a file deleted in its writable layer; then it moves back.
 */
import { expect, jest, test } from '@jest/globals';
import { dk, exists, isRunning, lastCount, logTimings, uniqueName, waitFor, useAgents, migrate } from './helpers.js';

jest.setTimeout(180_000);

const name = uniqueName('counter');

const agents = useAgents([name]);

test('counter compute1 -> compute2 keeps counting, rootfs diff moves, then back', async () => {
  await dk('compute1', ['run', '-d', '--name', name, '-e', 'COUNTER_INTERVAL=0.2', 'ferry/counter']);
  // The writable layer: one file added, one image file deleted (a whiteout).
  await dk('compute1', ['exec', name, 'sh', '-c', 'echo hello-from-compute1 > /made.txt && rm /bin/wget']);
  const before = await waitFor('the counter to reach 5', async () => {
    const n = await lastCount('compute1', name);
    return n >= 5 ? n : null;
  });

  const r = await migrate(agents.a1, agents.a2, name);
  logTimings('counter compute1->compute2', r);
  expect(r.error).toBeNull();
  expect(r.status).toBe('completed');
  expect(await isRunning('compute2', name)).toBe(true);
  expect(await exists('compute1', name)).toBe(false);

  // Counting goes on from where it was: no restart from 1 (the log on compute2 starts empty;
  // the first value it prints is the successor of the last one printed on compute1 or later).
  const after = await waitFor('the counter to print on compute2', async () => {
    const out = await dk('compute2', ['logs', name]);
    const nums = out.split('\n').filter(Boolean).map(Number);
    return nums.length >= 2 ? nums : null;
  });
  expect(after[0]).toBeGreaterThan(before);
  expect(after[1]).toBe(after[0] + 1);
  expect(await dk('compute2', ['exec', name, 'cat', '/made.txt'])).toBe('hello-from-compute1');
  expect(await dk('compute2', ['exec', name, 'sh', '-c', 'test -e /bin/wget && echo present || echo absent'])).toBe('absent');
  expect(await dk('compute2', ['exec', name, 'sh', '-c', 'test -e /bin/nc && echo present || echo absent'])).toBe('present');
  expect(await dk('compute2', ['inspect', '-f', '{{range .Config.Env}}{{println .}}{{end}}', name])).toContain('COUNTER_INTERVAL=0.2');

  // And back.
  const mid = after[after.length - 1];
  const back = await migrate(agents.a2, agents.a1, name);
  logTimings('counter compute2->compute1', back);
  expect(back.error).toBeNull();
  expect(await isRunning('compute1', name)).toBe(true);
  expect(await exists('compute2', name)).toBe(false);
  const again = await waitFor('the counter to print on compute1 again', async () => {
    const out = await dk('compute1', ['logs', name]);
    const nums = out.split('\n').filter(Boolean).map(Number);
    return nums.length >= 1 ? nums : null;
  });
  expect(again[0]).toBeGreaterThan(mid);
  expect(await dk('compute1', ['exec', name, 'cat', '/made.txt'])).toBe('hello-from-compute1');
  expect(await dk('compute1', ['exec', name, 'sh', '-c', 'test -e /bin/wget && echo present || echo absent'])).toBe('absent');
});
