/**
 * The /v1 resources. Each handler only translates: policy check, input validation, one
 * ConductorAPI call, the contract's JSON. No decisions about migrations are made here.
 * Lists are paged as Nova's (limit, marker, a `<collection>_links` next link); a caller who may
 * not see every project's migrations sees only their project's, and another project's
 * migration is "not found" to them, never "forbidden". The same for containers (their project
 * is their creator's label): such a caller lists and migrates only their project's. Which
 * project a request reaches is decided once, in scope.ts.
 * What a request's microversion has (fields, routes) is decided with microversions.ts.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { RequestContext } from '../common/context.js';
import { MigrationNotFound, PolicyNotAuthorized } from '../common/errors.js';
import type { ConductorAPI } from '../conductor/interface.js';
import type { Policy, Target } from '../identity/policy.js';
import { POLICY } from '../identity/policies.js';
import type { Migration } from '../objects/migration.js';
import { contextOf } from './auth.js';
import { HttpError } from './errors.js';
import { atLeast, evacuationView, hostView, migrationView, since } from './microversions.js';
import { projectScope } from './scope.js';
import {
  parseContainerPage,
  parseContainerRef,
  parseEvacuateBody,
  parseEvacuationFilters,
  parseEvacuationId,
  parseHostName,
  parseHostUpdateBody,
  parseMigrateBody,
  parseMigrationActionBody,
  parseMigrationFilters,
  parseMigrationId,
  parseNoQuery,
} from './schemas.js';

export interface V1Deps {
  conductor: ConductorAPI;
  policy: Policy;
  /** Largest request body, bytes. */
  maxBodyBytes: number;
  /** Most items in one page of a list ([api] max_limit). */
  maxLimit?: number;
  /** The API's root URL as callers reach it (for `next` links); default: what the request was sent to. */
  baseUrl?: (req: Request) => string;
}

export interface PageLink {
  rel: 'next';
  href: string;
}

/**
 * One page from a list asked for `limit + 1` items: the first `limit`, and a `next` link when
 * there was one more (the same query, with the last item as the marker).
 */
export function pageOf<T>(items: T[], limit: number, markerOf: (item: T) => string, nextHref: (marker: string) => string): { items: T[]; links: PageLink[] } {
  if (items.length <= limit) return { items, links: [] };
  const page = items.slice(0, limit);
  return { items: page, links: [{ rel: 'next', href: nextHref(markerOf(page[page.length - 1])) }] };
}

/** The URL of the next page: the request's own query with `limit` set and `marker` replaced. */
function nextUrl(base: string, req: Request, limit: number, marker: string): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) {
    if (k !== 'marker' && k !== 'limit' && typeof v === 'string') q.set(k, v);
  }
  q.set('limit', String(limit));
  q.set('marker', marker);
  return `${base}${req.baseUrl}${req.path}?${q.toString()}`;
}

function defaultBaseUrl(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/** Nova's default target: the caller's own project and user. */
function ownTarget(ctx: RequestContext): Target {
  return { project_id: ctx.project_id, user_id: ctx.user_id };
}

/** A migration as a policy target: who asked for it. */
function migrationTarget(m: Migration): Target {
  return { project_id: m.project_id, user_id: m.user_id };
}

function hasBody(req: Request): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** JSON bodies only, within the size limit; parsed only once the caller passed policy. */
function jsonBody(maxBodyBytes: number) {
  const parse = express.json({ limit: maxBodyBytes, strict: false, type: JSON_TYPES });
  return (req: Request, res: Response, next: NextFunction): void => {
    if (hasBody(req) && !req.is(JSON_TYPES)) {
      throw new HttpError(415, `The request body must be JSON (Content-Type: application/json), not ${req.get('content-type') ?? 'untyped'}.`);
    }
    parse(req, res, next);
  };
}

function enforce(policy: Policy, rule: string) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    const ctx = contextOf(res);
    policy.enforce(rule, ctx, ownTarget(ctx));
    next();
  };
}

/** The answer for a known path and a method it does not have. */
export function methodNotAllowed(allowed: string[]) {
  const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
  return (req: Request, res: Response): void => {
    if (req.method === 'OPTIONS') {
      res.set('Allow', allow).status(204).end();
      return;
    }
    throw new HttpError(405, `The method ${req.method} is not allowed for ${req.baseUrl}${req.path}; allowed: ${allow}.`, { Allow: allow });
  };
}

