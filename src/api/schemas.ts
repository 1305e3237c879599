/**
 * Input validation (zod): request bodies, query filters and path identifiers. Each failure
 * becomes an InvalidInput (400) whose message names the field and what is wrong, or, for
 * an identifier that cannot exist, the resource's NotFound (404, as Nova answers for any
 * unknown id).
 */
import { z } from 'zod';
import { ContainerNotFound, EvacuationNotFound, HostNotFound, InvalidInput, MigrationNotFound } from '../common/errors.js';
import { MIGRATION_SORT_KEYS, SORT_DIRS, type MigrationFilters, type PageRequest } from '../conductor/interface.js';
import { MAX_PARALLEL_LIMIT } from '../objects/evacuation.js';
import { HOST_STATUSES } from '../objects/host.js';
import { MIGRATION_STATUSES } from '../objects/migration.js';
import { fieldSince } from './microversions.js';

/** Whether the request's microversion is at least the one given (default: every field known). */
export type Has = (version: string) => boolean;
const ALL: Has = () => true;

function noControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** A compute host name: 1-255 printable characters. */
const hostName = z
  .string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string (a compute host name) or null') })
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .refine(noControlChars, 'must not contain control characters');

/** POST /v1/containers/{container}/migrate */
export const migrateBodySchema = z.strictObject(
  { host: hostName.nullable().optional(), post_copy: z.boolean({ error: 'must be true or false' }).nullable().optional() },
  { error: (i) => (i.code === 'invalid_type' ? 'The request body must be a JSON object, e.g. {"host": "compute2"} or {}' : undefined) },
);

/** POST /v1/migrations/{uuid}/action: one action, Nova's server-action style. */
export const migrationActionBodySchema = z.strictObject(
  { force_complete: z.null({ error: 'must be null' }) },
  { error: (i) => (i.code === 'invalid_type' ? 'The request body must be a JSON object: {"force_complete": null}' : undefined) },
);
export type MigrateBody = z.infer<typeof migrateBodySchema>;

/** PUT /v1/hosts/{host}: Nova's service update (status, disabled_reason). */
export const hostUpdateBodySchema = z.strictObject(
  {
    status: z.enum(HOST_STATUSES, {
      error: (i) => (i.input === undefined ? 'is required ("enabled" or "disabled")' : `must be one of ${HOST_STATUSES.join(', ')}`),
    }),
    disabled_reason: z
      .string({ error: 'must be a string or null' })
      .max(255, 'must be at most 255 characters')
      .refine(noControlChars, 'must not contain control characters')
      .nullable()
      .optional(),
  },
  {
    error: (i) =>
      i.code === 'invalid_type' ? 'The request body must be a JSON object, e.g. {"status": "disabled", "disabled_reason": "maintenance"}' : undefined,
  },
);
export type HostUpdateBody = z.infer<typeof hostUpdateBodySchema>;

/** POST /v1/hosts/{host}/evacuate: every field optional. */
export const evacuateBodySchema = z.strictObject(
  {
    target_host: hostName.nullable().optional(),
    max_parallel: z
      .number({ error: `must be an integer from 1 to ${MAX_PARALLEL_LIMIT}` })
      .int(`must be an integer from 1 to ${MAX_PARALLEL_LIMIT}`)
      .min(1, `must be an integer from 1 to ${MAX_PARALLEL_LIMIT}`)
      .max(MAX_PARALLEL_LIMIT, `must be an integer from 1 to ${MAX_PARALLEL_LIMIT}`)
      .nullable()
      .optional(),
    post_copy: z.boolean({ error: 'must be true or false' }).nullable().optional(),
  },
  { error: (i) => (i.code === 'invalid_type' ? 'The request body must be a JSON object, e.g. {"max_parallel": 2} or {}' : undefined) },
);
export type EvacuateBody = z.infer<typeof evacuateBodySchema>;

/** One query value: given once, a non-empty string. */
const queryString = z
  .string({ error: (i) => (Array.isArray(i.input) ? 'must be given only once' : 'must be a string') })
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .refine(noControlChars, 'must not contain control characters');

function oneOf<T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (i) => (Array.isArray(i.input) ? 'must be given only once' : `must be one of ${values.join(', ')}`),
  });
}

