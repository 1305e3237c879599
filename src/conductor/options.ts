/** What the conductor's parts are configured with, and what every part is handed (service.ts composes them). */
import type { Logger } from '../common/log.js';
import type { ComputeAPI } from '../compute/rpcapi.js';
import type { FlowDeps, RetryPolicy } from './flow.js';
import type { Repository } from './repository.js';

/**
 * Several conductors at once: each migration and evacuation is driven by the one conductor
 * that holds its claim in the database, renewed every lease/3; another one's scan takes over
 * what nobody holds (a conductor that died) and resumes it as recover() does.
 */
export interface ClaimOptions {
  /** This conductor in the claims table: `<host>:<pid>` (the host part names its previous processes). */
  owner: string;
  /** How long a claim lasts without renewal, ms. */
  leaseMs: number;
  /** How often claims nobody holds are looked for, ms (default: a third of the lease). */
  scanMs?: number;
  /** At start, the leases of owners whose name starts with this end at once: this host's previous processes ('' = every owner: a single conductor). */
  takeOverPrefix: string;
}

export interface ConductorOptions {
  /** Default: a lone conductor (owner host:pid, 60 s lease, takes every claim over at recover()). */
  claims?: ClaimOptions;
  /** Migrations running at once on one host, as source or as target; the others queue. */
  maxConcurrentPerHost: number;
  serviceDownTime: number; // seconds
  /** Seconds a reported container state is trusted for a migrate decision (default 1). */
  containerStateMaxAge?: number;
  /** How long a step with an unknown outcome is asked again (flow.ts DEFAULT_RETRY when unset). */
  retry?: RetryPolicy;
  /** Seconds a migration may take before `timeoutAction` (0 = no limit), as Nova's live_migration_completion_timeout. */
  completionTimeout?: number;
  timeoutAction?: 'abort' | 'force_complete';
  /** Hosts report as bus users named like them ([conductor] per_host_bus_users): see reporter.ts. */
  perHostBusUsers?: boolean;
}

/** Options of one migrate request beyond the container and the target. */
export interface MigrateOptions {
  /** Move memory after the restore (lazy pages): refused when either host cannot or may not. */
  post_copy?: boolean | null;
  /**
   * Only a container of this project (its PROJECT_LABEL) may be named: any other, or one without
   * the label, is "not found" exactly like a container that does not exist. Absent: any container
   * (a caller who may act on every project's).
   */
  project_id?: string | null;
}

/** What an evacuation request asks for (checked by the manager's schema and again here). */
export interface EvacuateRequest {
  target_host?: string | null;
  max_parallel?: number | null;
  post_copy?: boolean | null;
}

/** What every part of the conductor works with. */
export interface ConductorDeps {
  repo: Repository;
  compute: ComputeAPI;
  notify: FlowDeps['notify'];
  opts: ConductorOptions;
  log: Logger;
}
