/**
 * Notifications both ways between Ferry and real Python oslo.messaging (messagingv2).
 */
import { jest } from '@jest/globals';
import { RequestContext } from '../../../src/common/context.js';
import { NotificationListener, type Notification } from '../../../src/bus/listener.js';
import { Notifier, exceptionPayload } from '../../../src/bus/notifier.js';
import { Transport } from '../../../src/bus/transport.js';
import { PythonPeer, deleteEntities, testBroker, unique, type Broker } from './peer.js';
import { sleep } from '../../../src/common/sleep.js';

jest.setTimeout(120_000);

let broker: Broker;
let transport: Transport;
const declaredQueues: string[] = [];
const newTopic = (priorities: string[]) => {
  const t = unique('notif');
  declaredQueues.push(...priorities.map((p) => `${t}.${p}`));
  return t;
};
const exchange = unique('ferry-bus-test');
const ctx = new RequestContext({ user_id: 'u-n', project_id: 'p-n', roles: ['admin'], auth_token: 'secret-token' });
const versioned = {
  'ferry_object.name': 'ContainerMigrationPayload',
  'ferry_object.namespace': 'ferry',
  'ferry_object.version': '1.0',
  'ferry_object.data': { uuid: 'mig-1', status: 'running', container_name: 'web-ü' },
};

beforeAll(async () => {
  broker = await testBroker();
  transport = Transport.fromUrl(broker.url, { exchange });
  await transport.connect();
});

afterAll(async () => {
  await transport?.close();
  if (broker) await deleteEntities(broker.url, declaredQueues, [exchange]);
  await broker?.stop();
});

test('Ferry notifier -> Python listener: event type, publisher, priority, payload, context', async () => {
  const topic = newTopic(['info', 'error']);
  const py = await PythonPeer.start('listen', { url: broker.url, exchange, topics: topic, priorities: 'info,error' });
  try {
    const notifier = new Notifier(transport, { publisherId: 'ferry-conductor:ctl1', topics: [topic] });
    await notifier.info(ctx, 'container.live_migration.start', versioned);
    const boom = new Error('checkpoint exploded');
    await notifier.error(ctx, 'container.live_migration.error', { ...versioned, exception: exceptionPayload(boom, 'live_migration', 'ferry.compute.manager') });

    const info = await py.next((l) => l.event === 'notification' && l.priority === 'info');
    expect(info.event_type).toBe('container.live_migration.start');
    expect(info.publisher_id).toBe('ferry-conductor:ctl1');
    expect(info.payload).toEqual(versioned);
    const c = info.ctxt as Record<string, unknown>;
    expect(c.user_id).toBe('u-n');
    expect(c.project_id).toBe('p-n');
    expect(c.request_id).toBe(ctx.request_id);
    expect(c).not.toHaveProperty('auth_token'); // oslo sanitizes the context of notifications
    const md = info.metadata as Record<string, unknown>;
    expect(md.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
    expect(md.message_id).toMatch(/^[0-9a-f-]{36}$/);

    const err = await py.next((l) => l.event === 'notification' && l.priority === 'error');
    expect(err.event_type).toBe('container.live_migration.error');
    const ex = (err.payload as Record<string, Record<string, unknown>>).exception;
    expect(ex).toMatchObject({
      function_name: 'live_migration',
      module_name: 'ferry.compute.manager',
      exception: 'Error',
      exception_message: 'checkpoint exploded',
    });
  } finally {
    await py.stop();
  }
});

test('Python notifier -> Ferry listener: event type, publisher, priority, payload, context', async () => {
  const topic = newTopic(['info', 'warn']);
  const got: Notification[] = [];
  const listener = new NotificationListener(transport, { topics: [topic], priorities: ['info', 'warn'] }, (n) => {
    got.push(n);
  });
  await listener.start();
  const py = await PythonPeer.start('client', { url: broker.url, exchange });
  try {
    const payload = { nova_object: 'x', n: 1, list: ['ä', 2] };
    const r = await py.command({
      op: 'notify',
      topics: [topic],
      publisher_id: 'compute.host9',
      event_type: 'instance.create.end',
      priority: 'info',
      payload,
      ctx: { _oslo: true, user_id: 'u-py', project_id: 'p-py', roles: ['member'], request_id: 'req-py-1' },
    });
    expect(r.ok).toBe(true);
    await py.command({ op: 'notify', topics: [topic], publisher_id: 'compute.host9', event_type: 'instance.thing', priority: 'warn', payload: {} });
    const end = Date.now() + 10_000;
    while (got.length < 2 && Date.now() < end) await sleep(50);
    expect(got).toHaveLength(2);
    const info = got.find((n) => n.priority === 'info')!;
    expect(info.eventType).toBe('instance.create.end');
    expect(info.publisherId).toBe('compute.host9');
    expect(info.payload).toEqual(payload);
    expect(info.ctxt.user_id).toBe('u-py');
    expect(info.ctxt.project_id).toBe('p-py');
    expect(info.ctxt.roles).toEqual(['member']);
    expect(info.ctxt.request_id).toBe('req-py-1');
    expect(info.metadata.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$/);
    expect(got.find((n) => n.priority === 'warn')!.eventType).toBe('instance.thing');
  } finally {
    await py.stop();
    await listener.stop();
  }
});

test('notifications sent before the listener starts wait in its queue; the noop driver sends nothing', async () => {
  const topic = newTopic(['info']);
  await new Notifier(transport, { publisherId: 'p', topics: [topic], driver: 'noop' }).info(ctx, 'noop.event', {});
  await new Notifier(transport, { publisherId: 'p', topics: [topic] }).info(ctx, 'early.event', { early: true });
  const got: Notification[] = [];
  const listener = new NotificationListener(transport, { topics: [topic], priorities: ['info'] }, (n) => {
    got.push(n);
  });
  await listener.start();
  try {
    const end = Date.now() + 5000;
    while (got.length < 1 && Date.now() < end) await sleep(50);
    await sleep(300);
    expect(got.map((n) => n.eventType)).toEqual(['early.event']);
  } finally {
    await listener.stop();
  }
});

test('a handler that throws gets the notification again (requeue), then it is acked', async () => {
  const topic = newTopic(['info']);
  let calls = 0;
  const listener = new NotificationListener(transport, { topics: [topic], priorities: ['info'] }, () => {
    calls++;
    if (calls === 1) throw new Error('transient');
    return 'handled';
  });
  await listener.start();
  try {
    await new Notifier(transport, { publisherId: 'p', topics: [topic] }).info(ctx, 'retry.event', {});
    const end = Date.now() + 5000;
    while (calls < 2 && Date.now() < end) await sleep(50);
    await sleep(300);
    expect(calls).toBe(2);
  } finally {
    await listener.stop();
  }
});
