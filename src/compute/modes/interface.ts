/**
 * One way of moving a container's memory, as the agent's steps need it. The agent (agent.ts)
 * tells the story of each step the same way for every mode; where the ways differ (how the
 * source freezes, how the target restores, what the memory still does after the restore, how
 * each side rolls back) it asks the record's mode. A new mode is one file here plus its line in
 * index.ts.
 */
import type { TlsMaterial } from '../datachannel/tls.js';
import type { CheckpointResult, EngineDriver, HostModes, RestoreResult } from '../driver.js';
import type { PostMigrationRequest } from '../methods.js';
import type { AgentRecord, AgentRecordStore } from '../records.js';
import type { MemoryModeName, PageServerAddress, MemoryArrivalResult, PostMigrationResult } from '../steps.js';

/** What a mode uses of its agent. */
export interface ModeHost {
  readonly host: string;
  readonly driver: EngineDriver;
  readonly records: AgentRecordStore;
  /** The data channel's certificates (null = insecure channel). */
  readonly tunnelTls: TlsMaterial | null;
  /** The address (without port) peers reach this host at. */
  advertisedHost(): string;
  /** The modes this host offers now (cached by the agent). */
  offered(): Promise<HostModes>;
}

/** A source frozen for the send: its checkpoint, and where memory not in it is served from. */
export interface Frozen {
  checkpoint: CheckpointResult;
  frozenAt: number;
  /** Where the target fetches the memory the checkpoint leaves out (null: it is all in it). */
  pageServer: PageServerAddress | null;
}

export interface MemoryMode {
  readonly name: MemoryModeName;
  /** Refuse, with a typed error saying why, when this host cannot or may not move memory this way. */
  require(): Promise<void>;

  // ---- source ----
  /** Freeze the running container into the checkpoint `name` (the record is `frozen`, restarts are held). */
  freeze(r: AgentRecord, containerId: string, name: string): Promise<Omit<Frozen, 'frozenAt'>>;
  /**
   * Asked again after the freeze: go on from what this mode keeps frozen, or throw why it cannot.
   * Absent: the source is stopped and the generic path sends its checkpoint again.
   */
  continueFrozen?(r: AgentRecord, name: string): Frozen;
  /** The container's memory as the result reports it (`checkpointBytes`: the memory the checkpoint holds). */
  memoryTotal(r: AgentRecord, checkpointBytes: number): number | null;
  /** Before the source's container is removed: wait until it has given away all its memory. */
  settleSource(r: AgentRecord): Promise<void>;
  /**
   * Roll the frozen source back when this mode holds it in a state of its own; true when it runs
   * again (verified by the agent), false to take the generic way (restore or start).
   */
  rollbackSource(r: AgentRecord, containerId: string, name: string): Promise<boolean>;
  /** After an agent restart, a frozen source: end what the earlier run left of this mode; true when the record changed. */
  abandonAfterRestart(r: AgentRecord): boolean;

  // ---- target ----
  /** Whether a post_migration_at_destination request asks for this mode. */
  matchesRestore(req: PostMigrationRequest): boolean;
  /** Refuse a restore request this mode cannot serve, before anything is placed. */
  checkRestore(r: AgentRecord, req: PostMigrationRequest): void;
  /** Start the container from the placed checkpoint. */
  restore(r: AgentRecord, containerId: string, name: string, req: PostMigrationRequest): Promise<RestoreResult>;
  /** What the restore's result says about this mode (whether memory is still arriving). */
  restoredTraits(): Pick<PostMigrationResult, 'post_copy'>;
  /**
   * How memory still arrives after the restore (the post_copy_status step); absent: it all came
   * with the checkpoint, so after the restore there is nothing left to roll back to.
   */
  arrival?(r: AgentRecord, name: string): Promise<MemoryArrivalResult>;
  /** A target rolled back before its restore finished: end what this mode still runs for it. */
  rollbackTarget(r: AgentRecord, name: string): Promise<void>;
}
