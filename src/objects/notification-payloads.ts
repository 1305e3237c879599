/**
 * The payload objects of Ferry's versioned notifications, each declared once with its version
 * (Nova's notification payload objects). Changing a field means a new version here and a new
 * fingerprint in test/unit/objects/notification-payloads.test.ts.
 */
import type { Evacuation, EvacuationContainer } from './evacuation.js';
import type { Migration } from './migration.js';
import { definePayload, pickFields, versionedObject, type PayloadDefinition, type VersionedObject } from './notification.js';

/** The exception beside an object in `*.error` notifications (Nova's ExceptionPayload). */
export const ExceptionPayload = definePayload('ExceptionPayload', '1.0', {
  module_name: 'string',
  function_name: 'string',
  exception: 'string',
  exception_message: 'string',
  traceback: 'string',
});

/** A migration as `container.live_migration*` notifications carry it; `fault` is set on errors. */
// 1.1: disk_rounds, disk_live_bytes, disk_frozen_bytes (the disk pre-copy).
export const ContainerMigrationPayload = definePayload('ContainerMigrationPayload', '1.1', {
  uuid: 'uuid',
  mode: 'string',
  container_id: 'string',
  container_name: 'string',
  source_host: 'string',
  dest_host: 'string?',
  status: 'string',
  phase: 'string?',
  progress: 'number',
  error: 'string?',
  connections_preserved: 'boolean?',
  abort_requested: 'boolean',
  request_id: 'string?',
  user_id: 'string?',
  project_id: 'string?',
  created_at: 'datetime',
  updated_at: 'datetime',
  freeze_ms: 'number?',
  checkpoint_ms: 'number?',
  transfer_ms: 'number?',
  restore_ms: 'number?',
  total_ms: 'number?',
  memory_bytes: 'number?',
  memory_total_bytes: 'number?',
  memory_processed_bytes: 'number?',
  memory_remaining_bytes: 'number?',
  rootfs_bytes: 'number?',
  volume_bytes: 'number?',
  image_bytes: 'number?',
  transferred_bytes: 'number?',
  disk_rounds: 'number?',
  disk_live_bytes: 'number?',
  disk_frozen_bytes: 'number?',
  fault: 'object:ExceptionPayload?',
});

/** One container of an evacuation and what became of it. */
export const EvacuationContainerPayload = definePayload('EvacuationContainerPayload', '1.0', {
  container_id: 'string',
  container_name: 'string',
  container_status: 'string',
  status: 'string',
  migration_uuid: 'uuid?',
  dest_host: 'string?',
  reason: 'string?',
  updated_at: 'datetime',
});

/** An evacuation as `host.evacuate.*` notifications carry it. */
export const HostEvacuationPayload = definePayload('HostEvacuationPayload', '1.0', {
  uuid: 'uuid',
  host: 'string',
  target_host: 'string?',
  max_parallel: 'number',
  post_copy: 'boolean',
  status: 'string',
  host_disabled: 'boolean',
  error: 'string?',
  request_id: 'string?',
  user_id: 'string?',
  project_id: 'string?',
  created_at: 'datetime',
  updated_at: 'datetime',
  containers: 'list:object:EvacuationContainerPayload',
  counts: 'dict:number',
});

/** Every payload object, for the fingerprint test and the docs. */
export const PAYLOADS: readonly PayloadDefinition[] = [ExceptionPayload, ContainerMigrationPayload, EvacuationContainerPayload, HostEvacuationPayload];

export interface FaultInfo {
  module_name: string;
  function_name: string;
  exception: string;
  exception_message: string;
  traceback: string;
}

export function exceptionObject(fault: FaultInfo): VersionedObject {
  return versionedObject(ExceptionPayload, pickFields(ExceptionPayload, fault));
}

export function containerMigrationObject(m: Migration, fault: FaultInfo | null = null): VersionedObject {
  return versionedObject(ContainerMigrationPayload, { ...pickFields(ContainerMigrationPayload, m, ['fault']), fault: fault ? exceptionObject(fault) : null });
}

function evacuationContainerObject(c: EvacuationContainer): VersionedObject {
  return versionedObject(EvacuationContainerPayload, pickFields(EvacuationContainerPayload, c));
}

export function hostEvacuationObject(e: Evacuation): VersionedObject {
  return versionedObject(HostEvacuationPayload, {
    ...pickFields(HostEvacuationPayload, e, ['containers', 'counts']),
    containers: e.containers.map(evacuationContainerObject),
    counts: { ...e.counts },
  });
}
