/**
 * The evacuation record: one host emptied by live-migrating each of its running containers
 * (Nova's host-evacuate-live), as the conductor persists it and the API returns it. Every
 * container the host had is listed with what became of it, so that none is silently skipped.
 */
import type { MigrationStatus } from './migration.js';

/**
 * `running` while containers are still being moved; `completed` when every running container
 * was moved; `incomplete` when some were refused or their migration did not complete (see
 * `containers`); `error` when the evacuation itself could not go on (its `error` says why).
 */
/** The most migrations one evacuation may keep unfinished at once. */
export const MAX_PARALLEL_LIMIT = 64;

export const EVACUATION_STATUSES = ['running', 'completed', 'incomplete', 'error'] as const;
export type EvacuationStatus = (typeof EVACUATION_STATUSES)[number];

/**
 * What became of one container: `pending` (waits for a free slot), `migrating` (its migration
 * runs), the migration's final status (`completed`, `failed`, `cancelled`, `error`), `refused`
 * (the conductor's pre-checks refused to start a migration: `reason` says why) or `not-moved`
 * (it was not running: only running containers are live-migrated).
 */
export const EVACUATION_CONTAINER_STATUSES = ['pending', 'migrating', 'completed', 'failed', 'cancelled', 'error', 'refused', 'not-moved'] as const;
export type EvacuationContainerStatus = (typeof EVACUATION_CONTAINER_STATUSES)[number];

export interface EvacuationContainer {
  container_id: string;
  container_name: string;
  /** The container's own state when the evacuation listed it (Docker's: running, exited...). */
  container_status: string;
  status: EvacuationContainerStatus;
  migration_uuid: string | null;
  dest_host: string | null;
  /** Why it was not moved (a refusal, a failed migration's error, "not running"), else null. */
  reason: string | null;
  updated_at: string;
}

export interface Evacuation {
  uuid: string;
  host: string;
  /** The host asked for, or null: each container goes where the scheduler chooses. */
  target_host: string | null;
  /** At most this many of the evacuation's migrations are unfinished at once. */
  max_parallel: number;
  post_copy: boolean;
  status: EvacuationStatus;
  /** Whether this evacuation disabled the host (it was enabled when the evacuation began). */
  host_disabled: boolean;
  error: string | null;
  request_id: string | null;
  user_id: string | null;
  project_id: string | null;
  created_at: string;
  updated_at: string;
  containers: EvacuationContainer[];
  /** How many containers are in each status (every status present, zeros included). */
  counts: Record<EvacuationContainerStatus, number>;
}

/** The statuses after which a container's part of the evacuation is over. */
export function isContainerDone(s: EvacuationContainerStatus): boolean {
  return s !== 'pending' && s !== 'migrating';
}

/** A finished migration's status as the container's outcome in an evacuation. */
export function outcomeOf(status: MigrationStatus): EvacuationContainerStatus {
  return status === 'completed' || status === 'failed' || status === 'cancelled' || status === 'error' ? status : 'migrating';
}

export function countByStatus(items: readonly { status: EvacuationContainerStatus }[]): Record<EvacuationContainerStatus, number> {
  const counts = Object.fromEntries(EVACUATION_CONTAINER_STATUSES.map((s) => [s, 0])) as Record<EvacuationContainerStatus, number>;
  for (const i of items) counts[i.status] += 1;
  return counts;
}

/** The evacuation's status once no container is pending or migrating. */
export function finalStatus(items: readonly { status: EvacuationContainerStatus }[]): EvacuationStatus {
  if (items.some((i) => !isContainerDone(i.status))) return 'running';
  const moved = items.every((i) => i.status === 'completed' || i.status === 'not-moved');
  return moved ? 'completed' : 'incomplete';
}

/** The versioned wire form carried in `host.evacuate.*` notifications. */
export const EVACUATION_PAYLOAD_VERSION = '1.0';

export function evacuationPayload(e: Evacuation): Record<string, unknown> {
  return {
    'ferry_object.name': 'HostEvacuationPayload',
    'ferry_object.namespace': 'ferry',
    'ferry_object.version': EVACUATION_PAYLOAD_VERSION,
    'ferry_object.data': { ...e },
  };
}
