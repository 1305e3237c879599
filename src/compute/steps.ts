/**
 * The JSON each migration step returns: what travels back over the bus from the compute
 * agents to the conductor. The requests are the argument schemas in methods.ts (named there
 * for readability). Plain data only: IDs, names, addresses, tokens, numbers.
 */
import type { ContainerSpec, HostFacts, Refusal } from './driver.js';

/** host:port of a data channel plus the one-time token that opens it for one migration. */
export interface ChannelGrant {
  address: string;
  token: string;
}

// ---- check_can_migrate_source (source) ----
export interface CheckSourceResult {
  source: HostFacts;
  spec: ContainerSpec;
  /** Lets the target fetch the image from the source (before the freeze). */
  export: ChannelGrant;
}

// ---- check_can_migrate_destination (target) ----
export interface CheckDestinationResult {
  dest: HostFacts;
  image_present: boolean | null;
}

// ---- pre_migration (target) ----
export interface PreMigrationResult {
  dest_host: string;
  container_id: string; // the shell created on the target (not started)
  upload: ChannelGrant; // for live_migration on the source
  image_transferred: boolean;
  image_bytes: number;
  image_ms: number;
  create_ms: number;
  connections_preserved: boolean;
}

/** Where the target fetches a post-copy's memory pages: the source's page server. */
export interface PageServerAddress {
  address: string;
  port: number;
  /** The source host's name, which its certificate must carry (1.2). */
  host?: string | null;
  /** The migration's one-time page tunnel token, 64 hex digits (1.2). */
  token?: string | null;
}

/** The ways an agent moves memory (compute/modes/; pre-copy is not offered: no driver can pre-dump). */
export type MemoryModeName = 'stop-and-copy' | 'post-copy';

// ---- live_migration (source) ----
export interface LiveMigrationResult {
  /** stop-and-copy: everything was sent; post-copy: everything but memory pages, which the page server holds. */
  mode: MemoryModeName;
  page_server: PageServerAddress | null;
  /** The container's memory: the checkpoint's pages (stop-and-copy) or the engine's count of its use (post-copy). */
  memory_total_bytes: number | null;
  container_id: string;
  checkpoint_name: string;
  fast_checkpoint: boolean;
  frozen_at: number; // epoch ms when the freeze began
  checkpoint_ms: number;
  transfer_ms: number;
  memory_bytes: number; // CRIU images
  rootfs_bytes: number; // writable-layer diff (tar bytes)
  volume_bytes: number; // named volumes (tar bytes)
  transferred_bytes: number; // everything sent over the data channel by this step
  parts: { part: string; bytes: number; sha256: string }[];
  /** The disk pre-copy ([compute] disk_precopy on the source): its live rounds and bytes; absent or null when the disk moved in the freeze. */
  disk_precopy?: PrecopyReport | null;
}

/** What the pre-copy did for a migration, as the source reports it. */
export interface PrecopyReport {
  /** Rounds sent while the container ran. */
  rounds: number;
  /** Content bytes those rounds sent. */
  live_bytes: number;
  /** Content bytes the last round sent in the freeze. */
  frozen_bytes: number;
}

// ---- post_migration_at_destination (target) ----
export interface PostMigrationResult {
  container_id: string;
  running: boolean;
  restored_at: number; // epoch ms when the restored process ran: end of the freeze
  place_ms: number; // checkpoint placed, rootfs diff and volumes applied
  restore_ms: number; // start from the checkpoint
  garp_sent: boolean;
  connections_preserved: boolean;
  /** Post-copy: the process runs, its memory pages are still arriving (post_copy_status follows them). */
  post_copy: boolean;
}

// ---- post_copy_status (target) ----
export interface MemoryArrivalResult {
  /** fetching: pages still arriving; complete: all arrived; failed: the container was stopped; unknown: this agent lost track. */
  state: 'fetching' | 'complete' | 'failed' | 'unknown';
  error: string | null;
  completed_at: number | null;
  /** The container's memory in use on the target now: it grows as pages arrive (null when the engine cannot tell). */
  resident_bytes?: number | null;
}

// ---- cleanup / rollback ----
export interface CleanupSourceResult {
  container_removed: boolean;
  volumes_removed: string[];
}
export interface RollbackDestinationResult {
  container_removed: boolean;
  volumes_removed: string[];
  image_removed: boolean;
}
export interface RollbackSourceResult {
  container_id: string;
  running: boolean;
  /** true: restored from the migration's checkpoint (memory kept); false: was still running, or plain start. */
  from_checkpoint: boolean;
  /** false only when the checkpoint was unusable and a plain start was the last resort. */
  state_kept: boolean;
}

export type { Refusal };
