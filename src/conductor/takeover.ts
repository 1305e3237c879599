/**
 * Claims over time: at start, what a previous conductor left unfinished is resumed; while
 * running, this conductor's claims are renewed and what nobody holds any more is taken over.
 */
import { RequestContext } from '../common/context.js';
import type { Claims } from './claims.js';
import type { HostMaintenance } from './maintenance.js';
import type { ConductorDeps } from './options.js';
import type { MigrationQueue, Queued } from './queue.js';

export class Takeover {
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly deps: ConductorDeps,
    private readonly claims: Claims,
    private readonly queue: MigrationQueue,
    private readonly maintenance: HostMaintenance,
  ) {}

  /**
   * On start: every migration and evacuation a previous conductor left unfinished is resumed to
   * a final status: this host's previous processes' claims end at once (with SQLite, everyone's:
   * there is one conductor), the others' when their lease runs out (the periodic scan). Starts
   * the claims' renewal and that scan.
   */
  async recover(): Promise<number> {
    const { takeOverPrefix } = this.claims.options;
    const ended = await this.deps.repo.expireClaims(takeOverPrefix, this.claims.owner);
    if (ended)
      this.deps.log.info({ claims: ended, of: takeOverPrefix ? `${takeOverPrefix}*` : 'every conductor' }, 'claims of previous conductor processes ended');
    const taken = await this.takeOver('resuming a migration left unfinished by a previous conductor');
    this.startClaims();
    return taken;
  }

  /** Renew this conductor's claims and look for unclaimed work, periodically (unref'd timers). */
  private startClaims(): void {
    if (this.timers.length) return;
    const { repo, log } = this.deps;
    const { leaseMs, scanMs } = this.claims.options;
    const renew = setInterval(
      () => {
        repo.renewClaims(this.claims.owner, leaseMs).catch((e: unknown) => log.error({ err: (e as Error).message }, "could not renew this conductor's claims"));
      },
      Math.max(50, Math.floor(leaseMs / 3)),
    );
    let scanning = false;
    const scan = setInterval(
      () => {
        if (scanning) return;
        scanning = true;
        this.takeOver('taking over a migration whose conductor stopped renewing its claim')
          .catch((e: unknown) => log.error({ err: (e as Error).message }, 'could not look for unclaimed migrations'))
          .finally(() => {
            scanning = false;
          });
      },
      scanMs ?? Math.max(50, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    scan.unref();
    this.timers = [renew, scan];
  }

  /** Stop renewing claims and scanning (at shutdown; a test's way to let a conductor "die"). */
  stopClaims(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** Claim what nobody holds, resume those migrations (queued) and evacuations; then a pump pass (slots other conductors freed). */
  private async takeOver(why: string): Promise<number> {
    const { repo, log } = this.deps;
    const owner = this.claims.owner;
    let n = 0;
    await this.queue.refreshQueue();
    for (const uuid of await repo.claimable('migration')) {
      if (this.queue.isRunning(uuid) || this.queue.isQueued(uuid)) continue;
      if (!(await this.claims.claim('migration', uuid))) continue;
      const m = await repo.getMigration(uuid);
      log.warn({ migration: uuid, status: m?.status, phase: m?.phase, owner }, why);
      // Gone meanwhile: the next pass drops it and lets its claim go. Admitted by its previous conductor: its slots are held.
      const q: Queued = m ? this.queue.queued(m) : { uuid, hosts: [], admission: false };
      if (q.admission && (await repo.getClaim('migration', uuid))?.admitted) q.admission = false;
      this.queue.add(q);
      n++;
    }
    this.queue.pump();
    for (const uuid of await repo.claimable('evacuation')) {
      if (this.maintenance.isEvacuating(uuid) || !(await this.claims.claim('evacuation', uuid))) continue;
      const e = await repo.getEvacuation(uuid);
      if (!e || e.status !== 'running') {
        await this.claims.release('evacuation', uuid);
        continue;
      }
      log.warn({ evacuation: e.uuid, host: e.host, owner }, why.replace('a migration', 'an evacuation'));
      const ctx = new RequestContext({ request_id: e.request_id ?? undefined, user_id: e.user_id, project_id: e.project_id, roles: ['admin'], is_admin: true });
      this.maintenance.runEvacuation(ctx, e.uuid);
    }
    return n;
  }
}
