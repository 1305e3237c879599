import { describe, expect, it } from '@jest/globals';
import { projectScope } from '../../../src/api/scope.js';
import { RequestContext } from '../../../src/common/context.js';
import { ProjectScopeRequired } from '../../../src/common/errors.js';

describe('projectScope: which project a request reaches', () => {
  const rule = 'ferry:migration:all_projects';

  it('every project (null) for a caller who passes the all-projects rule, with or without a project', () => {
    expect(projectScope(new RequestContext({ project_id: 'p-admin' }), true, rule)).toBeNull();
    expect(projectScope(new RequestContext({ system_scope: 'all' }), true, rule)).toBeNull();
  });

  it("else the token's project", () => {
    expect(projectScope(new RequestContext({ project_id: 'p-demo' }), false, rule)).toBe('p-demo');
  });

  it('a token without a project (domain- or system-scoped, unscoped) reaches none: refused, never "no filter"', () => {
    for (const ctx of [
      new RequestContext({ domain_id: 'default' }),
      new RequestContext({ system_scope: 'all' }),
      new RequestContext({}),
      new RequestContext({ project_id: '' }),
    ]) {
      expect(() => projectScope(ctx, false, rule)).toThrow(ProjectScopeRequired);
    }
    expect(() => projectScope(new RequestContext({}), false, rule)).toThrow(/ferry:migration:all_projects.*no project/);
  });
});
