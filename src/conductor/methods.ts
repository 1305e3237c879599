/**
 * The `ferry-conductor` topic's contract in one place: every RPC method, the schema its
 * arguments are checked against in manager.ts, the version that brought it, and the type of
 * its result. rpcapi.ts (client) and manager.ts (server) take their names and types from here.
 * 1.0: the first API. 1.1: `container_event` (cast), `report_state(taken_at)`, paging and more
 * filters on `list_migrations` and `list_containers`. 1.2: host maintenance: `set_host_status`,
 * `evacuate_host`, `get_evacuation`, `list_evacuations` (a 1.1 conductor answers none of them).
 * 1.3: post-copy: `migrate_container(post_copy)`, `force_complete_migration`.
 * 1.4: projects: `migrate_container(project_id)` (only a container of that project may be named)
 * and `list_containers(project_id)`. An older conductor would ignore the argument and reach every
 * project's, so a caller that scopes sends 1.4, which it refuses.
 */
import { z } from 'zod';
import { MAX_PARALLEL_LIMIT, type Evacuation } from '../objects/evacuation.js';
import { HOST_STATUSES, type ComputeHost, type Container } from '../objects/host.js';
import { MIGRATION_STATUSES, type Migration } from '../objects/migration.js';
import { MIGRATION_SORT_KEYS, SORT_DIRS } from './interface.js';

export const CONDUCTOR_TOPIC = 'ferry-conductor';
export const CONDUCTOR_RPC_VERSION = '1.4';

/** The longest string argument (container names and refs, host names, ids, filters). */
const MAX_ARG_LENGTH = 255;

/** A string argument; the messages name the argument, as callers over the bus see them. */
function text(key: string) {
  return z
    .string({ error: (iss) => (iss.input === undefined || iss.input === null ? `argument "${key}" is required` : `argument "${key}" must be a string`) })
    .max(MAX_ARG_LENGTH, `argument "${key}" must be at most ${MAX_ARG_LENGTH} characters`);
}

function optionalText(key: string) {
  return text(key).nullish().transform((v) => v ?? undefined);
}

function oneOf<const T extends readonly [string, ...string[]]>(key: string, values: T) {
  return z
    .enum(values, { error: `argument "${key}" must be one of ${values.join(', ')}` })
    .nullish()
    .transform((v) => v ?? undefined);
}

function isoTime(key: string) {
  return optionalText(key).refine((v) => v === undefined || !Number.isNaN(Date.parse(v)), `argument "${key}" must be an ISO 8601 time`)
    .transform((v) => (v === undefined ? undefined : new Date(Date.parse(v)).toISOString()));
}

const limit = z
  .number({ error: 'argument "limit" must be an integer >= 0' })
  .int('argument "limit" must be an integer >= 0')
  .min(0, 'argument "limit" must be an integer >= 0')
  .nullish()
  .transform((v) => v ?? undefined);

const page = { limit, marker: optionalText('marker') };

const object = (key: string) =>
  z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), `argument "${key}" must be an object`);

/** An optional whole number within [min, max]. */
function optionalInt(key: string, min: number, max: number) {
  const msg = `argument "${key}" must be an integer from ${min} to ${max}`;
  return z.number({ error: msg }).int(msg).min(min, msg).max(max, msg).nullish().transform((v) => v ?? undefined);
}