/** `limit`: a whole number of items, at least 1 (a larger one than the API's maximum gets the maximum, as in Nova). */
const limitParam = z
  .string({ error: (i) => (Array.isArray(i.input) ? 'must be given only once' : 'must be a positive integer') })
  .regex(/^[0-9]{1,9}$/, 'must be a positive integer')
  .transform(Number)
  .refine((n) => n >= 1, 'must be a positive integer');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** An ISO 8601 date or date-time; without a zone it is UTC (as Nova reads changes-since). Returned in toISOString form. */
export function parseIsoTime(v: string): string | null {
  const m = ISO_RE.exec(v.trim());
  if (!m) return null;
  let text = v.trim().replace(' ', 'T');
  if (!m[1] && text.includes('T')) text += 'Z';
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

const isoTimeParam = queryString.transform((v, ctx) => {
  const t = parseIsoTime(v);
  if (t === null) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date-time, e.g. 2026-11-30T06:00:00Z' });
    return z.NEVER;
  }
  return t;
});

/** GET /v1/migrations: filters, paging and sorting (Nova's 2.59/2.80 parameters). */
export const migrationFiltersSchema = z.strictObject({
  container: queryString.optional(),
  status: oneOf(MIGRATION_STATUSES).optional(),
  source_host: queryString.optional(),
  dest_host: queryString.optional(),
  user_id: queryString.optional(),
  project_id: queryString.optional(),
  'changes-since': isoTimeParam.optional(),
  'changes-before': isoTimeParam.optional(),
  limit: limitParam.optional(),
  marker: queryString.refine((v) => UUID_RE.test(v), 'must be the uuid of a migration').optional(),
  sort_key: oneOf(MIGRATION_SORT_KEYS).optional(),
  sort_dir: oneOf(SORT_DIRS).optional(),
});

/** GET /v1/containers: paging. */
export const containerPageSchema = z.strictObject({
  limit: limitParam.optional(),
  marker: queryString.optional(),
});

/** GET /v1/evacuations: filters. */
export const evacuationFiltersSchema = z.strictObject({
  host: queryString.optional(),
  limit: limitParam.optional(),
});

/** Lists without filters. */
export const noQuerySchema = z.strictObject({});

type Where = 'body' | 'query';

/** One readable sentence per problem, e.g. `host: must be a string (a compute host name) or null`. */
export function formatIssues(error: z.ZodError, where: Where, allowed: readonly string[], has: Has = ALL): string {
  const parts = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ');
      const what =
        where === 'body'
          ? `Unknown field${issue.keys.length > 1 ? 's' : ''} in the request body`
          : `Unknown query parameter${issue.keys.length > 1 ? 's' : ''}`;
      // A field of a later microversion: say which version has it.
      const later = issue.keys.flatMap((k) => {
        const since = fieldSince(k);
        return since !== undefined && !has(since) ? [`"${k}" needs microversion ${since} or later`] : [];
      });
      return `${what}: ${keys} (allowed: ${allowed.length ? allowed.join(', ') : 'none'}${later.length ? `; ${later.join(', ')}` : ''})`;
    }
    if (issue.path.length === 0) return issue.message;
    const name = issue.path.map(String).join('.');
    return where === 'body' ? `Invalid field "${name}": ${issue.message}` : `Invalid query parameter "${name}": ${issue.message}`;
  });
  return parts.join('; ');
}

function validate<S extends z.ZodObject>(schema: S, input: unknown, where: Where, has: Has = ALL): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new InvalidInput(formatIssues(r.error, where, Object.keys(schema.shape), has), { where });
}

/** The schema as a request at an older microversion knows it: the fields added later left out (so refused as unknown). */
function atVersion<S extends z.ZodObject>(schema: S, has: Has): S {
  const later = Object.keys(schema.shape).filter((k) => {
    const since = fieldSince(k);
    return since !== undefined && !has(since);
  });
  return later.length ? (schema.omit(Object.fromEntries(later.map((k) => [k, true])) as never) as unknown as S) : schema;
}

/** The migrate body; an absent body is `{}`. */
export function parseMigrateBody(body: unknown, has: Has = ALL): MigrateBody {
  return validate(atVersion(migrateBodySchema, has), body === undefined ? {} : body, 'body', has);
}

