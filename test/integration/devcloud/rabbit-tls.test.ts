/**
 * The development cloud's brokers on TLS: each node has an AMQPS listener with a certificate
 * from the dev cloud's CA, every Ferry service is connected over TLS (RabbitMQ says so per
 * connection), a client with the services' URL calls over TLS and meets plain-AMQP clients
 * on the same vhost, and a client with another CA is refused, naming the broker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { MessagingUnavailable } from '../../../src/common/errors.js';
import { RequestContext } from '../../../src/common/context.js';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import { Transport } from '../../../src/bus/transport.js';
import { uuidHex } from '../../../src/bus/envelope.js';
import { ensureCa } from '../../../src/devcloud/certs.js';
import { rabbitctl } from '../../../src/devcloud/rabbit.js';
import { cloud } from '../../helpers/cloud.js';

jest.setTimeout(120_000);

/** The AMQP connection name of each Ferry service of the dev cloud (`<service>:<[DEFAULT] host>`). */
const SERVICES = ['ferry-api:controller', 'ferry-conductor:controller', 'ferry-compute:compute1', 'ferry-compute:compute2'];
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
});

describe('the dev cloud bus over TLS', () => {
  test.each(['rabbitmq', 'rabbitmq2'])('%s presents a certificate for 127.0.0.1 from the dev cloud CA', async (name) => {
    const b = cloud().rabbit.brokers.find((x) => x.name === name)!;
    expect(b.state).toBe('up');
    const sock = tls.connect({ host: '127.0.0.1', port: b.tls_port, ca: fs.readFileSync(cloud().rabbit.ca_file) });
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('secureConnect', () => resolve());
        sock.once('error', reject);
      });
      expect(sock.authorized).toBe(true);
      expect(sock.getPeerCertificate().subjectaltname).toContain('IP Address:127.0.0.1');
    } finally {
      sock.destroy();
    }
  });

  test("every Ferry service's connection to the first broker is TLS", async () => {
    let byName = new Map<string, string>();
    // Services may be moving back to the first broker after another test: give them a moment.
    for (let i = 0; i < 60; i++) {
      const r = await rabbitctl(['list_connections', 'ssl', 'ssl_protocol', 'client_properties', '--no-table-headers', '--quiet']);
      byName = new Map();
      for (const line of r.stdout.split('\n')) {
        const n = SERVICES.find((s) => line.includes(`"connection_name","${s}"`));
        if (n) byName.set(n, line);
      }
      if (byName.size === SERVICES.length) break;
      await new Promise((r2) => setTimeout(r2, 500));
    }
    expect([...byName.keys()].sort()).toEqual([...SERVICES].sort());
    for (const [, line] of byName) expect(line).toMatch(/^true\s+tlsv1\.[23]\s/);
  });

  test("a client with the services' URL calls over TLS and meets plain-AMQP clients on the same vhost", async () => {
    const topic = `ferry-tls-test-${uuidHex().slice(0, 10)}`;
    const serverT = Transport.fromUrl(cloud().rabbit.services_transport_url, { exchange: 'ferry', connectionName: `ferry-tls-test:${process.pid}` });
    closers.push(() => serverT.close());
    await serverT.connect();
    expect(serverT.tls).toEqual({ caFile: cloud().rabbit.ca_file });
    expect(serverT.connectedHost).toBe(`127.0.0.1:${cloud().rabbit.brokers[0].tls_port}`);
    const server = new RPCServer(serverT, { topic, server: 'x' }, [{ echo: (_c: RequestContext, a: Record<string, unknown>) => a.v }]);
    await server.start();
    closers.push(() => server.stop(1000));
    const plainT = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
    closers.push(() => plainT.close());
    await plainT.connect();
    expect(plainT.tls).toBeUndefined();
    const ctx = new RequestContext({ user_id: 'u-tls' });
    expect(await new RPCClient(plainT, { topic }, { timeoutSeconds: 10 }).call(ctx, 'echo', { v: 'plain to TLS' })).toBe('plain to TLS');
    expect(await new RPCClient(serverT, { topic }, { timeoutSeconds: 10 }).call(ctx, 'echo', { v: 'TLS to TLS' })).toBe('TLS to TLS');
  });

  test('a client that trusts another CA is refused at once, naming the broker', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-other-ca-'));
    closers.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const other = ensureCa(dir, 'Not the dev cloud CA').ca_file;
    const url = cloud().rabbit.brokers[0].tls_transport_url.replace(/ssl_ca_file=[^&]*/, `ssl_ca_file=${other}`);
    const t = Transport.fromUrl(url, { exchange: 'ferry' });
    const started = Date.now();
    const err = await t.connect().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await t.close();
    expect(err).toBeInstanceOf(MessagingUnavailable);
    expect(err!.message).toContain(
      `RabbitMQ 127.0.0.1:${cloud().rabbit.brokers[0].tls_port}: its TLS certificate is not signed by a CA in ssl_ca_file ${other}`,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
