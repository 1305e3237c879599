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
import { checkVersionString } from '../bus/version.js';
import { CONTAINER_EVENT_KINDS, type ContainerEvent } from '../compute/events.js';
import { MAX_PARALLEL_LIMIT, type Evacuation } from '../objects/evacuation.js';
import { HOST_STATUSES, projectOf, type ComputeHost, type Container, type HostState } from '../objects/host.js';
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
  return text(key)
    .nullish()
    .transform((v) => v ?? undefined);
}

function oneOf<const T extends readonly [string, ...string[]]>(key: string, values: T) {
  return z
    .enum(values, { error: `argument "${key}" must be one of ${values.join(', ')}` })
    .nullish()
    .transform((v) => v ?? undefined);
}

function isoTime(key: string) {
  return optionalText(key)
    .refine((v) => v === undefined || !Number.isNaN(Date.parse(v)), `argument "${key}" must be an ISO 8601 time`)
    .transform((v) => (v === undefined ? undefined : new Date(Date.parse(v)).toISOString()));
}

const limit = z
  .number({ error: 'argument "limit" must be an integer >= 0' })
  .int('argument "limit" must be an integer >= 0')
  .min(0, 'argument "limit" must be an integer >= 0')
  .nullish()
  .transform((v) => v ?? undefined);

const page = { limit, marker: optionalText('marker') };

/** A compute host's name as a migrate or maintenance request names it: not blank. */
function hostName(key: string) {
  return text(key).refine((v) => v.trim() !== '', `argument "${key}" must be a compute host name (1 to ${MAX_ARG_LENGTH} characters)`);
}

/** A time a host stamped (at most 40 characters, as Date.parse reads it), as toISOString writes it. */
function hostTime(message: string) {
  return z
    .string({ error: message })
    .max(40, message)
    .refine((v) => !Number.isNaN(Date.parse(v)), message)
    .transform((v) => new Date(Date.parse(v)).toISOString());
}

/** Where in `path` the index of a reported container is (the item after "containers"). */
function containerIndex(path: readonly PropertyKey[] | undefined): string {
  const at = path?.indexOf('containers') ?? -1;
  return at >= 0 ? String(path?.[at + 1]) : '?';
}

const containerError = (iss: { path?: PropertyKey[] }) =>
  `report_state: containers[${containerIndex(iss.path)}] must be an object with string id, name, image and status`;
const reportedString = z.string({ error: containerError });

/**
 * One container of a heartbeat's inventory. Its project label is read leniently (projectOf: a
 * label that is no project id is no project's), and what else an agent adds is kept.
 */
const reportedContainer = z.looseObject(
  { id: reportedString, name: reportedString, image: reportedString, status: reportedString, project_id: z.unknown().optional().transform(projectOf) },
  { error: containerError },
);

// `reason` and `criu_version` may be missing, not only null: an agent's JSON drops an undefined
// value, and a heartbeat refused for that would make its host look down.
const modeSupport = z.object(
  {
    ok: z.boolean(),
    reason: z
      .string()
      .nullish()
      .transform((v) => v ?? null),
  },
  { error: 'report_state: state.modes must be { post_copy, pre_copy }, each { ok, reason }' },
);
const stateFact = (key: string, what: string) => `report_state: state.${key} must be ${what}`;

/**
 * What a heartbeat carries (HostState): the containers first, so that a broken inventory is what
 * the refusal names; then the host's facts. Facts an agent adds beyond these are kept as sent.
 */
