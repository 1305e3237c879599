/** The dev cloud's two brokers as the services' transport_url names them. */
import { describe, expect, test } from '@jest/globals';
import { parseTransportUrl } from '../../../src/bus/url.js';
import { BROKER_NAMES, broker, brokerUrl, transportUrl } from '../../../src/devcloud/rabbit.js';
import { RABBIT } from '../../../src/devcloud/layout.js';

describe('the dev cloud transport_url', () => {
  test('lists both brokers, 5672 first, then 5673, same user and vhost', () => {
    const u = parseTransportUrl(transportUrl());
    expect(u.hosts.map((h) => [h.hostname, h.port, h.username, h.password])).toEqual([
      ['127.0.0.1', 5672, 'ferry', RABBIT.password],
      ['127.0.0.1', 5673, 'ferry', RABBIT.password],
    ]);
    expect(u.virtualHost).toBe('ferry');
    expect(parseTransportUrl(transportUrl('')).virtualHost).toBe('/');
  });

  test('each broker alone, with its own node name, ports and state dir', () => {
    expect(BROKER_NAMES).toEqual(['rabbitmq', 'rabbitmq2']);
    expect(parseTransportUrl(brokerUrl('rabbitmq2')).hosts.map((h) => h.port)).toEqual([5673]);
    const [a, b] = BROKER_NAMES.map(broker);
    expect([a.node, b.node]).toEqual(['ferry@localhost', 'ferry2@localhost']);
    expect([a.distPort, b.distPort]).toEqual([25672, 25673]);
    expect(a.dir).not.toBe(b.dir);
    expect(a.nodePidFile).not.toBe(b.nodePidFile);
    expect(a.pidFile).not.toBe(b.pidFile);
    // A node's command line must not pass for the other's (one dir name is a prefix of the other).
    expect(`-home ${b.dir} -noshell`.includes(a.marker)).toBe(false);
    // Never the private test broker's (test/helpers/private-rabbit.ts: 5682, 25682).
    expect([a.port, b.port, a.distPort, b.distPort]).not.toContain(5682);
    expect([a.port, b.port, a.distPort, b.distPort]).not.toContain(25682);
  });

  test('an unknown broker is refused with the list', () => {
    expect(() => broker('rabbitmq3')).toThrow(/rabbitmq, rabbitmq2/);
  });
});
