/**
 * The memory a host's heartbeat reports (the scheduler weighs it): on a real engine, the running
 * containers' use as `docker stats` counts it, and the host's total as `docker info` has it.
 */
import { expect, test } from '@jest/globals';
import { dk, makeDriver, removeEverywhere, uniqueName, waitFor } from './helpers.js';

const name = uniqueName('memory');

test('memoryUse counts a running container holding 40 MB, and the host total', async () => {
  const driver = makeDriver('compute1');
  try {
    // 40 MB in the container's /dev/shm: charged to its memory cgroup and not reclaimable as file cache.
    await dk('compute1', [
      'run',
      '-d',
      '--name',
      name,
      '--entrypoint',
      'sh',
      'ferry/counter',
      '-c',
      'dd if=/dev/zero of=/dev/shm/x bs=1M count=40 && echo ready && sleep 600',
    ]);
    await waitFor('the container to fill its memory', async () => (await dk('compute1', ['logs', name])).includes('ready'));
    // What docker stats shows for it alone (e.g. "40.41MiB / 23.59GiB").
    expect(await dk('compute1', ['stats', '--no-stream', '--format', '{{.MemUsage}}', name])).toMatch(/^(3[5-9]|4\d)(\.\d+)?MiB /);
    const m = await driver.memoryUse();
    // Other tests' containers may run on compute1 too: the sum is at least this one's.
    expect(m.used_bytes).toBeGreaterThanOrEqual(35 * 2 ** 20);
    expect(m.total_bytes).toBe(Number(await dk('compute1', ['info', '-f', '{{.MemTotal}}'])));
    expect(m.used_bytes as number).toBeLessThan(m.total_bytes as number);
  } finally {
    await removeEverywhere([name]);
  }
});
