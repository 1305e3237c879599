/**
 * Which project a request reaches. A caller who passes an all-projects rule (a cloud admin, by
 * default) reaches every project; anyone else only the project of their token. A token without a
 * project (domain- or system-scoped, or unscoped) then reaches none: it is refused with a 403,
 * never taken as "no project filter", which would be every project's.
 */
import type { RequestContext } from '../common/context.js';
import { ProjectScopeRequired } from '../common/errors.js';

/** null: every project (`allProjects` passed); else the caller's project. `rule`: the all-projects rule, for the message. */
export function projectScope(ctx: RequestContext, allProjects: boolean, rule: string): string | null {
  if (allProjects) return null;
  if (typeof ctx.project_id === 'string' && ctx.project_id !== '') return ctx.project_id;
  throw new ProjectScopeRequired(
    `Policy doesn't allow ${rule} to be performed, so only one project's resources are reached, and this token has no project: use a project-scoped token.`,
    { rule },
  );
}
