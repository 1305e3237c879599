/**
 * One way of moving memory, as the conductor's flow (flow.ts) needs it: the phases a migration
 * goes through after the send, and what differs in them. The flow walks `phases` with one loop;
 * a new mode is one file here plus its line in index.ts.
 */
import type { ComputeArgs, ComputeMethod, ComputeResult } from '../../compute/methods.js';
import type { LiveMigrationResult, MemoryArrivalResult, MemoryModeName, PostMigrationResult } from '../../compute/steps.js';
import type { Migration, MigrationPhase, MigrationStatus } from '../../objects/migration.js';

/**
 * What happens in a phase after the send: `restore` (post_migration_at_destination on the
 * target), `settle` (wait until the memory that follows the restore has all arrived), `cleanup`
 * (remove the source's container, record the new host).
 */
export type AfterSendStep = 'restore' | 'settle' | 'cleanup';

export interface ModePhase {
  status: MigrationStatus;
  phase: MigrationPhase;
  step: AfterSendStep;
}

/** What a settle step may use of its flow. */
export interface SettleContext {
  migrationId: string;
  dest: string;
  /** The migration as it entered the phase. */
  migration: Migration;
  pollMs: number;
  ask<M extends ComputeMethod>(host: string, method: M, args: ComputeArgs<M>): Promise<ComputeResult<M>>;
  /** Record progress (memory counters) without a status change. */
  update(fields: Partial<Migration>): Promise<void>;
}

/** What an operator message about a stranded migration names. */
export interface StrandedContext {
  migrationId: string;
  reason: string;
  container: string;
  source: string;
  dest: string;
}

export interface FlowMode {
  readonly name: MemoryModeName;
  /** The phases after the send, in order; the last one's step is `cleanup`. */
  readonly phases: readonly ModePhase[];
  /** The memory counted as moved once the send is done. */
  processedAtSend(live: LiveMigrationResult): number | null;
  /** Why an abort seen after the freeze, before the restore, stops the migration (it is rolled back). */
  readonly abortedAfterFreeze: string;
  /** What post_migration_at_destination needs besides the migration's ID. */
  restoreArgs(live: LiveMigrationResult): Omit<ComputeArgs<'post_migration_at_destination'>, 'migration_id'>;
  /** Whether the target's restore result is this mode's. */
  restoredBy(post: PostMigrationResult): boolean;
  /**
   * The settle step (a mode whose memory follows the restore): its saved step's name, what it
   * does, and the message of a migration that failed after the restore and before it finished:
   * then no copy is whole, so there is no rollback.
   */
  readonly settle?: {
    readonly step: string;
    run(ctx: SettleContext): Promise<MemoryArrivalResult>;
    stranded(c: StrandedContext): string;
  };
}
