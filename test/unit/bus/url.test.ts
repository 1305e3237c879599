import { ConfigError } from '../../../src/common/errors.js';
import { parseTransportUrl, redact } from '../../../src/bus/url.js';

describe('parseTransportUrl', () => {
  test('one host with vhost', () => {
    expect(parseTransportUrl('rabbit://ferry:s3cret@127.0.0.1:5672/ferry')).toEqual({
      driver: 'rabbit',
      hosts: [{ hostname: '127.0.0.1', port: 5672, username: 'ferry', password: 's3cret' }],
      virtualHost: 'ferry',
      query: {},
    });
  });
  test('a cluster keeps host order; default port; default vhost', () => {
    const u = parseTransportUrl('rabbit://a:1@h1:5673,b:2@h2/');
    expect(u.hosts).toEqual([
      { hostname: 'h1', port: 5673, username: 'a', password: '1' },
      { hostname: 'h2', port: 5672, username: 'b', password: '2' },
    ]);
    expect(u.virtualHost).toBe('/');
  });
  test('percent-encoded credentials and vhost, IPv6, query', () => {
    const u = parseTransportUrl('rabbit://us%40er:p%3Ass%2Fw@[::1]:5999/%2Fv?ssl=1');
    expect(u.hosts[0]).toEqual({ hostname: '::1', port: 5999, username: 'us@er', password: 'p:ss/w' });
    expect(u.virtualHost).toBe('/v');
    expect(u.query).toEqual({ ssl: '1' });
  });
  test('no credentials means guest, no path means /', () => {
    expect(parseTransportUrl('rabbit://localhost')).toMatchObject({ hosts: [{ username: 'guest', password: 'guest', port: 5672 }], virtualHost: '/' });
  });
  test.each(['amqp1://h/', 'http://h/', 'rabbit://', 'rabbit://h:notaport/', 'rabbit://h:70000/', 'garbage'])('rejects %s', (u) => {
    expect(() => parseTransportUrl(u)).toThrow(ConfigError);
  });
  test('errors and logs never show passwords', () => {
    expect(redact('rabbit://a:pw1@h1,b:pw2@h2/v')).toBe('rabbit://a:***@h1,b:***@h2/v');
    let msg = '';
    try {
      parseTransportUrl('rabbit://a:topsecret@h:bad/');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('***');
    expect(msg).not.toContain('topsecret');
  });
});
