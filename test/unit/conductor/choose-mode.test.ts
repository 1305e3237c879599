import { describe, expect, it } from '@jest/globals';
import { chooseMode } from '../../../src/conductor/modes/index.js';

describe('the mode of a new migration', () => {
  it('is post-copy when asked for, else stop-and-copy (pre-copy is never chosen: no driver can pre-dump)', () => {
    expect(chooseMode(true)).toBe('post-copy');
    expect(chooseMode(false)).toBe('stop-and-copy');
  });
});
