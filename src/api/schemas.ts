/**
 * Input validation (zod): request bodies, query filters and path identifiers. Each failure
 * becomes an InvalidInput (400) whose message names the field and what is wrong, or, for
 * an identifier that cannot exist, the resource's NotFound (404, as Nova answers for any
 * unknown id).
 */
import { z } from 'zod';
import { ContainerNotFound, InvalidInput, MigrationNotFound } from '../common/errors.js';
import type { MigrationFilters } from '../conductor/interface.js';
import { MIGRATION_STATUSES } from '../objects/migration.js';

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
  { host: hostName.nullable().optional() },
  { error: (i) => (i.code === 'invalid_type' ? 'The request body must be a JSON object, e.g. {"host": "compute2"} or {}' : undefined) },
);
export type MigrateBody = z.infer<typeof migrateBodySchema>;

/** One query value: given once, a non-empty string. */
const queryString = z
  .string({ error: (i) => (Array.isArray(i.input) ? 'must be given only once' : 'must be a string') })
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .refine(noControlChars, 'must not contain control characters');

/** GET /v1/migrations filters. */
export const migrationFiltersSchema = z.strictObject({
  container: queryString.optional(),
  status: z
    .enum(MIGRATION_STATUSES, {
      error: (i) => (Array.isArray(i.input) ? 'must be given only once' : `must be one of ${MIGRATION_STATUSES.join(', ')}`),
    })
    .optional(),
  source_host: queryString.optional(),
  dest_host: queryString.optional(),
});

/** Lists without filters. */
export const noQuerySchema = z.strictObject({});

type Where = 'body' | 'query';

/** One readable sentence per problem, e.g. `host: must be a string (a compute host name) or null`. */
export function formatIssues(error: z.ZodError, where: Where, allowed: readonly string[]): string {
  const parts = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ');
      const what = where === 'body' ? `Unknown field${issue.keys.length > 1 ? 's' : ''} in the request body` : `Unknown query parameter${issue.keys.length > 1 ? 's' : ''}`;
      return `${what}: ${keys} (allowed: ${allowed.length ? allowed.join(', ') : 'none'})`;
    }
    if (issue.path.length === 0) return issue.message;
    const name = issue.path.map(String).join('.');
    return where === 'body' ? `Invalid field "${name}": ${issue.message}` : `Invalid query parameter "${name}": ${issue.message}`;
  });
  return parts.join('; ');
}

function validate<S extends z.ZodObject>(schema: S, input: unknown, where: Where): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new InvalidInput(formatIssues(r.error, where, Object.keys(schema.shape)), { where });
}

/** The migrate body; an absent body is `{}`. */
export function parseMigrateBody(body: unknown): MigrateBody {
  return validate(migrateBodySchema, body === undefined ? {} : body, 'body');
}

export function parseMigrationFilters(query: unknown): MigrationFilters {
  const f = validate(migrationFiltersSchema, query ?? {}, 'query');
  const out: MigrationFilters = {};
  if (f.container !== undefined) out.container = f.container;
  if (f.status !== undefined) out.status = f.status;
  if (f.source_host !== undefined) out.source_host = f.source_host;
  if (f.dest_host !== undefined) out.dest_host = f.dest_host;
  return out;
}

export function parseNoQuery(query: unknown): void {
  validate(noQuerySchema, query ?? {}, 'query');
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
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
