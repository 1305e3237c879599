/**
 * The conductor's notifications in both formats, through the real Notifier on a fake transport
 * that records what would be published: `[notifications] notification_format` chooses which are
 * sent, the unversioned ones keep their shape, force-complete's are versioned only.
 */
import { QueueLayout } from '../../../src/bus/queues.js';
import { describe, expect, it } from '@jest/globals';
import { notifierFromConfig, versionedNotifierFromConfig } from '../../../src/bus/index.js';
import { deserializeMsg } from '../../../src/bus/envelope.js';
import { exceptionPayload } from '../../../src/bus/notifier.js';
import type { PublishRequest, Transport } from '../../../src/bus/transport.js';
import { RequestContext } from '../../../src/common/context.js';
import { getLogger } from '../../../src/common/log.js';
import { evacuationNotifier, migrationNotifier } from '../../../src/conductor/notifications.js';
import { applyIni, defaultConfig } from '../../../src/conf/index.js';
import { countByStatus, type Evacuation } from '../../../src/objects/evacuation.js';
import { newMigration } from '../../../src/objects/migration.js';

interface Sent {
  routingKey: string;
  msg: Record<string, unknown>;
}

function fakeTransport(): { transport: Transport; sent: Sent[] } {
  const sent: Sent[] = [];
  const transport = {
    exchange: 'ferry',
    queues: new QueueLayout(),
    publish: async (r: PublishRequest) => {
      sent.push({ routingKey: r.routingKey, msg: deserializeMsg(r.body as Buffer) });
    },
  } as unknown as Transport;
  return { transport, sent };
}

function notifiers(iniText: string) {
  const conf = applyIni(defaultConfig(), iniText, 'test.conf');
  const { transport, sent } = fakeTransport();
  const log = getLogger('test');
  const legacy = notifierFromConfig(conf, transport, 'ferry-conductor:ctl');
  const versioned = versionedNotifierFromConfig(conf, transport, 'ferry-conductor:ctl');
  return { sent, migration: migrationNotifier(legacy, log, versioned), evacuation: evacuationNotifier(legacy, log, versioned) };
}

const ctx = () => new RequestContext({ roles: ['admin'], is_admin: true, user_id: 'u1', project_id: 'p1' });
const migration = () =>
  newMigration({
    uuid: '4f1c2a7e-9b3d-4e5f-8a6b-0c1d2e3f4a5b',
    container_id: 'c'.repeat(64),
    container_name: 'counter',
    source_host: 'compute1',
    dest_host: 'compute2',
  });

function evacuation(): Evacuation {
  const now = new Date().toISOString();
  const containers = [
    {
      container_id: 'c'.repeat(64),
      container_name: 'counter',
      container_status: 'running',
      status: 'pending' as const,
      migration_uuid: null,
      dest_host: null,
      reason: null,
      updated_at: now,
    },
  ];
  return {
    uuid: '7d3e9c1a-2b4f-4a6d-9e8c-1f0a2b3c4d5e',
    host: 'compute1',
    target_host: null,
    max_parallel: 2,
    post_copy: false,
    status: 'running',
    host_disabled: true,
    error: null,
    request_id: null,
    user_id: null,
    project_id: null,
    created_at: now,
    updated_at: now,
    containers,
    counts: countByStatus(containers),
  };
}

const keys = (sent: Sent[]) => sent.map((s) => `${s.routingKey} ${String(s.msg.event_type)}`).sort();

