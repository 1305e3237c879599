/**
 * keystonemiddleware's auth_token, the part Ferry needs: strip the identity headers a
 * caller might send (so nobody can fake X-Roles), validate X-Auth-Token with Keystone,
 * set the identity headers from the token, and build the request context the rest of the
 * API (and the conductor, over the bus) works with. A missing or bad token is a 401 with
 * `WWW-Authenticate: Keystone uri="<www_authenticate_uri>"` (added by the error handler).
 */
import type { NextFunction, Request, Response } from 'express';
import { RequestContext } from '../common/context.js';
import { NotAuthenticated } from '../common/errors.js';
import type { TokenInfo, TokenValidator } from '../identity/types.js';
import type { Policy } from '../identity/policy.js';
import { POLICY } from '../identity/policies.js';

/** Headers keystonemiddleware sets; a caller's copies are removed before anything reads them. */
const IDENTITY_HEADER_RE =
  /^x-(identity-status|service-identity-status|roles|role|service-roles|user-id|user-name|user|user-domain-id|user-domain-name|project-id|project-name|project-domain-id|project-domain-name|service-user-id|service-user-name|service-user-domain-id|service-user-domain-name|service-project-id|service-project-name|service-project-domain-id|service-project-domain-name|tenant-id|tenant-name|tenant|domain-id|domain-name|service-catalog|is-admin-project|system-scope)$/i;

export function isIdentityHeader(name: string): boolean {
  return IDENTITY_HEADER_RE.test(name);
}

export function stripIdentityHeaders(req: Request, _res: Response, next: NextFunction): void {
  for (const name of Object.keys(req.headers)) {
    if (isIdentityHeader(name)) delete req.headers[name];
  }
  next();
}

/** The identity headers keystonemiddleware would set for this token. */
export function identityHeaders(info: TokenInfo): Record<string, string> {
  const h: Record<string, string> = { 'x-identity-status': 'Confirmed', 'x-roles': info.roles.join(','), 'x-user-id': info.user_id };
  const opt: [string, string | null][] = [
    ['x-user-name', info.user_name],
    ['x-user-domain-id', info.user_domain_id],
    ['x-user-domain-name', info.user_domain_name],
    ['x-project-id', info.project_id],
    ['x-project-name', info.project_name],
    ['x-project-domain-id', info.project_domain_id],
    ['x-project-domain-name', info.project_domain_name],
    ['x-domain-id', info.domain_id],
    ['x-domain-name', info.domain_name],
    ['x-system-scope', info.system_scope],
  ];
  for (const [k, v] of opt) if (v !== null) h[k] = v;
  h['x-is-admin-project'] = info.is_admin_project ? 'True' : 'False';
  return h;
}

/** The admin project ([api] admin_project_name / admin_project_domain_name); an empty name trusts Keystone's flag. */
export interface AdminProject {
  name: string;
  domain: string;
}

/**
 * Whether the token is scoped to the admin project: the configured one (matched by name, its
 * domain by name or id), else what Keystone says (`is_admin_project`; a token without the flag,
 * from a Keystone without an admin project, is in none: keystonemiddleware would say all).
 */
export function isAdminProject(info: TokenInfo, admin: AdminProject | undefined): boolean {
  if (!admin?.name) return info.is_admin_project;
  if (info.project_id === null || info.project_name !== admin.name) return false;
  const d = admin.domain.toLowerCase();
  return info.project_domain_name?.toLowerCase() === d || info.project_domain_id?.toLowerCase() === d;
}

/**
 * The request context of a validated token. `is_admin` is what the `context_is_admin`
 * rule says of the caller, as Nova's RequestContext does.
 */
export function contextFromToken(
  info: TokenInfo,
  token: string,
  ids: { requestId: string; globalRequestId?: string | null },
  policy: Policy,
  adminProject?: AdminProject,
): RequestContext {
  const init = {
    request_id: ids.requestId,
    global_request_id: ids.globalRequestId ?? null,
    user_id: info.user_id,
    user_name: info.user_name,
    project_id: info.project_id,
    project_name: info.project_name,
    domain_id: info.domain_id,
    user_domain_id: info.user_domain_id,
    project_domain_id: info.project_domain_id,
    roles: info.roles,
    is_admin_project: isAdminProject(info, adminProject),
    system_scope: info.system_scope,
    auth_token: token,
  };
  const isAdmin = policy.check(POLICY.contextIsAdmin, new RequestContext({ ...init, is_admin: false }));
  return new RequestContext({ ...init, is_admin: isAdmin });
}

export const MISSING_TOKEN_MESSAGE = 'Authentication required: send a Keystone token in the X-Auth-Token header.';
export const INVALID_TOKEN_MESSAGE = 'The token in X-Auth-Token is invalid or has expired.';

/** The per-request state the middleware keeps in res.locals. */
export interface ApiLocals {
  requestId: string;
  globalRequestId: string | null;
  context?: RequestContext;
}

export function locals(res: Response): ApiLocals {
  return res.locals as ApiLocals;
}

/** The authenticated caller's context (set by `authenticate`). */
export function contextOf(res: Response): RequestContext {
  const ctx = locals(res).context;
  if (!ctx) throw new NotAuthenticated(MISSING_TOKEN_MESSAGE);
  return ctx;
}

export function authenticate(identity: TokenValidator, policy: Policy, adminProject?: AdminProject) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const token = req.get('x-auth-token');
    if (!token || token.trim() === '') throw new NotAuthenticated(MISSING_TOKEN_MESSAGE);
    const info = await identity.validateToken(token.trim());
    if (!info) throw new NotAuthenticated(INVALID_TOKEN_MESSAGE);
    for (const [k, v] of Object.entries(identityHeaders(info))) req.headers[k] = v;
    const l = locals(res);
    l.context = contextFromToken(info, token.trim(), { requestId: l.requestId, globalRequestId: l.globalRequestId }, policy, adminProject);
    next();
  };
}
