/** The migration state machine: which status may follow which. Every change goes through `assertTransition`. */
import { InvalidMigrationState } from '../common/errors.js';
import type { MigrationPhase, MigrationStatus } from '../objects/migration.js';

const NEXT: Record<MigrationStatus, MigrationStatus[]> = {
  accepted: ['pre-migrating', 'cancelled', 'failed', 'error'],
  'pre-migrating': ['running', 'cancelled', 'failed', 'error'],
  running: ['post-migrating', 'failed', 'cancelled', 'error'],
  'post-migrating': ['completed', 'failed', 'cancelled', 'error'],
  completed: [],
  failed: [],
  cancelled: [],
  error: [],
};

export function canTransition(from: MigrationStatus, to: MigrationStatus): boolean {
  return from === to || NEXT[from].includes(to);
}

export function assertTransition(uuid: string, from: MigrationStatus, to: MigrationStatus): void {
  if (!canTransition(from, to)) {
    throw new InvalidMigrationState(`migration ${uuid} cannot go from ${from} to ${to}`);
  }
}

/** Before the freeze an abort costs the workload nothing; after it, abort means rolling back. */
export function isBeforeFreeze(status: MigrationStatus): boolean {
  return status === 'accepted' || status === 'pre-migrating';
}

/** Progress shown to users for each status/phase (typed keys: a misspelt phase does not compile). */
export const PROGRESS: Partial<Record<MigrationStatus | `${MigrationStatus}:${MigrationPhase}`, number>> = {
  accepted: 0,
  'pre-migrating:checks': 5,
  'pre-migrating:prepare': 15,
  'running:checkpoint': 40,
  'running:restore': 60, // post-copy: the target starts it before its memory arrived
  'running:post-copy': 75,
  'post-migrating:restore': 80,
  'post-migrating:cleanup': 95,
  completed: 100,
};
