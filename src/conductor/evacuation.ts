/**
 * One host evacuation driven to its end: every running container of the host is handed, at
 * most `max_parallel` at a time, to the conductor's own migrate path (so every rule of the
 * migration flow applies), and every container's outcome is recorded in the evacuation:
 * moved, refused with the reason, failed with the migration's error, or not running (not moved).
 * The record is the state: a restarted conductor goes on from it (`EvacuationRunner.run`).
 */
import type { RequestContext } from '../common/context.js';
import type { Logger } from '../common/log.js';
import { sleep } from '../common/sleep.js';
import { finalStatus, outcomeOf, type Evacuation, type EvacuationContainer } from '../objects/evacuation.js';
import { isFinal, type Migration } from '../objects/migration.js';
import type { EvacuationNotify } from './notifications.js';
import type { ContainerRecord, Repository } from './repository.js';

export interface EvacuationDeps {
  repo: Repository;
  /** Start one migration through the conductor's migrate path; throws its refusal. */
  migrate(ctx: RequestContext, containerId: string, target: string | null, postCopy: boolean): Promise<Migration>;
  notify: EvacuationNotify;
  log: Logger;
  /** How often migrations in flight are looked at at the latest, ms (default 500). */
  pollMs?: number;
  /** Resolves when some migration ends, or after `ms` (default: just the wait). */
  waitForChange?: (ms: number) => Promise<void>;
}

/** Each container of the host as the evacuation starts: running ones wait their turn, the others are listed as not moved. */
export function planContainers(containers: readonly ContainerRecord[], now = new Date().toISOString()): EvacuationContainer[] {
  return [...containers]
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
    .map((c) => ({
      container_id: c.id,
      container_name: c.name,
      container_status: c.status,
      status: c.status === 'running' ? 'pending' : 'not-moved',
      migration_uuid: null,
      dest_host: null,
      reason: c.status === 'running' ? null : `not running (${c.status}), not moved: only running containers are live-migrated`,
      updated_at: now,
    }));
}

/** The containers to start now: pending ones, in order, up to the free slots of `max_parallel`. */
export function nextToStart(e: Pick<Evacuation, 'containers' | 'max_parallel'>): EvacuationContainer[] {
  const inFlight = e.containers.filter((c) => c.status === 'migrating').length;
  const free = Math.max(0, e.max_parallel - inFlight);
  return e.containers.filter((c) => c.status === 'pending').slice(0, free);
}

/** Why a migration that ended without completing did not move the container. */
function failureReason(m: Migration): string {
  return `migration ${m.status}${m.error ? `: ${m.error}` : ''}`;
}

export class EvacuationRunner {
  constructor(
    private readonly deps: EvacuationDeps,
    private readonly ctx: RequestContext,
    private readonly uuid: string,
  ) {}

  private async load(): Promise<Evacuation> {
    const e = await this.deps.repo.getEvacuation(this.uuid);
    if (!e) throw new Error(`evacuation ${this.uuid} is not in the database`);
    return e;
  }

  /** Drive the evacuation to a final status; resolves with the final record. */
  async run(): Promise<Evacuation> {
    const { repo, log } = this.deps;
    for (;;) {
      await this.collect();
      let e = await this.load();
      for (const c of nextToStart(e)) await this.start(e, c);
      e = await this.load();
      const status = finalStatus(e.containers);
      if (status !== 'running') {
        const done = await repo.updateEvacuation(this.uuid, { status });
        log.info({ evacuation: this.uuid, host: done.host, status, counts: done.counts }, 'evacuation ended');
        await this.deps.notify(this.ctx, status === 'completed' ? 'host.evacuate.end' : 'host.evacuate.error', done);
        return done;
      }
      // Only migrations still running remain: look again shortly (a freed slot starts the next one).
      if (nextToStart(e).length === 0) await (this.deps.waitForChange ?? sleep)(this.deps.pollMs ?? 500);
    }
  }

  /** Record the outcome of each migration of the evacuation that has ended. */
  private async collect(): Promise<void> {
    const { repo } = this.deps;
    for (const c of (await this.load()).containers) {
      if (c.status !== 'migrating' || !c.migration_uuid) continue;
      const m = await repo.getMigration(c.migration_uuid);
      if (!m) {
        await repo.updateEvacuationContainer(this.uuid, c.container_id, { status: 'error', reason: `migration ${c.migration_uuid} is no longer recorded` });
      } else if (isFinal(m.status)) {
        await repo.updateEvacuationContainer(this.uuid, c.container_id, {
          status: outcomeOf(m.status),
          dest_host: m.dest_host,
          reason: m.status === 'completed' ? null : failureReason(m),
        });
      }
    }
  }

  private async start(e: Evacuation, c: EvacuationContainer): Promise<void> {
    const { repo, log } = this.deps;
    // A conductor that stopped between starting this container's migration and recording it left
    // that migration behind (another conductor drives it now): it is this evacuation's, not a second one to start.
    const started = (await repo.listMigrations({ container: c.container_id, source_host: e.host, sort_dir: 'asc' })).find(
      (m) => m.container_id === c.container_id && m.request_id !== null && m.request_id === e.request_id && m.created_at >= e.created_at,
    );
    if (started) {
      await repo.updateEvacuationContainer(this.uuid, c.container_id, { status: 'migrating', migration_uuid: started.uuid, dest_host: started.dest_host });
      log.warn(
        { evacuation: this.uuid, container: c.container_name, migration: started.uuid },
        'evacuation: a migration of this container was already started for it; following it',
      );
      return;
    }
    try {
      const m = await this.deps.migrate(this.ctx, c.container_id, e.target_host, e.post_copy);
      await repo.updateEvacuationContainer(this.uuid, c.container_id, { status: 'migrating', migration_uuid: m.uuid, dest_host: m.dest_host });
      log.info({ evacuation: this.uuid, container: c.container_name, migration: m.uuid, dest: m.dest_host }, 'evacuation: migration started');
    } catch (err) {
      // Refused before any step ran (not running any more, already migrating, no valid host...): listed with the reason.
      const reason = (err as Error).message;
      await repo.updateEvacuationContainer(this.uuid, c.container_id, { status: 'refused', reason });
      log.warn({ evacuation: this.uuid, container: c.container_name, reason }, 'evacuation: container refused');
    }
  }
}
