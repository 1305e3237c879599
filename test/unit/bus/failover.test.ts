/** Where a transport goes back to when it runs on a later host of its transport_url. */
import { describe, expect, test } from '@jest/globals';
import { failbackCandidates, parseTransportUrl } from '../../../src/bus/url.js';

describe('failbackCandidates', () => {
  test('on the first host (or before any connection) there is nothing to move back to', () => {
    expect(failbackCandidates(0)).toEqual([]);
    expect(failbackCandidates(-1)).toEqual([]);
  });

  test('from a later host: every host listed before it, the first first', () => {
    expect(failbackCandidates(1)).toEqual([0]);
    expect(failbackCandidates(3)).toEqual([0, 1, 2]);
  });

  test('services on different later hosts all aim at the same, first, host', () => {
    const u = parseTransportUrl('rabbit://u:p@h1:5672,u:p@h2:5673,u:p@h3:5674/v');
    const aims = [1, 2].map((i) => u.hosts[failbackCandidates(i)[0]].hostname);
    expect(aims).toEqual(['h1', 'h1']);
  });
});