export function parseMigrationFilters(query: unknown, has: Has = ALL): MigrationFilters {
  const f = validate(atVersion(migrationFiltersSchema, has), query ?? {}, 'query', has);
  const out: MigrationFilters = {};
  for (const k of ['container', 'status', 'source_host', 'dest_host', 'user_id', 'project_id', 'limit', 'sort_key', 'sort_dir'] as const) {
    if (f[k] !== undefined) (out as Record<string, unknown>)[k] = f[k];
  }
  if (f.marker !== undefined) out.marker = f.marker.toLowerCase();
  if (f['changes-since'] !== undefined) out.changes_since = f['changes-since'];
  if (f['changes-before'] !== undefined) out.changes_before = f['changes-before'];
  if (out.changes_since && out.changes_before && out.changes_before < out.changes_since) {
    throw new InvalidInput(`The value of changes-since (${out.changes_since}) must be earlier than or equal to changes-before (${out.changes_before})`, {
      where: 'query',
    });
  }
  return out;
}

export function parseContainerPage(query: unknown, has: Has = ALL): PageRequest {
  const f = validate(atVersion(containerPageSchema, has), query ?? {}, 'query', has);
  const out: PageRequest = {};
  if (f.limit !== undefined) out.limit = f.limit;
  if (f.marker !== undefined) out.marker = f.marker;
  return out;
}

export function parseHostUpdateBody(body: unknown): HostUpdateBody {
  const b = validate(hostUpdateBodySchema, body === undefined ? {} : body, 'body');
  if (b.status === 'enabled' && b.disabled_reason) {
    throw new InvalidInput('Invalid field "disabled_reason": only allowed with "status": "disabled"', { where: 'body' });
  }
  return b;
}

/** The action body: exactly `{"force_complete": null}` (the only action). */
export function parseMigrationActionBody(body: unknown): { force_complete: null } {
  if (body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)) {
    throw new InvalidInput('The request body must name an action: {"force_complete": null}', { where: 'body' });
  }
  return validate(migrationActionBodySchema, body, 'body');
}

/** The evacuate body; an absent body is `{}`. */
export function parseEvacuateBody(body: unknown, has: Has = ALL): EvacuateBody {
  return validate(atVersion(evacuateBodySchema, has), body === undefined ? {} : body, 'body', has);
}

export function parseEvacuationFilters(query: unknown): { host?: string; limit?: number } {
  const f = validate(evacuationFiltersSchema, query ?? {}, 'query');
  return { ...(f.host !== undefined ? { host: f.host } : {}), ...(f.limit !== undefined ? { limit: f.limit } : {}) };
}

/** A host name in a path; one no host could have is "not found" (404). */
export function parseHostName(name: string): string {
  if (!hostName.safeParse(name).success) throw new HostNotFound(`Compute host ${shown(name)} could not be found.`, { host: shown(name) });
  return name;
}

/** An evacuation id: a UUID (returned lower case); anything else cannot exist: 404. */
export function parseEvacuationId(id: string): string {
  if (!UUID_RE.test(id)) throw new EvacuationNotFound(`Evacuation ${shown(id)} could not be found.`, { evacuation_id: shown(id) });
  return id.toLowerCase();
}

export function parseNoQuery(query: unknown): void {
  validate(noQuerySchema, query ?? {}, 'query');
}

/** Docker's container names ([a-zA-Z0-9][a-zA-Z0-9_.-]*, an optional leading /) and ids or id prefixes. */
const CONTAINER_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

function shown(id: string): string {
  return id.length > 80 ? `${id.slice(0, 80)}...` : id;
}

/** A migration id: a UUID (any case; returned lower case). Anything else cannot exist: 404. */
export function parseMigrationId(id: string): string {
  if (!UUID_RE.test(id)) throw new MigrationNotFound(`Migration ${shown(id)} could not be found.`, { migration_id: shown(id) });
  return id.toLowerCase();
}

/** A container id, id prefix or name. One Docker could never have: 404. */
export function parseContainerRef(ref: string): string {
  if (!CONTAINER_RE.test(ref)) throw new ContainerNotFound(`Container ${shown(ref)} could not be found.`, { container: shown(ref) });
  return ref.startsWith('/') ? ref.slice(1) : ref;
}
