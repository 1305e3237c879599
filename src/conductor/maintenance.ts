/**
 * Host maintenance: enabling and disabling hosts, and evacuations (every running container of a
 * host live-migrated away), accepted here and driven by EvacuationRunner (evacuation.ts).
 */
import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../common/context.js';
import { ClaimLost, EvacuationNotFound, HostDown, HostNotFound, MigrationInProgress, NoValidHost } from '../common/errors.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ComputeHost, HostStatus } from '../objects/host.js';
import type { Admission } from './admission.js';
import type { Claims } from './claims.js';
import { EvacuationRunner, planContainers } from './evacuation.js';
import { chooseTarget, ineligibility, requirePostCopy, toComputeHost } from './hosts.js';
import type { EvacuationNotify } from './notifications.js';
import type { ConductorDeps, EvacuateRequest } from './options.js';
import type { Queries } from './queries.js';
import type { MigrationQueue } from './queue.js';
import type { ContainerResolver } from './resolution.js';

export class HostMaintenance {
  /** Evacuations this conductor drives now (uuid -> their end). */
  private readonly evacuating = new Map<string, Promise<Evacuation>>();

  constructor(
    private readonly deps: ConductorDeps,
    private readonly queries: Queries,
    private readonly resolver: ContainerResolver,
    private readonly admission: Admission,
    private readonly claims: Claims,
    private readonly queue: MigrationQueue,
    /** Sends `host.evacuate.*`; without it, evacuations are only logged. */
    private readonly notifyEvacuation: EvacuationNotify,
  ) {}

  private async knownHost(name: string): Promise<ComputeHost> {
    const r = await this.deps.repo.getHostRecord(name);
    // Compared again here: MariaDB's equality ignores trailing spaces.
    if (!r || r.name !== name) throw new HostNotFound(`compute host "${name}" is not known; see GET /v1/hosts`, { host: name });
    return toComputeHost(r, Date.now(), this.deps.opts.serviceDownTime);
  }

  /**
   * Enable or disable a host (Nova's `compute service set --enable|--disable`); enabling clears the
   * reason. The arguments were checked against set_host_status's schema (methods.ts).
   */
  async setHostStatus(name: string, status: HostStatus, reason?: string | null): Promise<ComputeHost> {
    await this.knownHost(name);
    await this.deps.repo.setHostStatus(name, status, status === 'disabled' ? (reason ?? null) : null);
    this.deps.log.info({ host: name, status, reason: reason ?? null }, 'host status set');
    return this.knownHost(name);
  }

  async getEvacuation(uuid: string): Promise<Evacuation> {
    const e = await this.deps.repo.getEvacuation(uuid);
    if (!e) throw new EvacuationNotFound(`evacuation ${uuid} could not be found`, { evacuation_id: uuid });
    return e;
  }

  listEvacuations(filters: { host?: string; limit?: number } = {}): Promise<Evacuation[]> {
    return this.deps.repo.listEvacuations(filters);
  }

