/** The dev cloud's two brokers as the services' transport_url names them. */
import { describe, expect, test } from '@jest/globals';
import { parseTransportUrl } from '../../../src/bus/url.js';
import path from 'node:path';
import { brokerNames, broker, brokerCaFile, brokerTlsUrl, brokerUrl, transportUrl } from '../../../src/devcloud/rabbit.js';
import { RABBIT, stateDir } from '../../../src/devcloud/layout.js';

describe('the dev cloud transport_url', () => {
  test("lists both brokers' TLS ports, 5671 first, then 5674, same user and vhost, TLS verified by the dev cloud CA", () => {
    const u = parseTransportUrl(transportUrl());
    expect(u.hosts.map((h) => [h.hostname, h.port, h.username, h.password])).toEqual([
      ['127.0.0.1', 5671, 'ferry', RABBIT.password],
      ['127.0.0.1', 5674, 'ferry', RABBIT.password],
    ]);
    expect(u.virtualHost).toBe('ferry');
    expect(u.query).toEqual({ ssl: '1', ssl_ca_file: brokerCaFile() });
    expect(brokerCaFile()).toBe(path.join(stateDir, 'pki', 'ca.crt'));
    expect(parseTransportUrl(transportUrl('')).virtualHost).toBe('/');
  });

  test('each broker alone: plain, or TLS', () => {
    expect(brokerUrl('rabbitmq')).toMatch(/^rabbit:\/\/ferry:[^@]+@127\.0\.0\.1:5672\/ferry$/);
    const t = parseTransportUrl(brokerTlsUrl('rabbitmq2'));
    expect([t.hosts[0].port, t.query.ssl]).toEqual([5674, '1']);
  });

  test('each broker alone, with its own node name, ports and state dir', () => {
    expect(brokerNames()).toEqual(['rabbitmq', 'rabbitmq2']);
    expect(parseTransportUrl(brokerUrl('rabbitmq2')).hosts.map((h) => h.port)).toEqual([5673]);
    const [a, b] = brokerNames().map(broker);
    expect([a.node, b.node]).toEqual(['ferry@localhost', 'ferry2@localhost']);
    expect([a.distPort, b.distPort]).toEqual([25672, 25673]);
    expect(a.dir).not.toBe(b.dir);
    expect(a.nodePidFile).not.toBe(b.nodePidFile);
    expect(a.pidFile).not.toBe(b.pidFile);
    // A node's command line must not pass for the other's (one dir name is a prefix of the other).
    expect(`-home ${b.dir} -noshell`.includes(a.marker)).toBe(false);
    // Never the private test broker's (test/helpers/private-rabbit.ts: 5682, 25682).
    expect([a.port, b.port, a.tlsPort, b.tlsPort, a.distPort, b.distPort]).not.toContain(5682);
    expect([a.port, b.port, a.tlsPort, b.tlsPort, a.distPort, b.distPort]).not.toContain(25682);
    expect(new Set([a.port, b.port, a.tlsPort, b.tlsPort]).size).toBe(4);
  });

  test('an unknown broker is refused with the list', () => {
    expect(() => broker('rabbitmq3')).toThrow(/rabbitmq, rabbitmq2/);
  });
});
