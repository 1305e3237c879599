import { versionIsCompatible } from '../../../src/bus/version.js';

describe('versionIsCompatible (oslo_messaging._utils.version_is_compatible)', () => {
  test.each([
    ['1.0', '1.0', true],
    ['1.3', '1.0', true],
    ['1.3', '1.3', true],
    ['1.3', '1.4', false],
    ['1.3', '2.0', false],
    ['2.0', '1.9', false],
    ['1.3.2', '1.3.1', true],
    ['1.3.1', '1.3.2', false],
    ['1.3', '1.2.9', true],
    ['1.10', '1.9', true], // numeric, not lexical
    ['1.9', '1.10', false],
  ])('implemented %s, requested %s -> %s', (imp, req, ok) => {
    expect(versionIsCompatible(imp, req)).toBe(ok);
  });
  test('no implemented version accepts anything; no requested version only then', () => {
    expect(versionIsCompatible(null, '7.1')).toBe(true);
    expect(versionIsCompatible(null, null)).toBe(true);
    expect(versionIsCompatible('1.0', null)).toBe(false);
  });
  test('unparsable versions throw', () => {
    expect(() => versionIsCompatible('1.0', '1')).toThrow(RangeError);
    expect(() => versionIsCompatible('1.0', '1.x')).toThrow(RangeError);
  });
});