describe('notification_format', () => {
  it('both (the default): each event on notifications.<priority> and versioned_notifications.<priority>', async () => {
    const n = notifiers('');
    await n.migration(ctx(), 'live_migration.start', migration());
    await n.migration(ctx(), 'live_migration.error', { ...migration(), status: 'failed' }, new Error('restore failed'));
    await n.evacuation(ctx(), 'host.evacuate.start', evacuation());
    expect(keys(n.sent)).toEqual([
      'notifications.error container.live_migration.error',
      'notifications.info container.live_migration.start',
      'notifications.info host.evacuate.start',
      'versioned_notifications.error container.live_migration.error',
      'versioned_notifications.info container.live_migration.start',
      'versioned_notifications.info host.evacuate.start',
    ]);
  });

  it('unversioned: nothing on the versioned topic', async () => {
    const n = notifiers('[notifications]\nnotification_format = unversioned\n');
    await n.migration(ctx(), 'live_migration.start', migration());
    await n.evacuation(ctx(), 'host.evacuate.start', evacuation());
    expect(keys(n.sent)).toEqual(['notifications.info container.live_migration.start', 'notifications.info host.evacuate.start']);
  });

  it('versioned: nothing on the unversioned topic; the topics are configurable', async () => {
    const n = notifiers('[notifications]\nnotification_format = versioned\nversioned_notifications_topics = vn, audit_vn\n');
    await n.migration(ctx(), 'live_migration.start', migration());
    await n.evacuation(ctx(), 'host.evacuate.start', evacuation());
    expect(keys(n.sent)).toEqual([
      'audit_vn.info container.live_migration.start',
      'audit_vn.info host.evacuate.start',
      'vn.info container.live_migration.start',
      'vn.info host.evacuate.start',
    ]);
  });

  it('[oslo_messaging_notifications] driver = noop sends neither', async () => {
    const n = notifiers('[oslo_messaging_notifications]\ndriver = noop\n');
    await n.migration(ctx(), 'live_migration.start', migration());
    expect(n.sent).toEqual([]);
  });

  it('refuses a format it does not know, naming the choices', () => {
    expect(() => applyIni(defaultConfig(), '[notifications]\nnotification_format = json\n', 'f')).toThrow(/not one of unversioned, versioned, both/);
  });

  it('force-complete is announced in the versioned format only', async () => {
    const n = notifiers('');
    await n.migration(ctx(), 'live_migration_force_complete.start', migration());
    await n.migration(ctx(), 'live_migration_force_complete.end', { ...migration(), mode: 'post-copy' });
    expect(keys(n.sent)).toEqual([
      'versioned_notifications.info container.live_migration_force_complete.end',
      'versioned_notifications.info container.live_migration_force_complete.start',
    ]);
  });
});

describe('payloads', () => {
  it('unversioned: the migration record as it was, with the exception beside it on errors', async () => {
    const n = notifiers('[notifications]\nnotification_format = unversioned\n');
    const m = { ...migration(), status: 'failed' as const };
    const err = new Error('restore failed');
    await n.migration(ctx(), 'live_migration.error', m, err);
    const msg = n.sent[0].msg;
    expect(msg).toMatchObject({ publisher_id: 'ferry-conductor:ctl', event_type: 'container.live_migration.error', priority: 'ERROR' });
    expect(msg.payload).toEqual({
      'ferry_object.name': 'ContainerMigrationPayload',
      'ferry_object.namespace': 'ferry',
      'ferry_object.version': '1.0',
      'ferry_object.data': { ...m, fault: exceptionPayload(err, 'live_migration', 'ferry.conductor.flow') },
    });
  });

  it('versioned: the declared fields, the fault as a nested ExceptionPayload (null without an error)', async () => {
    const n = notifiers('[notifications]\nnotification_format = versioned\n');
    await n.migration(ctx(), 'live_migration.error', { ...migration(), status: 'failed' }, new Error('restore failed'));
    await n.migration(ctx(), 'live_migration.start', migration());
    const [error, start] = n.sent.map((s) => s.msg.payload as Record<string, Record<string, unknown>>);
    expect(error['ferry_object.data'].fault).toMatchObject({
      'ferry_object.name': 'ExceptionPayload',
      'ferry_object.version': '1.0',
      'ferry_object.data': { exception: 'Error', exception_message: 'restore failed', function_name: 'live_migration', module_name: 'ferry.conductor.flow' },
    });
    expect(start['ferry_object.data'].fault).toBeNull();
    expect(start['ferry_object.data'].status).toBe('accepted');
  });

  it('a versioned payload that cannot be built is logged and dropped, and the unversioned one still goes', async () => {
    const n = notifiers('');
    await n.migration(ctx(), 'live_migration.start', { ...migration(), uuid: 'not-a-uuid' });
    expect(keys(n.sent)).toEqual(['notifications.info container.live_migration.start']);
  });
});
