/**
 * The JSON each migration step takes and returns: what travels over the bus between the
 * conductor and the compute agents (`ferry-compute` topic, one method per step). Plain data
 * only: IDs, names, addresses, tokens, numbers.
 */
import type { ContainerSpec, HostFacts, Refusal } from './driver.js';

/** host:port of a data channel plus the one-time token that opens it for one migration. */
export interface ChannelGrant {
  address: string;
  token: string;
}

// ---- check_can_migrate_source (source) ----
export interface CheckSourceRequest {
  migration_id: string;
  container: string; // ID, ID prefix or name on the source
  dest_host: string;
  dest?: HostFacts | null; // from check_can_migrate_destination, when called first
}
export interface CheckSourceResult {
  source: HostFacts;
  spec: ContainerSpec;
  /** Lets the target fetch the image from the source (before the freeze). */
  export: ChannelGrant;
}

// ---- check_can_migrate_destination (target) ----
export interface CheckDestinationRequest {
  migration_id: string;
  source_host: string;
  source?: HostFacts | null;
  /** With the spec, name/port/IP/volume clashes are checked too (pre_migration checks them again). */
  spec?: ContainerSpec | null;
}
export interface CheckDestinationResult {
  dest: HostFacts;
  image_present: boolean | null;
}

// ---- pre_migration (target) ----
export interface PreMigrationRequest {
  migration_id: string;
  source_host: string;
  source?: HostFacts | null;
  spec: ContainerSpec;
  export: ChannelGrant;
}
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

// ---- live_migration (source) ----
export interface LiveMigrationRequest {
  migration_id: string;
  container_id?: string | null; // default: the one from check_can_migrate_source
  upload: ChannelGrant;
  /** Restore on the source right away when anything after the freeze fails (default true). */
  rollback_on_failure?: boolean;
}
export interface LiveMigrationResult {
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
}

// ---- post_migration_at_destination (target) ----
export interface PostMigrationRequest {
  migration_id: string;
}
export interface PostMigrationResult {
  container_id: string;
  running: boolean;
  restored_at: number; // epoch ms when the restored process ran: end of the freeze
  place_ms: number; // checkpoint placed, rootfs diff and volumes applied
  restore_ms: number; // start from the checkpoint
  garp_sent: boolean;
  connections_preserved: boolean;
}

// ---- cleanup / rollback ----
export interface CleanupSourceRequest {
  migration_id: string;
  container_id?: string | null;
}
export interface CleanupSourceResult {
  container_removed: boolean;
  volumes_removed: string[];
}
export interface RollbackDestinationRequest {
  migration_id: string;
}
export interface RollbackDestinationResult {
  container_removed: boolean;
  volumes_removed: string[];
  image_removed: boolean;
}
export interface RollbackSourceRequest {
  migration_id: string;
  container_id?: string | null;
}
export interface RollbackSourceResult {
  container_id: string;
  running: boolean;
  /** true: restored from the migration's checkpoint (memory kept); false: was still running, or plain start. */
  from_checkpoint: boolean;
  /** false only when the checkpoint was unusable and a plain start was the last resort. */
  state_kept: boolean;
}

/** The per-migration record a compute agent keeps on disk (<work_dir>/migrations/<id>/session.json). */
export interface Session {
  migration_id: string;
  role: 'source' | 'target';
  phase: 'checked' | 'prepared' | 'frozen' | 'sent' | 'received' | 'restored' | 'rolled_back' | 'failed';
  container_id: string | null;
  container_name: string | null;
  spec: ContainerSpec | null;
  checkpoint_name: string | null;
  created_volumes: string[];
  image_loaded: boolean;
  live?: LiveMigrationResult;
  pre?: Omit<PreMigrationResult, 'upload'>;
  post?: PostMigrationResult;
  received?: { part: string; bytes: number; sha256: string; entries: number }[];
  updated_at: string;
}

export type { Refusal };
