/**
 * A short soak on the dev cloud (the CI run of `npm run soak`): six migrations from a fixed seed —
 * random workloads, modes and faults from the matrix at random moments — and the invariant after
 * each. Any container lost or duplicated, any outcome other than the faults table pins, fails it
 * (countRows/exitCode, unit-tested with fakes in test/unit/soak/).
 */
import { expect, jest, test } from '@jest/globals';
import { countRows, exitCode, renderSoak, runSoak } from '../../../src/soak/run.js';

jest.setTimeout(900_000);

// A seed whose six steps take in the three workloads, both modes and six faults: Keystone down, an
// abort, the source agent killed, CRIU refusing the restore, a name clash, the conductor killed.
const SEED = Number(process.env.FERRY_SOAK_SEED ?? 5);

test('six random migrations under random faults: nothing lost, nothing duplicated, each as pinned', async () => {
  const r = await runSoak({ migrations: 6, seed: SEED, faultRate: 0.7, log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`${renderSoak(r)}\n`);
  expect(r.rows).toHaveLength(6);
  expect(countRows(r.rows)).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, errors: 0 });
  expect(exitCode(r.counts)).toBe(0);
});