const schemas = {
  migrate_container: z.object({
    container: text('container'),
    host: optionalText('host'),
    post_copy: z.boolean({ error: 'argument "post_copy" must be true or false' }).nullish().transform((v) => v ?? undefined),
    project_id: text('project_id').min(1, 'argument "project_id" must not be empty').nullish().transform((v) => v ?? undefined),
  }),
  force_complete_migration: z.object({ migration_id: text('migration_id') }),
  abort_migration: z.object({ migration_id: text('migration_id') }),
  get_migration: z.object({ migration_id: text('migration_id') }),
  list_migrations: z.object({
    ...page,
    container: optionalText('container'),
    source_host: optionalText('source_host'),
    dest_host: optionalText('dest_host'),
    user_id: optionalText('user_id'),
    project_id: optionalText('project_id'),
    status: oneOf('status', MIGRATION_STATUSES),
    changes_since: isoTime('changes_since'),
    changes_before: isoTime('changes_before'),
    sort_key: oneOf('sort_key', MIGRATION_SORT_KEYS),
    sort_dir: oneOf('sort_dir', SORT_DIRS),
  }),
  list_hosts: z.object({}),
  list_containers: z.object({ ...page, project_id: optionalText('project_id') }),
  report_state: z.object({ host: text('host'), state: object('state'), taken_at: optionalText('taken_at') }),
  container_event: z.object({ host: text('host'), event: object('event') }),
  set_host_status: z.object({
    host: text('host'),
    status: z.enum(HOST_STATUSES, { error: `argument "status" must be one of ${HOST_STATUSES.join(', ')}` }),
    disabled_reason: optionalText('disabled_reason'),
  }),
  evacuate_host: z.object({
    host: text('host'),
    target_host: optionalText('target_host'),
    max_parallel: optionalInt('max_parallel', 1, MAX_PARALLEL_LIMIT),
    post_copy: z.boolean({ error: 'argument "post_copy" must be true or false' }).nullish().transform((v) => v ?? undefined),
  }),
  get_evacuation: z.object({ evacuation_id: text('evacuation_id') }),
  list_evacuations: z.object({ host: optionalText('host'), limit }),
};

interface MethodSpec<A extends z.ZodType, R> {
  args: A;
  /** The API version that brought the method (a caller sends it, or the version its arguments need). */
  since: RPCVersion;
  /** Only for typing the result. */
  result?: R;
}

type RPCVersion = '1.0' | '1.1' | '1.2' | '1.3' | '1.4';

function method<A extends z.ZodType, R>(args: A, since: RPCVersion): MethodSpec<A, R> {
  return { args, since };
}

export const CONDUCTOR_METHODS = {
  migrate_container: method<typeof schemas.migrate_container, Migration>(schemas.migrate_container, '1.0'),
  abort_migration: method<typeof schemas.abort_migration, Migration>(schemas.abort_migration, '1.0'),
  force_complete_migration: method<typeof schemas.force_complete_migration, Migration>(schemas.force_complete_migration, '1.3'),
  get_migration: method<typeof schemas.get_migration, Migration>(schemas.get_migration, '1.0'),
  list_migrations: method<typeof schemas.list_migrations, Migration[]>(schemas.list_migrations, '1.0'),
  list_hosts: method<typeof schemas.list_hosts, ComputeHost[]>(schemas.list_hosts, '1.0'),
  list_containers: method<typeof schemas.list_containers, Container[]>(schemas.list_containers, '1.0'),
  report_state: method<typeof schemas.report_state, null>(schemas.report_state, '1.0'),
  container_event: method<typeof schemas.container_event, null>(schemas.container_event, '1.1'),
  set_host_status: method<typeof schemas.set_host_status, ComputeHost>(schemas.set_host_status, '1.2'),
  evacuate_host: method<typeof schemas.evacuate_host, Evacuation>(schemas.evacuate_host, '1.2'),
  get_evacuation: method<typeof schemas.get_evacuation, Evacuation>(schemas.get_evacuation, '1.2'),
  list_evacuations: method<typeof schemas.list_evacuations, Evacuation[]>(schemas.list_evacuations, '1.2'),
};

export type ConductorMethod = keyof typeof CONDUCTOR_METHODS;
/** What a caller sends. */
export type ConductorArgsIn<M extends ConductorMethod> = z.input<(typeof CONDUCTOR_METHODS)[M]['args']>;
/** What the manager hands on once checked. */
export type ConductorArgs<M extends ConductorMethod> = z.output<(typeof CONDUCTOR_METHODS)[M]['args']>;
export type ConductorResult<M extends ConductorMethod> = (typeof CONDUCTOR_METHODS)[M] extends MethodSpec<z.ZodType, infer R> ? R : never;

export function isConductorMethod(name: string): name is ConductorMethod {
  return Object.prototype.hasOwnProperty.call(CONDUCTOR_METHODS, name);
}
