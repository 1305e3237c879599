/** waitStopped: the one poll, after a kill or an exit behind Docker's back, until the engine shows a container stopped. */
import { expect, test } from '@jest/globals';
import { containerRunning, waitStopped } from '../../../src/compute/docker/stopped.js';

/** Answers "running" `times` times, then "stopped"; counts the questions. */
function stopsAfter(times: number) {
  const asked = { n: 0 };
  return { asked, running: () => Promise.resolve(++asked.n <= times) };
}

test('resolves true once it is seen stopped, asking until then', async () => {
  const { asked, running } = stopsAfter(3);
  expect(await waitStopped(running, { timeoutMs: 5_000, intervalMs: 1 })).toBe(true);
  expect(asked.n).toBe(4);
});

test('already stopped: one question, no wait', async () => {
  const { asked, running } = stopsAfter(0);
  expect(await waitStopped(running, { timeoutMs: 0, intervalMs: 10_000 })).toBe(true);
  expect(asked.n).toBe(1);
});

test('still running at the deadline: resolves false after asking more than once', async () => {
  const { asked, running } = stopsAfter(Number.MAX_SAFE_INTEGER);
  const t0 = Date.now();
  expect(await waitStopped(running, { timeoutMs: 60, intervalMs: 5 })).toBe(false);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
  expect(asked.n).toBeGreaterThan(1);
});

test("the engine's error propagates (the caller decides whether gone counts as stopped)", async () => {
  const gone = Object.assign(new Error('no such container'), { statusCode: 404 });
  const container = { inspect: () => Promise.reject(gone) };
  await expect(waitStopped(containerRunning(container), { timeoutMs: 1_000, intervalMs: 1 })).rejects.toBe(gone);
  const running = containerRunning(container);
  expect(await waitStopped(() => running().catch(() => false), { timeoutMs: 1_000, intervalMs: 1 })).toBe(true);
});

test('containerRunning reads State.Running of the inspection', async () => {
  expect(await containerRunning({ inspect: () => Promise.resolve({ State: { Running: true } }) })()).toBe(true);
  expect(await containerRunning({ inspect: () => Promise.resolve({ State: { Running: false } }) })()).toBe(false);
});
