/**
 * Accepting a migrate request: the container it names and its state (asking the hosts when what
 * they reported is stale), the source up, no other migration of it, a target, the mode; then the
 * migration is claimed, recorded and queued.
 */
import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../common/context.js';
import { HostDown, MigrationInProgress } from '../common/errors.js';
import { chooseMode } from './modes/index.js';
import type { ComputeHost } from '../objects/host.js';
import { newMigration, type Migration } from '../objects/migration.js';
import type { Claims } from './claims.js';
import { chooseTarget, requirePostCopy } from './hosts.js';
import type { ConductorDeps, MigrateOptions } from './options.js';
import type { Queries } from './queries.js';
import type { MigrationQueue } from './queue.js';
import type { ContainerRecord } from './repository.js';
import type { ContainerResolver, LiveCheck } from './resolution.js';

export class Admission {
  constructor(
    private readonly deps: ConductorDeps,
    private readonly queries: Queries,
    private readonly resolver: ContainerResolver,
    private readonly claims: Claims,
    private readonly queue: MigrationQueue,
  ) {}

  /**
   * Decide a migrate request on live state: when the reported state of the container is older
   * than `containerStateMaxAge`, or is not `running`, or the container is not known, the hosts
   * concerned are asked first, so that a container that runs is never refused as not running.
   */
  async migrateOnLiveState(ctx: RequestContext, containerRef: string, requestedHost?: string | null, opts: MigrateOptions = {}): Promise<Migration> {
    const resolver = this.resolver;
    let live: LiveCheck | undefined;
    // What the container reference matches, as recorded now (read again after each live check).
    let found: ContainerRecord[] | undefined;
    if (resolver.inventory) {
      found = await resolver.matches(containerRef, opts.project_id);
      const hosts = await resolver.hostsToAsk(found, Date.now());
      if (hosts.length) {
        live = await resolver.checkLive(ctx, hosts);
        found = await resolver.matches(containerRef, opts.project_id);
      }
      if (live && found.length === 0) {
        // Gone from where it was: it may have just been created elsewhere; ask the other hosts before saying "not found".
        const rest = (await resolver.hostsToAsk(found, Date.now())).filter((h) => !live?.has(h));
        if (rest.length) {
          for (const [h, r] of await resolver.checkLive(ctx, rest)) live.set(h, r);
          found = await resolver.matches(containerRef, opts.project_id);
        }
      }
    }
    return this.decide(ctx, containerRef, requestedHost, live, opts, found);
  }

  /** Decide on the state as recorded (`live`: what a live check just found, for the refusals' wording). */
  migrate(ctx: RequestContext, containerRef: string, requestedHost?: string | null, live?: LiveCheck, opts: MigrateOptions = {}): Promise<Migration> {
    return this.decide(ctx, containerRef, requestedHost, live, opts);
  }

  private async decide(
    ctx: RequestContext,
    containerRef: string,
    requestedHost: string | null | undefined,
    live: LiveCheck | undefined,
    opts: MigrateOptions,
    found?: ContainerRecord[],
  ): Promise<Migration> {
    const { repo, log } = this.deps;
    const c = await this.resolver.resolveContainer(containerRef, live, found ?? (await this.resolver.matches(containerRef, opts.project_id)));
    // The host list, read once for the whole decision (after any live check, so its counts include what that found).
    const hosts = await this.queries.listHosts();
    const src = hosts.find((h) => h.name === c.host);
    if (!src || src.state !== 'up') throw new HostDown(`the container's host "${c.host}" is down; it cannot be migrated live`);
    const busy = await repo.unfinishedMigrationOf(c.id);
    if (busy) throw new MigrationInProgress(`container "${c.name}" is already being migrated (migration ${busy.uuid}, ${busy.status})`);
    const dest = chooseTarget(await this.withIncoming(hosts), c.host, requestedHost ?? null);
    if (opts.post_copy) requirePostCopy(hosts, [c.host, dest]);
    const m = newMigration({
      mode: chooseMode(Boolean(opts.post_copy)),
      uuid: randomUUID(),
      container_id: c.id,
      container_name: c.name,
      source_host: c.host,
      dest_host: dest,
      request_id: ctx.request_id,
      user_id: ctx.user_id,
      // The container's project when it has one, so that its project's readers see the migration
      // whoever asked (an admin, an evacuation); the caller's otherwise (who asked is user_id).
      project_id: c.project_id ?? ctx.project_id,
    });
    // Claimed before it is recorded: no takeover scan (this conductor's or another's) can see it
    // unclaimed between the two and start a second flow for it.
    await this.claims.claimNew('migration', m.uuid, () => repo.createMigration(m));
    log.info({ migration: m.uuid, container: c.id, source: c.host, dest }, 'migration accepted');
    this.queue.enqueue(m);
    return m;
  }

  /**
   * The hosts as the scheduler weighs them: each host's containers plus the migrations still on
   * their way to it, so that migrations accepted together (an evacuation) spread over the hosts.
   */
  private async withIncoming(hosts: ComputeHost[]): Promise<ComputeHost[]> {
    const incoming = await this.deps.repo.incomingCounts();
    return hosts.map((h) => ({ ...h, containers: h.containers + (incoming.get(h.name) ?? 0) }));
  }
}
