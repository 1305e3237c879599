/** The development cloud's control-plane services are real and usable: RabbitMQ and Keystone. */
import amqp from 'amqplib';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { passwordAuthBody } from '../../../src/identity/keystone.js';
import { RABBIT } from '../../../src/devcloud/layout.js';
import { cloud } from '../../helpers/cloud.js';

function amqpUrl(transportUrl: string): string {
  return transportUrl.replace(/^rabbit:/, 'amqp:');
}

async function token(c: ReturnType<typeof cloud>['keystone']['admin']): Promise<Response> {
  return fetch(`${cloud().keystone.auth_url}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(passwordAuthBody(c)),
  });
}

describe('RabbitMQ', () => {
  it("lists both brokers' TLS ports in the services' transport_url, 5671 first; clients get the first alone, plain", () => {
    const brokers = cloud().rabbit.brokers;
    expect(brokers.map((b) => [b.name, b.port, b.tls_port])).toEqual([
      ['rabbitmq', 5672, 5671],
      ['rabbitmq2', 5673, 5674],
    ]);
    expect(cloud().rabbit.services_transport_url).toBe(
      `rabbit://ferry:${RABBIT.password}@127.0.0.1:5671,ferry:${RABBIT.password}@127.0.0.1:5674/ferry?ssl=1&ssl_ca_file=${cloud().rabbit.ca_file}`,
    );
    expect(cloud().rabbit.transport_url).toBe(brokers[0].transport_url);
    for (const f of Object.values(cloud().config_files)) {
      expect(fs.readFileSync(f, 'utf8')).toContain(`transport_url = ${cloud().rabbit.services_transport_url}\n`);
    }
  });

  it.each(['rabbitmq', 'rabbitmq2'])('%s carries a message as the ferry user on vhost ferry', async (name) => {
    const url = cloud().rabbit.brokers.find((b) => b.name === name)!.transport_url;
    expect(url).toMatch(/^rabbit:\/\/ferry:[^@]+@127\.0\.0\.1:567[23]\/ferry$/);
    const conn = await amqp.connect(amqpUrl(url));
    try {
      const ch = await conn.createChannel();
      const q = await ch.assertQueue('', { exclusive: true });
      const body = `hello ${randomUUID()}`;
      ch.sendToQueue(q.queue, Buffer.from(body));
      const got = await new Promise<string>((resolve) => {
        void ch.consume(q.queue, (m) => m && resolve(m.content.toString()), { noAck: true });
      });
      expect(got).toBe(body);
    } finally {
      await conn.close();
    }
  });

  it.each(['rabbitmq', 'rabbitmq2'])('%s refuses a wrong password', async (name) => {
    const bad = amqpUrl(cloud().rabbit.brokers.find((b) => b.name === name)!.transport_url).replace(/:[^:@/]+@/, ':wrong@');
    await expect(amqp.connect(bad)).rejects.toThrow(/ACCESS_REFUSED|403/);
  });
});

describe('Keystone', () => {
  it('issues tokens for admin and demo, and admin can validate the demo token', async () => {
    const admin = await token(cloud().keystone.admin);
    const demo = await token(cloud().keystone.demo);
    expect(admin.status).toBe(201);
    expect(demo.status).toBe(201);
    const adminToken = admin.headers.get('x-subject-token') as string;
    const demoToken = demo.headers.get('x-subject-token') as string;
    const demoBody = (await demo.json()) as { token: { roles: { name: string }[] } };
    expect(demoBody.token.roles.map((r) => r.name)).not.toContain('admin');

    const v = await fetch(`${cloud().keystone.auth_url}/auth/tokens?nocatalog`, {
      headers: { 'x-auth-token': adminToken, 'x-subject-token': demoToken },
    });
    expect(v.status).toBe(200);
    const body = (await v.json()) as { token: { user: { name: string }; project: { name: string } } };
    expect(body.token.user.name).toBe('demo');
    expect(body.token.project.name).toBe('demo');

    const bogus = await fetch(`${cloud().keystone.auth_url}/auth/tokens`, {
      headers: { 'x-auth-token': adminToken, 'x-subject-token': 'gAAAAAnot-a-token' },
    });
    expect(bogus.status).toBe(404);
  });

  it('answers a wrong password with 401', async () => {
    const r = await token({ ...cloud().keystone.demo, password: 'not-the-password' });
    expect(r.status).toBe(401);
  });

  it('has the ferry service user with the admin role in project service', async () => {
    const r = await token(cloud().keystone.service);
    expect(r.status).toBe(201);
    const body = (await r.json()) as { token: { roles: { name: string }[]; project: { name: string } } };
    expect(body.token.project.name).toBe('service');
    expect(body.token.roles.map((x) => x.name)).toContain('admin');
  });
});
