/**
 * Redis with 100,000 keys moves compute1 -> compute2: all keys are there, and so is a write
 * acknowledged just before the migration started.
 */
import { expect, jest, test } from '@jest/globals';
import { exists, fillRedis, isRunning, logTimings, redisCli, uniqueName, waitFor, dk, makeAgent, useAgents, migrate } from './helpers.js';

jest.setTimeout(300_000);

const name = uniqueName('redis');

const agents = useAgents([name]);

test('redis with 100k keys and a last acknowledged write', async () => {
  await dk('compute1', ['run', '-d', '--name', name, 'ferry/redis']);
  await waitFor('redis to answer', async () => (await redisCli('compute1', name, ['PING'])) === 'PONG');
  await fillRedis('compute1', name, 100_000);
  expect(await redisCli('compute1', name, ['DBSIZE'])).toBe('100000');
  const stamp = `written-${Date.now()}`;
  expect(await redisCli('compute1', name, ['SET', 'last-write', stamp])).toBe('OK');

  const r = await migrate(agents.a1, agents.a2, name);
  logTimings('redis 100k compute1->compute2', r);
  expect(r.error).toBeNull();
  expect(await isRunning('compute2', name)).toBe(true);
  expect(await exists('compute1', name)).toBe(false);
  expect(r.memory_bytes).toBeGreaterThan(5_000_000);
  expect(await redisCli('compute2', name, ['DBSIZE'])).toBe('100001');
  expect(await redisCli('compute2', name, ['GET', 'last-write'])).toBe(stamp);
  expect(await redisCli('compute2', name, ['GET', 'key:1'])).toBe('val:1');
  expect(await redisCli('compute2', name, ['GET', 'key:100000'])).toBe('val:100000');
  // Same process, not a restart: its uptime goes on from before the move.
  const uptime = Number(/uptime_in_seconds:(\d+)/.exec(await redisCli('compute2', name, ['INFO', 'server']))?.[1]);
  expect(uptime).toBeGreaterThanOrEqual(1);
});

test('and back with the containerd fast checkpoint ([compute] fast_checkpoint)', async () => {
  const fast2 = await makeAgent('compute2', { fastCheckpoint: true });
  try {
    expect(await redisCli('compute2', name, ['SET', 'before-back', 'yes'])).toBe('OK');
    const r = await migrate(fast2, agents.a1, name);
    logTimings('redis 100k compute2->compute1 (fast checkpoint)', r);
    expect(r.error).toBeNull();
    expect(await isRunning('compute1', name)).toBe(true);
    expect(await exists('compute2', name)).toBe(false);
    expect(await redisCli('compute1', name, ['DBSIZE'])).toBe('100002');
    expect(await redisCli('compute1', name, ['GET', 'before-back'])).toBe('yes');
    expect(await redisCli('compute1', name, ['GET', 'key:77777'])).toBe('val:77777');
  } finally {
    await fast2.stop();
  }
});