export function v1Router({ conductor, policy, maxBodyBytes, maxLimit = 1000, baseUrl = defaultBaseUrl }: V1Deps): Router {
  const r = express.Router({ strict: false, caseSensitive: true });

  /** The project whose migrations the caller reaches; null: every project's. */
  const migrationScope = (ctx: RequestContext) =>
    projectScope(ctx, policy.check(POLICY.migrationAllProjects, ctx, ownTarget(ctx)), POLICY.migrationAllProjects);
  /** The project whose containers the caller reaches (lists, migrates); null: every project's. */
  const containerScope = (ctx: RequestContext) =>
    projectScope(ctx, policy.check(POLICY.containerAllProjects, ctx, ownTarget(ctx)), POLICY.containerAllProjects);

  /**
   * A migration the caller may act on under `rule`: another project's is "not found" unless the
   * caller sees all projects (the same answer as for one that does not exist); within reach, the
   * rule decides on the migration's owner (403).
   */
  const visibleMigration = async (ctx: RequestContext, id: string, rule: string): Promise<Migration> => {
    const notFound = () => new MigrationNotFound(`Migration ${id} could not be found.`, { migration_id: id });
    // Before the lookup: a caller who reaches no project gets the same 403 whether it exists or not.
    const scope = migrationScope(ctx);
    let m: Migration;
    try {
      m = await conductor.getMigration(ctx, id);
    } catch (e) {
      throw e instanceof MigrationNotFound ? notFound() : e;
    }
    if (scope !== null && m.project_id !== scope) throw notFound();
    policy.enforce(rule, ctx, migrationTarget(m));
    return m;
  };

  r.get('/hosts', enforce(policy, POLICY.hostGetAll), async (req, res) => {
    parseNoQuery(req.query);
    res.json({ hosts: (await conductor.listHosts(contextOf(res))).map((h) => hostView(res, h)) });
  });
  r.all('/hosts', methodNotAllowed(['GET']));

  // Host maintenance: enable/disable (Nova's service update) and evacuation (host-evacuate-live).
  r.put('/hosts/:host', since('1.2'), enforce(policy, POLICY.hostUpdate), jsonBody(maxBodyBytes), async (req, res) => {
    const host = parseHostName(req.params.host as string);
    parseNoQuery(req.query);
    const body = parseHostUpdateBody(req.body);
    res.json({ host: hostView(res, await conductor.setHostStatus(contextOf(res), host, body.status, body.disabled_reason ?? null)) });
  });
  r.all('/hosts/:host', since('1.2'), methodNotAllowed(['PUT']));

  r.post('/hosts/:host/evacuate', since('1.2'), enforce(policy, POLICY.hostEvacuate), jsonBody(maxBodyBytes), async (req, res) => {
    const host = parseHostName(req.params.host as string);
    parseNoQuery(req.query);
    const body = parseEvacuateBody(req.body, (v) => atLeast(res, v));
    const evacuation = await conductor.evacuateHost(contextOf(res), host, body);
    res
      .status(202)
      .location(`/v1/evacuations/${encodeURIComponent(evacuation.uuid)}`)
      .json({ evacuation: evacuationView(res, evacuation) });
  });
  r.all('/hosts/:host/evacuate', since('1.2'), methodNotAllowed(['POST']));

  r.get('/evacuations', since('1.2'), enforce(policy, POLICY.evacuationGetAll), async (req, res) => {
    const filters = parseEvacuationFilters(req.query);
    res.json({ evacuations: (await conductor.listEvacuations(contextOf(res), filters)).map((e) => evacuationView(res, e)) });
  });
  r.all('/evacuations', since('1.2'), methodNotAllowed(['GET']));

  r.get('/evacuations/:id', since('1.2'), enforce(policy, POLICY.evacuationGet), async (req, res) => {
    const id = parseEvacuationId(req.params.id as string);
    parseNoQuery(req.query);
    res.json({ evacuation: evacuationView(res, await conductor.getEvacuation(contextOf(res), id)) });
  });
  r.all('/evacuations/:id', since('1.2'), methodNotAllowed(['GET']));

  r.get('/containers', enforce(policy, POLICY.containerGetAll), async (req, res) => {
    const ctx = contextOf(res);
    const paged = atLeast(res, '1.1');
    const page = parseContainerPage(req.query, (v) => atLeast(res, v));
    const scope = containerScope(ctx);
    const limit = Math.min(page.limit ?? maxLimit, maxLimit);
    // Before 1.1 there are no links: the list is [api] max_limit items at most, as it always was.
    const all = await conductor.listContainers(ctx, { ...page, limit: paged ? limit + 1 : limit, ...(scope !== null ? { project_id: scope } : {}) });
    const { items, links } = pageOf(
      all,
      limit,
      (c) => c.id,
      (marker) => nextUrl(baseUrl(req), req, limit, marker),
    );
    res.json(links.length ? { containers: items, containers_links: links } : { containers: items });
  });
  r.all('/containers', methodNotAllowed(['GET']));

  r.post('/containers/:container/migrate', enforce(policy, POLICY.migrationCreate), jsonBody(maxBodyBytes), async (req, res) => {
    const ctx = contextOf(res);
    const container = parseContainerRef(req.params.container as string);
    const body = parseMigrateBody(req.body, (v) => atLeast(res, v));
    // Another project's container, or an unlabelled one, is "not found" to a project-scoped caller (the conductor never matches it).
    const scope = containerScope(ctx);
    const migration = await conductor.migrateContainer(ctx, container, body.host ?? null, {
      ...(body.post_copy ? { post_copy: true } : {}),
      ...(scope !== null ? { project_id: scope } : {}),
    });
    res
      .status(202)
      .location(`/v1/migrations/${encodeURIComponent(migration.uuid)}`)
      .json({ migration: migrationView(res, migration) });
  });
  r.all('/containers/:container/migrate', methodNotAllowed(['POST']));

  r.get('/migrations', enforce(policy, POLICY.migrationGetAll), async (req, res) => {
    const ctx = contextOf(res);
    const paged = atLeast(res, '1.1');
    const filters = parseMigrationFilters(req.query, (v) => atLeast(res, v));
    const scope = migrationScope(ctx);
    if (scope !== null) {
      // Nova's habit: a project filter is checked against the rule; without the all-projects rule only one's own project is listed.
      if (filters.project_id !== undefined && filters.project_id !== scope) {
        throw new PolicyNotAuthorized(`Policy doesn't allow ${POLICY.migrationAllProjects} to be performed.`, { rule: POLICY.migrationAllProjects });
      }
      filters.project_id = scope;
    }
    const limit = Math.min(filters.limit ?? maxLimit, maxLimit);
    const all = await conductor.listMigrations(ctx, { ...filters, limit: paged ? limit + 1 : limit });
    const { items, links } = pageOf(
      all,
      limit,
      (m) => m.uuid,
      (marker) => nextUrl(baseUrl(req), req, limit, marker),
    );
    const migrations = items.map((m) => migrationView(res, m));
    res.json(links.length ? { migrations, migrations_links: links } : { migrations });
  });
  r.all('/migrations', methodNotAllowed(['GET']));

  r.get('/migrations/:id', enforce(policy, POLICY.migrationGet), async (req, res) => {
    const ctx = contextOf(res);
    const id = parseMigrationId(req.params.id as string);
    parseNoQuery(req.query);
    res.json({ migration: migrationView(res, await visibleMigration(ctx, id, POLICY.migrationGet)) });
  });

  r.delete('/migrations/:id', enforce(policy, POLICY.migrationDelete), async (req, res) => {
    const ctx = contextOf(res);
    const id = parseMigrationId(req.params.id as string);
    // The rule's target is the migration (its owner), as Nova checks an instance's project.
    await visibleMigration(ctx, id, POLICY.migrationDelete);
    const migration = await conductor.abortMigration(ctx, id);
    res.status(202).json({ migration: migrationView(res, migration) });
  });
  r.all('/migrations/:id', methodNotAllowed(['GET', 'DELETE']));

  r.post('/migrations/:id/action', since('1.4'), enforce(policy, POLICY.migrationForceComplete), jsonBody(maxBodyBytes), async (req, res) => {
    const ctx = contextOf(res);
    const id = parseMigrationId(req.params.id as string);
    parseNoQuery(req.query);
    parseMigrationActionBody(req.body);
    await visibleMigration(ctx, id, POLICY.migrationForceComplete);
    const migration = await conductor.forceCompleteMigration(ctx, id);
    res.status(202).json({ migration: migrationView(res, migration) });
  });
  r.all('/migrations/:id/action', since('1.4'), methodNotAllowed(['POST']));

  return r;
}
