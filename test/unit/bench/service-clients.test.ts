import { describe, expect, it } from '@jest/globals';
import { firstMissing, longestPause } from '../../../src/bench/service-clients.js';

const acks = (...ts: number[]) => ts.map((t, i) => ({ t, v: i + 1 }));

describe('the service clients’ evidence', () => {
  it('the longest pause is the longest span between acknowledgements that overlaps the migration', () => {
    // 100..900 is the migration: the 150..700 span overlaps it, the 1000..2000 one does not.
    expect(longestPause(acks(0, 50, 150, 700, 1000, 2000), 100, 900)).toBe(550);
    // A span that starts before the migration and ends after it counts whole.
    expect(longestPause(acks(0, 50, 3000), 100, 900)).toBe(2950);
    expect(longestPause(acks(0, 50), 100, 900)).toBeNull();
  });

  it('every acknowledged write 1..n must be present; the first missing one is named', () => {
    expect(firstMissing(3, new Set([1, 2, 3, 4]))).toBeNull();
    expect(firstMissing(4, new Set([1, 2, 4]))).toBe(3);
    expect(firstMissing(0, new Set())).toBeNull();
  });
});
