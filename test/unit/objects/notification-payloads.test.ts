/**
 * The versioned notification payloads (Nova's test_notifications object hash test): each payload
 * object's fields hash to the fingerprint recorded for its version, so that changing the fields
 * without a new version fails here. Then the samples in docs/notifications/samples/: one per event
 * type the conductor declares, each the shape of what the code builds, each listed in the docs.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import { VERSIONED_EVENTS } from '../../../src/conductor/notifications.js';
import { countByStatus, type Evacuation } from '../../../src/objects/evacuation.js';
import { newMigration } from '../../../src/objects/migration.js';
import { definePayload, fingerprint, versionedObject, type PayloadDefinition } from '../../../src/objects/notification.js';
import { ContainerMigrationPayload, PAYLOADS, containerMigrationObject, hostEvacuationObject } from '../../../src/objects/notification-payloads.js';
import { loadSamples, sampleDifferences, shapeDifferences } from '../../helpers/notification-samples.js';

/**
 * Every version each payload object ever had, with its fingerprint. Append only: when the fields
 * change, bump the version in src/objects/notification-payloads.ts (minor for an added field,
 * major for a removed or retyped one) and add the new version's line; never edit a recorded one.
 */
const HISTORY: Record<string, Record<string, string>> = {
  ExceptionPayload: { '1.0': '1.0-0230e6a01857c4f587212f8369b296c4' },
  ContainerMigrationPayload: { '1.0': '1.0-2c74b6d79813146b08477c1369ac8c73', '1.1': '1.1-9ece5074a50349328478bdec09001666' },
  EvacuationContainerPayload: { '1.0': '1.0-42caf9e495186f2334d8c5158635eade' },
  HostEvacuationPayload: { '1.0': '1.0-c7a31c1bff9f4c9112473cd7d85f9310' },
};

