/**
 * Fault settings: a malformed one fails loudly (a fault that silently does nothing would let a
 * fault test pass without its fault), and the page pacing reaches the lazy checkpoint.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { EngineDriver, LazyCheckpointRequest } from '../../../src/compute/driver.js';
import { effectiveFaults, parseFaults, withFaults } from '../../../src/compute/faults.js';

const saved = process.env.FERRY_FAULTS;
afterEach(() => {
  if (saved === undefined) delete process.env.FERRY_FAULTS;
  else process.env.FERRY_FAULTS = saved;
});

describe('fault settings', () => {
  it('takes the known faults with values of their type', () => {
    expect(parseFaults({ failRestore: true, delayAfterCheckpointMs: 4000 }, 't')).toEqual({ failRestore: true, delayAfterCheckpointMs: 4000 });
  });

  it.each([
    [{ delayAfterCheckpoint: 4000 }, /unknown fault "delayAfterCheckpoint"/],
    [{ delayAfterCheckpointMs: '4000' }, /takes a non-negative number/],
    [{ delayAfterCheckpointMs: -1 }, /takes a non-negative number/],
    [{ failRestore: 1 }, /takes a boolean/],
    [[], /must be a JSON object/],
  ])('refuses %j', (value, why) => {
    expect(() => parseFaults(value, 't')).toThrow(why);
  });

  it('FERRY_FAULTS that is not JSON, or names an unknown fault, stops the agent from starting', () => {
    process.env.FERRY_FAULTS = '{failRestore: true}';
    expect(() => effectiveFaults(undefined)).toThrow(/FERRY_FAULTS is not JSON/);
    process.env.FERRY_FAULTS = '{"failRestor": true}';
    expect(() => effectiveFaults(undefined)).toThrow(/unknown fault "failRestor"/);
    process.env.FERRY_FAULTS = '{"failRestore": true}';
    expect(effectiveFaults(undefined)).toEqual({ failRestore: true });
  });

  it('throttlePagesBytesPerSec paces the lazy checkpoint; a driver without post-copy still has none', async () => {
    const seen: LazyCheckpointRequest[] = [];
    const lazy = {
      lazyPages: {
        checkpointLazy: async (_id: string, _name: string, opts: LazyCheckpointRequest) => {
          seen.push(opts);
          return { name: 'n', dir: '/d', bytes: 0, checkpoint_ms: 0, fast: true, page_server: { port: 1, pid: 2 } };
        },
      },
    } as unknown as EngineDriver;
    const req = { pageServerPort: 0, tunnel: { tls: null, token: 't', peerHost: null } } as LazyCheckpointRequest;
    await withFaults(lazy, () => ({ throttlePagesBytesPerSec: 1000 })).lazyPages!.checkpointLazy('c', 'n', req);
    await withFaults(lazy, () => ({})).lazyPages!.checkpointLazy('c', 'n', req);
    expect(seen.map((o) => o.paceBytesPerSec)).toEqual([1000, undefined]);
    expect(withFaults({} as EngineDriver, () => ({})).lazyPages).toBeUndefined();
  });
});
