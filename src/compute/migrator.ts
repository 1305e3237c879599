/**
 * One migration between two agents, step by step, exactly in the order the conductor drives
 * them over RPC (the conductor does the same with rpcapi calls; tests and
 * scripts/measure-engine.ts use this class directly):
 *
 *   check_can_migrate_destination(target, host facts only)
 *   check_can_migrate_source(source, with the target's facts)  -> spec + image export grant
 *   check_can_migrate_destination(target, with the spec)        -> name/port/IP/volume clashes
 *   pre_migration(target)                                       -> image, shell, upload grant
 *   live_migration(source)                                      -> freeze, checkpoint, send
 *   post_migration_at_destination(target)                       -> place, restore, GARP, verify
 *   cleanup_source(source)
 *
 * Failure before the freeze: rollback_at_destination only (the source never stopped).
 * Failure after it: rollback_at_destination first (so the container can never run twice),
 * then rollback_at_source (restore from its own checkpoint).
 */
import crypto from 'node:crypto';
import { FerryError } from '../common/errors.js';
import { unmeasured, type MigrationCounters, type MigrationTimings } from '../objects/migration.js';
import type { MigrationAgent } from './agent.js';
import type {
  CheckSourceResult,
  LiveMigrationResult,
  PostMigrationResult,
  PreMigrationResult,
  RollbackDestinationResult,
  RollbackSourceResult,
} from './steps.js';

export interface MigrationReport extends MigrationTimings, MigrationCounters {
  migration_id: string;
  container: string;
  source_host: string;
  dest_host: string;
  status: 'completed' | 'failed';
  /** The step that failed. */
  failed_step: string | null;
  error: { code: string; class: string; message: string; details: Record<string, unknown> } | null;
  connections_preserved: boolean | null;
  source_container_id: string | null;
  dest_container_id: string | null;
  /** Finer timings: image_ms, create_ms, place_ms, start_ms, cleanup_ms. */
  detail_ms: Record<string, number>;
  rollback: { destination?: RollbackDestinationResult; source?: RollbackSourceResult; error?: string } | null;
}

export function toErrorInfo(e: unknown): MigrationReport['error'] {
  if (e instanceof FerryError) return { code: e.code, class: e.name, message: e.message, details: e.details };
  const err = e as Error;
  return { code: 'internal', class: err?.name ?? 'Error', message: err?.message ?? String(e), details: {} };
}

export class Migrator {
  constructor(
    private readonly source: MigrationAgent,
    private readonly dest: MigrationAgent,
  ) {}

  async migrate(container: string, opts: { migrationId?: string } = {}): Promise<MigrationReport> {
    const id = opts.migrationId ?? crypto.randomUUID();
    const t0 = Date.now();
    const report: MigrationReport = {
      migration_id: id,
      container,
      source_host: this.source.host,
      dest_host: this.dest.host,
      status: 'failed',
      failed_step: null,
      error: null,
      connections_preserved: null,
      source_container_id: null,
      dest_container_id: null,
      ...unmeasured(),
      detail_ms: {},
      rollback: null,
    };
    let step = 'check_can_migrate_destination';
    let frozen = false;
    let src: CheckSourceResult | undefined;
    let pre: PreMigrationResult | undefined;
    let live: LiveMigrationResult | undefined;
    let post: PostMigrationResult | undefined;
    try {
      const d0 = await this.dest.checkCanMigrateDestination({ migration_id: id, source_host: this.source.host });
      step = 'check_can_migrate_source';
      src = await this.source.checkCanMigrateSource({ migration_id: id, container, dest_host: this.dest.host, dest: d0.dest });
      report.source_container_id = src.spec.id;
      step = 'check_can_migrate_destination';
      await this.dest.checkCanMigrateDestination({ migration_id: id, source_host: this.source.host, source: src.source, spec: src.spec });
      step = 'pre_migration';
      pre = await this.dest.preMigration({ migration_id: id, source_host: this.source.host, source: src.source, spec: src.spec, export: src.export });
      report.dest_container_id = pre.container_id;
      report.image_bytes = pre.image_bytes;
      report.connections_preserved = pre.connections_preserved;
      report.detail_ms.image_ms = pre.image_ms;
      report.detail_ms.create_ms = pre.create_ms;
      step = 'live_migration';
      frozen = true; // from here on a failure rolls back to the source
      live = await this.source.liveMigration({ migration_id: id, container_id: src.spec.id, upload: pre.upload });
      report.checkpoint_ms = live.checkpoint_ms;
      report.transfer_ms = live.transfer_ms;
      report.memory_bytes = live.memory_bytes;
      report.rootfs_bytes = live.rootfs_bytes;
      report.volume_bytes = live.volume_bytes;
      report.transferred_bytes = live.transferred_bytes + pre.image_bytes;
      step = 'post_migration_at_destination';
      post = await this.dest.postMigrationAtDestination({ migration_id: id });
      report.restore_ms = post.place_ms + post.restore_ms;
      report.detail_ms.place_ms = post.place_ms;
      report.detail_ms.start_ms = post.restore_ms;
      report.freeze_ms = post.restored_at - live.frozen_at;
      report.connections_preserved = post.connections_preserved;
      step = 'cleanup_source';
      const c0 = Date.now();
      await this.source.cleanupSource({ migration_id: id, container_id: src.spec.id });
      report.detail_ms.cleanup_ms = Date.now() - c0;
      report.status = 'completed';
      report.failed_step = null;
    } catch (e) {
      report.failed_step = step;
      report.error = toErrorInfo(e);
      if (step === 'cleanup_source') {
        // The container runs on the target; only the source's leftovers remain.
        report.status = 'completed';
      } else {
        report.rollback = {};
        try {
          report.rollback.destination = await this.dest.rollbackAtDestination({ migration_id: id });
          if (frozen && src) report.rollback.source = await this.source.rollbackAtSource({ migration_id: id, container_id: src.spec.id });
        } catch (rb) {
          report.rollback.error = (rb as Error).message;
        }
      }
    }
    report.total_ms = Date.now() - t0;
    return report;
  }
}
