/**
 * The `ferry-compute` topic's contract in one place: every RPC method, the schema its
 * arguments are checked against on the agent's side, the type of its result, and whether it
 * is a long step. rpcapi.ts (client) and manager.ts (server) both take their method names and
 * types from here, so the two sides cannot drift.
 */
import { z } from 'zod';
import { MAX_CPUINFO_IMAGE_BYTES, type ContainerSpec, type HostFacts } from './driver.js';
import type {
  CheckDestinationResult,
  CheckSourceResult,
  CleanupSourceResult,
  LiveMigrationResult,
  PostMigrationResult,
  MemoryArrivalResult,
  PreMigrationResult,
  RollbackDestinationResult,
  RollbackSourceResult,
} from './steps.js';

export const COMPUTE_TOPIC = 'ferry-compute';
/**
 * 1.1: live_migration `mode`, post_migration_at_destination `page_server`, post_copy_status (post-copy).
 * 1.2: `page_server.host` and `page_server.token`: pages travel only through the authenticated tunnel.
 */
export const COMPUTE_RPC_VERSION = '1.2';

const migrationId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'migration_id must be a plain name (letters, digits, _ . -)');
const hostName = z.string().min(1, 'a host name is required').max(255);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** base64 of at most MAX_CPUINFO_IMAGE_BYTES (a real cpuinfo.img is ~110 bytes). */
const MAX_CPUINFO_B64 = Math.ceil(MAX_CPUINFO_IMAGE_BYTES / 3) * 4;

/** Host facts travel between agents unchanged; the fields the checks read must be there. */
const hostFacts = z.custom<HostFacts>(
  (v) =>
    isRecord(v) &&
    typeof v.host === 'string' &&
    typeof v.architecture === 'string' &&
    typeof v.engine_version === 'string' &&
    (v.cpuinfo === undefined ||
      v.cpuinfo === null ||
      (typeof v.cpuinfo === 'string' && v.cpuinfo.length <= MAX_CPUINFO_B64 && /^[A-Za-z0-9+/]*={0,2}$/.test(v.cpuinfo))),
  `host facts need at least host, architecture and engine_version; cpuinfo, when there, is base64 of at most ${MAX_CPUINFO_IMAGE_BYTES} bytes`,
);

/** A container spec as the source captured it; the target re-checks it before using it. */
const containerSpec = z.custom<ContainerSpec>(
  (v) =>
    isRecord(v) &&
    typeof v.id === 'string' &&
    typeof v.name === 'string' &&
    isRecord(v.image) &&
    typeof v.image.id === 'string' &&
    Array.isArray(v.networks) &&
    Array.isArray(v.volumes) &&
    Array.isArray(v.binds) &&
    Array.isArray(v.devices) &&
    isRecord(v.create),
  'spec must be a container spec (id, name, image, networks, volumes, binds, devices, create)',
);

const channelGrant = z.object({ address: z.string().min(3).max(300), token: z.string().min(16).max(512) });

const checkSource = z.object({ migration_id: migrationId, container: z.string().min(1).max(255), dest_host: hostName, dest: hostFacts.nullish() });
const checkDestination = z.object({ migration_id: migrationId, source_host: hostName, source: hostFacts.nullish(), spec: containerSpec.nullish() });
const preMigration = z.object({ migration_id: migrationId, source_host: hostName, source: hostFacts.nullish(), spec: containerSpec, export: channelGrant });
const liveMigration = z.object({ migration_id: migrationId, upload: channelGrant, mode: z.enum(['stop-and-copy', 'pre-copy', 'post-copy']).nullish() });
const byId = z.object({ migration_id: migrationId });
const pageServer = z.object({
  address: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  host: hostName.nullish(),
  token: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'page_server.token must be 64 hex digits')
    .nullish(),
});
const postMigration = z.object({ migration_id: migrationId, page_server: pageServer.nullish() });
const withContainer = z.object({ migration_id: migrationId, container_id: z.string().max(128).nullish() });

interface MethodSpec<A extends z.ZodType, R> {
  args: A;
  /** Long steps move data or run CRIU: the agent sends call-monitor heartbeats while they run. */
  long: boolean;
  /** Only for typing the result. */
  result?: R;
}

function method<A extends z.ZodType, R>(args: A, long: boolean): MethodSpec<A, R> {
  return { args, long };
}

export const COMPUTE_METHODS = {
  check_can_migrate_destination: method<typeof checkDestination, CheckDestinationResult>(checkDestination, false),
  check_can_migrate_source: method<typeof checkSource, CheckSourceResult>(checkSource, false),
  pre_migration: method<typeof preMigration, PreMigrationResult>(preMigration, true),
  live_migration: method<typeof liveMigration, LiveMigrationResult>(liveMigration, true),
  post_migration_at_destination: method<typeof postMigration, PostMigrationResult>(postMigration, true),
  post_copy_status: method<typeof byId, MemoryArrivalResult>(byId, false),
  cleanup_source: method<typeof withContainer, CleanupSourceResult>(withContainer, true),
  rollback_at_destination: method<typeof byId, RollbackDestinationResult>(byId, true),
  rollback_at_source: method<typeof withContainer, RollbackSourceResult>(withContainer, true),
};

export type ComputeMethod = keyof typeof COMPUTE_METHODS;
export type ComputeArgs<M extends ComputeMethod> = z.infer<(typeof COMPUTE_METHODS)[M]['args']>;
export type ComputeResult<M extends ComputeMethod> = NonNullable<(typeof COMPUTE_METHODS)[M]['result']>;

export type CheckSourceRequest = ComputeArgs<'check_can_migrate_source'>;
export type CheckDestinationRequest = ComputeArgs<'check_can_migrate_destination'>;
export type PreMigrationRequest = ComputeArgs<'pre_migration'>;
export type LiveMigrationRequest = ComputeArgs<'live_migration'>;
export type PostMigrationRequest = ComputeArgs<'post_migration_at_destination'>;
export type CleanupSourceRequest = ComputeArgs<'cleanup_source'>;
export type RollbackDestinationRequest = ComputeArgs<'rollback_at_destination'>;
export type RollbackSourceRequest = ComputeArgs<'rollback_at_source'>;

/**
 * The compute RPC version a call needs, from what its arguments use (the history above): an
 * agent of an older version would refuse the method or silently drop the argument.
 */
export function computeVersionNeeded<M extends ComputeMethod>(method: M, args: ComputeArgs<M>): string {
  if (method === 'post_copy_status') return '1.1';
  if (method === 'live_migration') {
    const mode = (args as LiveMigrationRequest).mode;
    return mode && mode !== 'stop-and-copy' ? '1.1' : '1.0';
  }
  if (method === 'post_migration_at_destination') {
    const ps = (args as PostMigrationRequest).page_server;
    if (!ps) return '1.0';
    return ps.host || ps.token ? '1.2' : '1.1';
  }
  return '1.0';
}

export function isComputeMethod(name: string): name is ComputeMethod {
  return Object.prototype.hasOwnProperty.call(COMPUTE_METHODS, name);
}
