/**
 * The /v1 resources. Each handler only translates: policy check, input validation, one
 * ConductorAPI call, the contract's JSON. No decisions about migrations are made here.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { RequestContext } from '../bus/context.js';
import type { ConductorAPI } from '../conductor/interface.js';
import type { Policy, Target } from '../identity/policy.js';
import { POLICY } from '../identity/policies.js';
import type { Migration } from '../objects/migration.js';
import { contextOf } from './auth.js';
import { HttpError } from './errors.js';
import { parseContainerRef, parseMigrateBody, parseMigrationFilters, parseMigrationId, parseNoQuery } from './schemas.js';

export interface V1Deps {
  conductor: ConductorAPI;
  policy: Policy;
  /** Largest request body, bytes. */
  maxBodyBytes: number;
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

export function v1Router({ conductor, policy, maxBodyBytes }: V1Deps): Router {
  const r = express.Router({ strict: false, caseSensitive: true });

  r.get('/hosts', enforce(policy, POLICY.hostGetAll), async (req, res) => {
    parseNoQuery(req.query);
    res.json({ hosts: await conductor.listHosts(contextOf(res)) });
  });
  r.all('/hosts', methodNotAllowed(['GET']));

  r.get('/containers', enforce(policy, POLICY.containerGetAll), async (req, res) => {
    parseNoQuery(req.query);
    res.json({ containers: await conductor.listContainers(contextOf(res)) });
  });
  r.all('/containers', methodNotAllowed(['GET']));

  r.post('/containers/:container/migrate', enforce(policy, POLICY.migrationCreate), jsonBody(maxBodyBytes), async (req, res) => {
    const container = parseContainerRef(req.params.container as string);
    const body = parseMigrateBody(req.body);
    const migration = await conductor.migrateContainer(contextOf(res), container, body.host ?? null);
    res.status(202).location(`/v1/migrations/${encodeURIComponent(migration.uuid)}`).json({ migration });
  });
  r.all('/containers/:container/migrate', methodNotAllowed(['POST']));

  r.get('/migrations', enforce(policy, POLICY.migrationGetAll), async (req, res) => {
    const filters = parseMigrationFilters(req.query);
    res.json({ migrations: await conductor.listMigrations(contextOf(res), filters) });
  });
  r.all('/migrations', methodNotAllowed(['GET']));

  r.get('/migrations/:id', async (req, res) => {
    const ctx = contextOf(res);
    const id = parseMigrationId(req.params.id as string);
    parseNoQuery(req.query);
    const migration = await conductor.getMigration(ctx, id);
    policy.enforce(POLICY.migrationGet, ctx, migrationTarget(migration));
    res.json({ migration });
  });

  r.delete('/migrations/:id', async (req, res) => {
    const ctx = contextOf(res);
    const id = parseMigrationId(req.params.id as string);
    // The rule's target is the migration (its owner), as Nova checks an instance's project.
    policy.enforce(POLICY.migrationDelete, ctx, migrationTarget(await conductor.getMigration(ctx, id)));
    const migration = await conductor.abortMigration(ctx, id);
    res.status(202).json({ migration });
  });
  r.all('/migrations/:id', methodNotAllowed(['GET', 'DELETE']));

  return r;
}
