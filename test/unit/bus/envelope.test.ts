import { MalformedMessage, deserializeMsg, pyJson, serializeMsg } from '../../../src/bus/envelope.js';

describe('envelope', () => {
  test('2.0 envelope: oslo.message is a JSON string inside the JSON body', () => {
    const body = serializeMsg({ method: 'm', args: { a: 1 } });
    const outer = JSON.parse(body.toString()) as Record<string, unknown>;
    expect(Object.keys(outer).sort()).toEqual(['oslo.message', 'oslo.version']);
    expect(outer['oslo.version']).toBe('2.0');
    expect(typeof outer['oslo.message']).toBe('string');
    expect(JSON.parse(outer['oslo.message'] as string)).toEqual({ method: 'm', args: { a: 1 } });
  });

  test('bytes match what Python json.dumps writes (separators, ASCII escapes)', () => {
    // json.dumps({"b": [1, "é😀"], "a": None}) in Python 3:
    expect(pyJson({ b: [1, 'é😀'], a: null })).toBe('{"b": [1, "\\u00e9\\ud83d\\ude00"], "a": null}');
    expect(pyJson({ s: 'a,b:c "q"' })).toBe('{"s": "a,b:c \\"q\\""}');
    expect(serializeMsg({ x: 1 }).toString()).toBe('{"oslo.version": "2.0", "oslo.message": "{\\"x\\": 1}"}');
  });

  test('round trip keeps unicode and nesting', () => {
    const msg = { t: 'héllo ✓ 😀', n: [1, { m: null }], b: false };
    expect(deserializeMsg(serializeMsg(msg))).toEqual(msg);
  });

  test('a dict without both envelope keys is the 1.0 form, taken as is', () => {
    expect(deserializeMsg(Buffer.from('{"method": "x", "oslo.version": "2.0"}'))).toEqual({ method: 'x', 'oslo.version': '2.0' });
  });

  test.each([
    ['not JSON', 'nope'],
    ['not an object', '[1]'],
    ['incompatible envelope version', '{"oslo.version": "3.0", "oslo.message": "{}"}'],
    ['newer minor envelope version', '{"oslo.version": "2.1", "oslo.message": "{}"}'],
    ['inner not JSON', '{"oslo.version": "2.0", "oslo.message": "{"}'],
    ['inner not a string', '{"oslo.version": "2.0", "oslo.message": {}}'],
    ['inner not an object', '{"oslo.version": "2.0", "oslo.message": "5"}'],
  ])('malformed: %s', (_n, text) => {
    expect(() => deserializeMsg(Buffer.from(text))).toThrow(MalformedMessage);
  });

  test('an older compatible envelope minor is accepted', () => {
    expect(deserializeMsg(Buffer.from('{"oslo.version": "2.0", "oslo.message": "{\\"a\\": 1}"}'))).toEqual({ a: 1 });
  });
});