/** What is wrong with the payload definitions against the recorded history (empty: nothing). */
function versionProblems(defs: readonly PayloadDefinition[], history: Record<string, Record<string, string>>): string[] {
  const out: string[] = [];
  for (const d of defs) {
    const recorded = history[d.name]?.[d.version];
    const now = fingerprint(d);
    if (!recorded) out.push(`${d.name} ${d.version} has no recorded fingerprint: add '${d.version}': '${now}'`);
    else if (recorded !== now) out.push(`${d.name}'s fields changed but its version is still ${d.version}: bump the version and record '${now}' for it`);
    const [major, minor] = d.version.split('.').map(Number);
    const newer = Object.keys(history[d.name] ?? {}).filter((v) => {
      const [M, m] = v.split('.').map(Number);
      return M > major || (M === major && m > minor);
    });
    if (newer.length) out.push(`${d.name} is at ${d.version}, older than the recorded ${newer.join(', ')}`);
  }
  return out;
}

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
      status: 'completed' as const,
      migration_uuid: migration().uuid,
      dest_host: 'compute2',
      reason: null,
      updated_at: now,
    },
  ];
  const e = {
    uuid: '7d3e9c1a-2b4f-4a6d-9e8c-1f0a2b3c4d5e',
    host: 'compute1',
    target_host: null,
    max_parallel: 2,
    post_copy: false,
    status: 'completed' as const,
    host_disabled: true,
  };
  return {
    ...e,
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

describe('payload object versions', () => {
  it('every payload object has the fingerprint recorded for its version', () => {
    expect(versionProblems(PAYLOADS, HISTORY)).toEqual([]);
  });

  it('a field added without a new version is caught, and so is a retyped one', () => {
    const added = definePayload(ContainerMigrationPayload.name, ContainerMigrationPayload.version, { ...ContainerMigrationPayload.fields, vcpus: 'number' });
    expect(versionProblems([added], HISTORY)).toEqual([expect.stringMatching(/^ContainerMigrationPayload's fields changed but its version is still 1\.1/)]);
    const retyped = definePayload(ContainerMigrationPayload.name, '1.1', { ...ContainerMigrationPayload.fields, progress: 'string' });
    expect(versionProblems([retyped], HISTORY)).toHaveLength(1);
    const bumped = definePayload(ContainerMigrationPayload.name, '1.2', added.fields);
    expect(versionProblems([bumped], HISTORY)).toEqual([expect.stringMatching(/has no recorded fingerprint: add '1\.2': '1\.2-[0-9a-f]{32}'/)]);
    expect(versionProblems([bumped], { ...HISTORY, ContainerMigrationPayload: { ...HISTORY.ContainerMigrationPayload, '1.2': fingerprint(bumped) } })).toEqual(
      [],
    );
  });

  it('a payload carries exactly its declared fields with their types', () => {
    expect(() => versionedObject(ContainerMigrationPayload, { ...containerMigrationObject(migration())['ferry_object.data'], extra: 1 })).toThrow(
      /extra is not a declared field/,
    );
    const { progress: _dropped, ...missing } = containerMigrationObject(migration())['ferry_object.data'];
    expect(() => versionedObject(ContainerMigrationPayload, missing)).toThrow(/progress is missing/);
    expect(() => containerMigrationObject({ ...migration(), abort_requested: null as unknown as boolean })).toThrow(/abort_requested is null but not nullable/);
    expect(() => containerMigrationObject({ ...migration(), created_at: 'yesterday' })).toThrow(/created_at is not an ISO 8601 date/);
    expect(() => definePayload('X', '1', {})).toThrow(/not major\.minor/);
    expect(() => definePayload('X', '1.0', { a: 'float' })).toThrow(/unknown field type "float"/);
  });
});

describe('docs/notifications/samples', () => {
  const samples = loadSamples();

  it('holds one sample per versioned event type the conductor sends, and no other', () => {
    expect([...samples.keys()].sort()).toEqual(VERSIONED_EVENTS.map((e) => e.eventType).sort());
  });

  it.each(VERSIONED_EVENTS.map((e) => [e.eventType, e] as const))('%s: its priority and payload object, in the shape the code builds', (eventType, e) => {
    const s = samples.get(eventType)!;
    expect(s.priority).toBe(e.priority.toUpperCase());
    expect(s.publisher_id).toMatch(/^ferry-conductor:/);
    expect(s.payload['ferry_object.name']).toBe(e.payload);
    const built =
      e.payload === 'ContainerMigrationPayload'
        ? containerMigrationObject(
            migration(),
            eventType.endsWith('.error') ? { function_name: 'f', module_name: 'm', exception: 'E', exception_message: 'x', traceback: 't' } : null,
          )
        : hostEvacuationObject(evacuation());
    expect(sampleDifferences(s, { eventType, priority: e.priority, publisherId: 'ferry-conductor:ctl', payload: built })).toEqual([]);
  });

  it('the shape comparison sees a missing key, an extra one, a changed type, and a null where none may be', () => {
    const s = samples.get('container.live_migration.end')!;
    const data = s.payload['ferry_object.data'] as Record<string, unknown>;
    const withData = (d: Record<string, unknown>) => ({ ...s.payload, 'ferry_object.data': d });
    const { uuid: _u, ...noUuid } = data;
    expect(shapeDifferences(s.payload, withData(noUuid))).toEqual(['ferry_object.data.uuid is missing']);
    expect(shapeDifferences(s.payload, withData({ ...data, x: 1 }))).toEqual(['ferry_object.data.x is not in the sample']);
    expect(shapeDifferences(s.payload, withData({ ...data, progress: '100' }))).toEqual(['ferry_object.data.progress: string where the sample has number']);
    expect(shapeDifferences(s.payload, withData({ ...data, status: null }))).toEqual(['ferry_object.data.status: null where the sample has string']);
    expect(shapeDifferences(s.payload, withData({ ...data, dest_host: null }))).toEqual([]); // declared nullable
    expect(shapeDifferences(s.payload, { ...s.payload, 'ferry_object.version': '1.2' })).toEqual([': version 1.2 where the sample has 1.1']);
  });

  it('docs/notifications.md lists every event type with its sample', () => {
    const doc = fs.readFileSync('docs/notifications.md', 'utf8');
    for (const e of VERSIONED_EVENTS) expect(doc).toContain(`[\`${e.eventType}\`](notifications/samples/${e.eventType}.json)`);
    for (const p of PAYLOADS) expect(doc).toContain(`\`${p.name}\` ${p.version}`);
  });
});
