/** The demo's stream verdict passes only on evidence: one connection, numbers before and after the move, no gap. */
import { describe, expect, it } from '@jest/globals';
import { streamVerdict } from '../../../src/devcloud/demo.js';

const reads = (from: number, to: number, t0: number, stepMs: number) => Array.from({ length: to - from + 1 }, (_, i) => ({ n: from + i, t: t0 + i * stepMs }));

describe('stream verdict', () => {
  const window = { asked: 10_000, done: 12_000 };

  it('passes with reads before and after the move on one live connection', () => {
    const v = streamVerdict([...reads(1, 20, 0, 500), ...reads(21, 30, 12_500, 500)], window, true);
    expect(v.ok).toBe(true);
    expect(v.text).toMatch(/20 before the migration and 10 after it/);
  });

  it('fails when the connection had died before the move (numbers only before)', () => {
    const v = streamVerdict(reads(1, 21, 0, 100), window, false);
    expect(v.ok).toBe(false);
    expect(v.text).toMatch(/the connection closed; nothing was read after it/);
  });

  it('fails on a gap, on no reads before, and when the stream never moved', () => {
    expect(streamVerdict([...reads(1, 5, 0, 100), ...reads(7, 9, 13_000, 100)], window, true).text).toMatch(/1 numbers missing/);
    expect(streamVerdict(reads(1, 5, 13_000, 100), window, true).text).toMatch(/nothing was read before/);
    expect(streamVerdict(reads(1, 5, 0, 100), null, true).ok).toBe(false);
  });
});
