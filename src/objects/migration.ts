/**
 * The migration record: what the conductor persists, the API returns, and notifications
 * carry (as ContainerMigrationPayload). Field names are the REST contract.
 */
export const MIGRATION_STATUSES = ['accepted', 'pre-migrating', 'running', 'post-migrating', 'completed', 'failed', 'cancelled', 'error'] as const;
export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** `error`: the outcome could not be learned (a host unreachable past its deadline); the operator must check. */
export const FINAL_STATUSES: readonly MigrationStatus[] = ['completed', 'failed', 'cancelled', 'error'];

/**
 * The step under way inside a status, in the order a migration meets them. `restore` happens in
 * `running` for post-copy (the target starts before its memory arrived) and in `post-migrating`
 * otherwise; `rollback` is set while a rollback after the freeze runs, `rolled-back` once it is
 * done (`failed` or `cancelled`), `needs-operator` with `error`.
 */
export const MIGRATION_PHASES = ['checks', 'prepare', 'checkpoint', 'restore', 'post-copy', 'cleanup', 'rollback', 'rolled-back', 'needs-operator'] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

export interface MigrationTimings {
  freeze_ms: number | null; // downtime: from the freeze to the restored process running
  checkpoint_ms: number | null;
  transfer_ms: number | null;
  restore_ms: number | null;
  total_ms: number | null;
}

/** How memory moves: all of it during the freeze, iterated before it, or fetched by the target after it. */
export const MIGRATION_MODES = ['stop-and-copy', 'pre-copy', 'post-copy'] as const;
export type MigrationMode = (typeof MIGRATION_MODES)[number];

export interface MigrationCounters {
  memory_bytes: number | null; // CRIU image size
  /** Nova's memory counters: the container's memory to move, moved so far, still to move (null until known). */
  memory_total_bytes: number | null;
  memory_processed_bytes: number | null;
  memory_remaining_bytes: number | null;
  rootfs_bytes: number | null; // writable-layer diff
  volume_bytes: number | null;
  image_bytes: number | null; // image streamed when the target lacked it (0 when present)
  transferred_bytes: number | null; // everything sent over the data channel
  /** The disk pre-copy (compute/disksync/): rounds sent while the container ran, their content bytes, and the last round's in the freeze; null when the disk moved in the freeze. */
  disk_rounds: number | null;
  disk_live_bytes: number | null;
  disk_frozen_bytes: number | null;
}

export interface Migration extends MigrationTimings, MigrationCounters {
  uuid: string;
  /** How memory moves; `post-copy` when asked for, or when a force-complete switched to it before the freeze. */
  mode: MigrationMode;
  container_id: string;
  container_name: string;
  source_host: string;
  dest_host: string | null;
  status: MigrationStatus;
  /** Finer-grained step inside a status (null in `accepted` and most final statuses). */
  phase: MigrationPhase | null;
  /** 0..100, for progress bars. */
  progress: number;
  error: string | null;
  /** Whether established TCP connections were carried (shared tenant network) or not (host-local network). */
  connections_preserved: boolean | null;
  abort_requested: boolean;
  request_id: string | null;
  user_id: string | null;
  project_id: string | null;
  created_at: string; // ISO 8601 UTC
  updated_at: string;
}

/** Timings and counters of a migration that has not measured anything yet. */
export function unmeasured(): MigrationTimings & MigrationCounters {
  return {
    freeze_ms: null,
    checkpoint_ms: null,
    transfer_ms: null,
    restore_ms: null,
    total_ms: null,
    memory_bytes: null,
    memory_total_bytes: null,
    memory_processed_bytes: null,
    memory_remaining_bytes: null,
    rootfs_bytes: null,
    volume_bytes: null,
    image_bytes: null,
    transferred_bytes: null,
    disk_rounds: null,
    disk_live_bytes: null,
    disk_frozen_bytes: null,
  };
}

/** A new migration record, as accepted (before any step ran). */
export function newMigration(fields: {
  uuid: string;
  container_id: string;
  container_name: string;
  source_host: string;
  dest_host: string | null;
  mode?: MigrationMode;
  request_id?: string | null;
  user_id?: string | null;
  project_id?: string | null;
}): Migration {
  const now = new Date().toISOString();
  return {
    ...fields,
    container_name: fields.container_name.replace(/^\//, ''),
    mode: fields.mode ?? 'stop-and-copy',
    status: 'accepted',
    phase: null,
    progress: 0,
    error: null,
    ...unmeasured(),
    connections_preserved: null,
    abort_requested: false,
    request_id: fields.request_id ?? null,
    user_id: fields.user_id ?? null,
    project_id: fields.project_id ?? null,
    created_at: now,
    updated_at: now,
  };
}

export function isFinal(status: MigrationStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

/** The versioned wire form carried in notifications (Nova's versioned-object style). */
export const MIGRATION_PAYLOAD_VERSION = '1.0';

export function migrationPayload(m: Migration): Record<string, unknown> {
  return {
    'ferry_object.name': 'ContainerMigrationPayload',
    'ferry_object.namespace': 'ferry',
    'ferry_object.version': MIGRATION_PAYLOAD_VERSION,
    'ferry_object.data': { ...m },
  };
}
