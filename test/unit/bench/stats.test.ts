import { describe, expect, test } from '@jest/globals';
import { computeDowntime, fmtMs, median, ratio, stat } from '../../../src/bench/stats.js';
import type { ProbeSample } from '../../../src/bench/types.js';

function answers(ts: number[], ok = true): ProbeSample[] {
  return ts.map((t) => ({ t, ok, v: String(t) }));
}

describe('computeDowntime', () => {
  test('the largest gap between answers that overlaps the migration window', () => {
    const s = answers([1000, 1010, 1020, 1030, 1900, 1910, 1920]);
    expect(computeDowntime(s, 1025, 1950)).toEqual({ downtime_ms: 870, last_before: 1030, first_after: 1900 });
  });

  test('failures (refused, timeouts) between the answers do not shorten the gap', () => {
    const s = [...answers([0, 10, 20]), ...answers([30, 40, 50, 60], false), ...answers([500, 510])];
    expect(computeDowntime(s, 15, 520)?.downtime_ms).toBe(480);
  });

  test('samples need not be sorted', () => {
    const s = answers([1920, 1000, 1900, 1030, 1010]);
    expect(computeDowntime(s, 1000, 1950)?.downtime_ms).toBe(870);
  });

  test('a larger gap outside the window does not count', () => {
    const s = answers([0, 5000, 5010, 5020, 5300, 5310]);
    expect(computeDowntime(s, 5015, 5305)).toEqual({ downtime_ms: 280, last_before: 5020, first_after: 5300 });
  });

  test('a gap that starts before the window and ends inside it counts (the freeze began before the call returned)', () => {
    const s = answers([100, 110, 400, 410]);
    expect(computeDowntime(s, 200, 300)?.downtime_ms).toBe(290);
  });

  test('no answer after the migration: null', () => {
    expect(computeDowntime(answers([0, 10, 20]), 25, 900)).toBeNull();
    expect(computeDowntime([], 0, 10)).toBeNull();
  });
});

describe('median and spread', () => {
  test('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  test('stat ignores missing values and reports half the range as spread', () => {
    expect(stat([100, null, 140, 120, undefined])).toEqual({ n: 3, median: 120, min: 100, max: 140, spread: 20 });
    expect(stat([null])).toEqual({ n: 0, median: null, min: null, max: null, spread: null });
    expect(stat([7]).spread).toBe(0);
  });

  test('ratio and formatting', () => {
    expect(ratio(3000, 1500)).toBe(2);
    expect(ratio(1000, 3000)).toBe(0.33);
    expect(ratio(null, 1)).toBeNull();
    expect(ratio(1, 0)).toBeNull();
    expect(fmtMs(1234.4)).toBe('1234 ms');
    expect(fmtMs(26140)).toBe('26.1 s');
    expect(fmtMs(null)).toBe('–');
  });
});
