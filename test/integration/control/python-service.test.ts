/**
 * Another OpenStack service, written in Python with oslo.messaging, asks Ferry's conductor
 * to migrate a container over the bus and hears how it went from the notifications, without
 * knowing Ferry is not Python. Real oslo.messaging, real conductor, real migration.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { cloud } from '../../helpers/cloud.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { sleep } from '../../../src/common/sleep.js';
import { waitKnown } from '../../helpers/ferry.js';
import { PythonPeer } from '../bus/peer.js';

const name = uniqueName('py-asks');
const c1 = engine('compute1');
const c2 = engine('compute2');
const peers: PythonPeer[] = [];

afterAll(async () => {
  for (const p of peers) await p.stop();
  await removeQuietly(c1, name);
  await removeQuietly(c2, name);
});

describe('a Python oslo.messaging service drives Ferry', () => {
  it('calls migrate_container on topic ferry-conductor and hears container.live_migration.end', async () => {
    const url = cloud().rabbit.transport_url;
    const listener = await PythonPeer.start('listen', {
      url,
      exchange: 'ferry',
      topics: 'notifications',
      priorities: 'info,error',
      pool: `py-${randomUUID().slice(0, 8)}`,
    });
    peers.push(listener);
    const client = await PythonPeer.start('client', { url, exchange: 'ferry' });
    peers.push(client);

    const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name });
    await ct.start();
    await waitKnown(name, 'compute1');

    const ctx = { request_id: `req-${randomUUID()}`, user: 'nova', project_id: 'service', roles: ['admin'], is_admin: true };
    const r = await client.command({
      op: 'call',
      topic: 'ferry-conductor',
      method: 'migrate_container',
      version: '1.0',
      args: { container: name, host: 'compute2' },
      ctx,
    });
    expect(r.ok).toBe(true);
    const m = r.result as { uuid: string; status: string; source_host: string; dest_host: string; request_id: string };
    expect(m).toMatchObject({ status: 'accepted', source_host: 'compute1', dest_host: 'compute2', request_id: ctx.request_id });

    // The Python side polls get_migration like any caller would ...
    let status = m.status;
    for (let i = 0; i < 300 && !['completed', 'failed', 'cancelled'].includes(status); i++) {
      await sleep(200);
      const g = await client.command({ op: 'call', topic: 'ferry-conductor', method: 'get_migration', version: '1.0', args: { migration_id: m.uuid } });
      expect(g.ok).toBe(true);
      status = (g.result as { status: string }).status;
    }
    expect(status).toBe('completed');

    // ... and its notification listener heard the end, with Ferry's versioned payload.
    const end = await listener.next((l) => {
      const data = (l.payload as Record<string, { uuid?: string }> | undefined)?.['ferry_object.data'];
      return l.event_type === 'container.live_migration.end' && data?.uuid === m.uuid;
    }, 30_000);
    expect(end.publisher_id).toMatch(/^ferry-conductor:/);
    expect((end.payload as Record<string, unknown>)['ferry_object.name']).toBe('ContainerMigrationPayload');

    // Errors reach Python as exceptions carrying Ferry's class name.
    const bad = await client.command({ op: 'call', topic: 'ferry-conductor', method: 'get_migration', version: '1.0', args: { migration_id: 'nope' } });
    expect(bad.ok).toBe(false);
    expect(JSON.stringify(bad.error)).toMatch(/MigrationNotFound/);
    // A caller asking for an RPC version Ferry does not have is refused, as oslo.messaging would.
    const v2 = await client.command({ op: 'call', topic: 'ferry-conductor', method: 'get_migration', version: '2.0', args: { migration_id: m.uuid } });
    expect(v2.ok).toBe(false);
    expect(JSON.stringify(v2.error)).toMatch(/UnsupportedVersion/);
  });
});