const hostState = z.looseObject(
  {
    containers: z.array(reportedContainer, { error: 'report_state needs a state with a containers list' }),
    docker_version: z.string({ error: stateFact('docker_version', 'a string') }),
    api_version: z.string({ error: stateFact('api_version', 'a string') }),
    criu_version: z
      .string({ error: stateFact('criu_version', 'a string or null') })
      .nullish()
      .transform((v) => v ?? null),
    criu_ok: z.boolean({ error: stateFact('criu_ok', 'true or false') }),
    architecture: z.string({ error: stateFact('architecture', 'a string') }),
    migration_address: z.string({ error: stateFact('migration_address', 'a string') }),
    memory_used_bytes: z.number({ error: stateFact('memory_used_bytes', 'a number or null') }).nullish(),
    memory_total_bytes: z.number({ error: stateFact('memory_total_bytes', 'a number or null') }).nullish(),
    // pre_copy is only reported (no driver can pre-dump): kept as sent for the hosts API, optional.
    modes: z
      .object({ post_copy: modeSupport, pre_copy: modeSupport.optional() }, { error: stateFact('modes', '{ post_copy, pre_copy }, each { ok, reason }') })
      .nullish(),
    // Agents older than service versions send neither of these.
    service_version: z
      .number({ error: "report_state: state.service_version must be a positive integer (the agent's service version)" })
      .int("report_state: state.service_version must be a positive integer (the agent's service version)")
      .min(1, "report_state: state.service_version must be a positive integer (the agent's service version)")
      .nullish(),
    rpc_version: z
      .string({ error: 'report_state: state.rpc_version must be a version string such as 1.2' })
      .max(32, 'report_state: state.rpc_version must be a version string such as 1.2')
      .refine(isVersion, { error: (iss) => `report_state: state.rpc_version "${String(iss.input)}" is not a version such as 1.2` })
      .nullish(),
  },
  { error: 'argument "state" must be an object' },
) satisfies z.ZodType<HostState>;

function isVersion(v: string): boolean {
  try {
    checkVersionString(v);
    return true;
  } catch {
    return false;
  }
}

/** An optional string of an event: null when absent. */
function eventText(key: string) {
  const message = `container_event: "${key}" must be a string of at most 255 characters, or null`;
  return z
    .string({ error: message })
    .max(255, message)
    .nullish()
    .transform((v) => v ?? null);
}

/** One container event (ContainerEvent); its project label is read leniently, as in an inventory. */
const containerEvent = z.object(
  {
    kind: z.enum(CONTAINER_EVENT_KINDS, { error: (iss) => `container_event: unknown kind "${String(iss.input)}"` }),
    id: z
      .string({ error: 'container_event: "id" must be a container ID (hex)' })
      .regex(/^[0-9a-f]{12,64}$/, 'container_event: "id" must be a container ID (hex)'),
    name: eventText('name'),
    image: eventText('image'),
    status: eventText('status'),
    project_id: z.unknown().optional().transform(projectOf),
    at: hostTime('container_event: "at" must be an ISO 8601 time'),
  },
  { error: 'argument "event" must be an object' },
) satisfies z.ZodType<ContainerEvent>;

/** An optional whole number within [min, max]. */
function optionalInt(key: string, min: number, max: number) {
  const msg = `argument "${key}" must be an integer from ${min} to ${max}`;
  return z
    .number({ error: msg })
    .int(msg)
    .min(min, msg)
    .max(max, msg)
    .nullish()
    .transform((v) => v ?? undefined);
}

const schemas = {
  migrate_container: z.object({
    container: text('container').min(1, 'argument "container" must be a container ID or name, not empty'),
    host: hostName('host')
      .nullish()
      .transform((v) => v ?? undefined),
    post_copy: z
      .boolean({ error: 'argument "post_copy" must be true or false' })
      .nullish()
      .transform((v) => v ?? undefined),
    project_id: text('project_id')
      .min(1, 'argument "project_id" must not be empty')
      .nullish()
      .transform((v) => v ?? undefined),
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
  report_state: z.object({
    host: text('host').min(1, 'argument "host" must not be empty'),
    state: hostState,
    taken_at: hostTime('argument "taken_at" must be an ISO 8601 time')
      .nullish()
      .transform((v) => v ?? undefined),
  }),
  container_event: z.object({ host: text('host').min(1, 'argument "host" must not be empty'), event: containerEvent }),
  set_host_status: z
    .object({
      host: hostName('host'),
      status: z.enum(HOST_STATUSES, { error: `argument "status" must be one of ${HOST_STATUSES.join(', ')}` }),
      disabled_reason: optionalText('disabled_reason'),
    })
    .refine((a) => a.status === 'disabled' || !a.disabled_reason, 'argument "disabled_reason" is only for "status": "disabled"'),
  evacuate_host: z.object({
    host: hostName('host'),
    target_host: hostName('target_host')
      .nullish()
      .transform((v) => v ?? undefined),
    max_parallel: optionalInt('max_parallel', 1, MAX_PARALLEL_LIMIT),
    post_copy: z
      .boolean({ error: 'argument "post_copy" must be true or false' })
      .nullish()
      .transform((v) => v ?? undefined),
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