  /**
   * Empty `host`: every running container is live-migrated through `migrateOnLiveState` (the
   * same checks and flow as a single migrate), at most `max_parallel` unfinished at once. An
   * enabled host is disabled first ("evacuating"), so that no migration lands on it meanwhile;
   * it stays disabled afterwards, for the operator to enable after the maintenance.
   * Refused at once (nothing changed): unknown host (404), a host that is down, or no other
   * enabled host able to take containers (409). The arguments were checked against
   * evacuate_host's schema (methods.ts).
   */
  async evacuate(ctx: RequestContext, host: string, req: EvacuateRequest = {}): Promise<Evacuation> {
    const { repo, log } = this.deps;
    const maxParallel = req.max_parallel ?? 1;
    const src = await this.knownHost(host);
    if (src.state !== 'up') throw new HostDown(`compute host "${host}" is down (no heartbeat since ${src.updated_at}); its containers cannot be migrated live`);
    const target = req.target_host ?? null;
    const hosts = await this.queries.listHosts();
    if (target !== null) {
      await this.knownHost(target);
      chooseTarget(hosts, host, target); // the named target's refusals (same host, disabled, down, no CRIU)
    } else if (!hosts.some((h) => h.name !== host && ineligibility(h, src) === null)) {
      const why = hosts.filter((h) => h.name !== host).map((h) => ineligibility(h, src) ?? '');
      throw new NoValidHost(
        `no other enabled compute host can take the containers of "${host}": ${why.length ? why.join('; ') : `"${host}" is the only compute host`}`,
      );
    }
    if (req.post_copy) requirePostCopy(hosts, target !== null ? [host, target] : [host]);
    // Any conductor's: the database knows every running evacuation.
    const running = (await repo.unfinishedEvacuations()).find((e) => e.host === host);
    if (running) throw new MigrationInProgress(`compute host "${host}" is already being evacuated (evacuation ${running.uuid})`);

    // Fresh state of the host's containers before listing them (a stopped one is listed, never skipped).
    await this.resolver.checkLive(ctx, [host]);
    const now = new Date().toISOString();
    const disable = src.status === 'enabled';
    const uuid = randomUUID();
    if (disable) await repo.setHostStatus(host, 'disabled', `evacuating (evacuation ${uuid})`);
    const containers = planContainers(await repo.hostContainers(host), now);
    await this.claims.claimNew('evacuation', uuid, () =>
      repo.createEvacuation({
        uuid,
        host,
        target_host: target,
        max_parallel: maxParallel,
        post_copy: req.post_copy ?? false,
        status: 'running',
        host_disabled: disable,
        error: null,
        request_id: ctx.request_id,
        user_id: ctx.user_id,
        project_id: ctx.project_id,
        created_at: now,
        updated_at: now,
        containers,
      }),
    );
    const e = await this.getEvacuation(uuid);
    log.info({ evacuation: uuid, host, target, max_parallel: maxParallel, containers: e.containers.length, disabled: disable }, 'evacuation accepted');
    await this.notifyEvacuation(ctx, 'host.evacuate.start', e);
    this.runEvacuation(ctx, uuid);
    return e;
  }

  /** Whether this conductor drives that evacuation now. */
  isEvacuating(uuid: string): boolean {
    return this.evacuating.has(uuid);
  }

  /** Drive an evacuation this conductor holds the claim of to its end, in the background. */
  runEvacuation(ctx: RequestContext, uuid: string): void {
    const { repo, log } = this.deps;
    const runner = new EvacuationRunner(
      {
        repo: repo.fenced('evacuation', uuid, this.claims.owner),
        migrate: (c, containerId, target, postCopy) => this.admission.migrateOnLiveState(c, containerId, target, { post_copy: postCopy }),
        notify: this.notifyEvacuation,
        log,
        waitForChange: (ms) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            this.queue.onNextFlowEnd(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      },
      ctx,
      uuid,
    );
    const done = runner.run().catch(async (err: unknown) => {
      if (err instanceof ClaimLost) {
        // Another conductor took it over (this one stopped renewing for longer than the lease): it goes on there.
        log.warn({ evacuation: uuid, err: err.message }, 'evacuation claim lost: another conductor goes on with it');
        return this.getEvacuation(uuid);
      }
      // Only the database can fail here (a refusal is recorded per container): the record says the evacuation broke.
      const message = `the evacuation stopped: ${(err as Error).message}`;
      log.error({ evacuation: uuid, err: (err as Error).message }, 'evacuation stopped');
      const e = await repo.updateEvacuation(uuid, { status: 'error', error: message });
      await this.notifyEvacuation(ctx, 'host.evacuate.error', e);
      return e;
    });
    this.evacuating.set(uuid, done);
    void done.finally(async () => {
      this.evacuating.delete(uuid);
      await this.claims.release('evacuation', uuid);
    });
  }

  /** Resolves with the evacuation's final record once this conductor has driven it to its end. */
  whenEvacuated(uuid: string): Promise<Evacuation> {
    return this.evacuating.get(uuid) ?? this.getEvacuation(uuid);
  }
}
