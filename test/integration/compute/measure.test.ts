/**
 * Per-phase timings of the engine (not a pass/fail benchmark, but each run is checked for
 * correctness). Slow: runs only with FERRY_MEASURE=1:
 *   FERRY_MEASURE=1 NODE_OPTIONS=--experimental-vm-modules npx jest test/integration/compute/measure.test.ts --selectProjects integration
 * Prints one `[measure]` JSON line per run and a table at the end.
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import type { MigrationAgent } from '../../../src/compute/agent.js';
import { dk, fillRedis, isRunning, lastCount, makeAgent, redisCli, removeEverywhere, uniqueName, waitFor, migrate, type MigrationRun } from './helpers.js';

jest.setTimeout(1_800_000);
const enabled = process.env.FERRY_MEASURE === '1';
const maybe = enabled ? test : test.skip;

const agents: Record<string, MigrationAgent> = {};
const rows: string[] = [];
const names: string[] = [];

beforeAll(async () => {
  if (!enabled) return;
  agents.c1 = await makeAgent('compute1');
  agents.c2 = await makeAgent('compute2');
  agents.c1fast = await makeAgent('compute1', { fastCheckpoint: true });
});

afterAll(async () => {
  await removeEverywhere(names);
  for (const a of Object.values(agents)) await a.stop();
  if (rows.length) {
    process.stdout.write(
      [
        '| workload | checkpoint path | freeze (downtime) | checkpoint | transfer | restore (place+start) | total | memory image | sent |',
        '|---|---|---|---|---|---|---|---|---|',
        ...rows,
      ].join('\n') + '\n',
    );
  }
});

function record(label: string, fast: boolean, r: MigrationRun) {
  process.stdout.write(`[measure] ${JSON.stringify({ label, fast, ...r, spec: undefined })}\n`);
  const mb = (n: number | null) => `${((n ?? 0) / 1e6).toFixed(1)} MB`;
  rows.push(
    `| ${label} | ${fast ? 'containerd (fast)' : 'Docker API'} | ${r.freeze_ms} ms | ${r.checkpoint_ms} ms | ${r.transfer_ms} ms | ${r.restore_ms} ms (${r.post?.place_ms}+${r.post?.restore_ms}) | ${r.total_ms} ms | ${mb(r.memory_bytes)} | ${mb(r.transferred_bytes)} |`,
  );
}

for (const fast of [false, true]) {
  maybe(`counter (${fast ? 'fast' : 'api'})`, async () => {
    const name = uniqueName('mcount');
    names.push(name);
    await dk('compute1', ['run', '-d', '--name', name, '-e', 'COUNTER_INTERVAL=0.2', 'ferry/counter']);
    const before = await waitFor('count', async () => ((await lastCount('compute1', name)) >= 3 ? lastCount('compute1', name) : null));
    const r = await migrate(fast ? agents.c1fast : agents.c1, agents.c2, name);
    expect(r.error).toBeNull();
    record('counter', fast, r);
    const after = await waitFor('count on compute2', async () => Number((await dk('compute2', ['logs', name])).split('\n')[0]) || null);
    expect(after).toBeGreaterThan(before);
    await removeEverywhere([name]);
  });

  for (const keys of [100_000, 1_000_000]) {
    maybe(`redis ${keys} (${fast ? 'fast' : 'api'})`, async () => {
      const name = uniqueName('mredis');
      names.push(name);
      await dk('compute1', ['run', '-d', '--name', name, 'ferry/redis']);
      await waitFor('redis', async () => (await redisCli('compute1', name, ['PING'])) === 'PONG');
      await fillRedis('compute1', name, keys);
      const r = await migrate(fast ? agents.c1fast : agents.c1, agents.c2, name);
      expect(r.error).toBeNull();
      record(`redis ${keys / 1000}k keys`, fast, r);
      expect(await isRunning('compute2', name)).toBe(true);
      expect(await redisCli('compute2', name, ['DBSIZE'])).toBe(String(keys));
      await removeEverywhere([name]);
    });
  }
}
