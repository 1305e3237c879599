import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import yaml from 'js-yaml';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { ConfigError, InvalidScope, PolicyNotAuthorized } from '../../../src/common/errors.js';
import { DEFAULT_POLICIES, POLICY, type RuleDefault } from '../../../src/identity/policies.js';
import {
  checkToString,
  DEFAULT_ENFORCEMENT,
  deprecatedRulesInForce,
  generatePolicySample,
  parseCheckString,
  parsePolicyText,
  Policy,
  PolicySyntaxError,
  tokenScope,
  unusedPolicyRules,
  type Credentials,
} from '../../../src/identity/policy.js';
import { defaultConfig } from '../../../src/conf/index.js';

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const logger = pino({ level: 'silent' });

const admin: Credentials = { user_id: 'u1', project_id: 'p1', roles: ['admin', 'member'], is_admin: false, is_admin_project: true };
const member: Credentials = { user_id: 'u2', project_id: 'p2', roles: ['member', 'reader'], is_admin: false };

describe('check-string parser', () => {
  it.each([
    ['@', '@'],
    ['!', '!'],
    ['', '@'],
    ['role:admin', 'role:admin'],
    ['rule:admin_api', 'rule:admin_api'],
    ['is_admin:True', 'is_admin:True'],
    ['project_id:%(project_id)s', 'project_id:%(project_id)s'],
    ['role:a or role:b and role:c', 'role:a or (role:b and role:c)'],
    ['(role:a or role:b) and role:c', '(role:a or role:b) and role:c'],
    ['not role:a and role:b', 'not role:a and role:b'],
    ['not (role:a and role:b)', 'not (role:a and role:b)'],
    ['NOT role:a OR role:b', 'not role:a or role:b'],
    ['((role:a))', 'role:a'],
    ['(project_id:%(project_id)s)', 'project_id:%(project_id)s'],
    ['role:admin or (role:member and project_id:%(target.project_id)s)', 'role:admin or (role:member and project_id:%(target.project_id)s)'],
    ['not not @', 'not not @'],
  ])('%j -> %s', (text, rendered) => {
    expect(checkToString(parseCheckString(text))).toBe(rendered);
  });

  it('not binds tighter than and, and tighter than or', () => {
    expect(parseCheckString('not role:a and role:b')).toEqual({
      type: 'and',
      checks: [
        { type: 'not', check: { type: 'role', role: 'a' } },
        { type: 'role', role: 'b' },
      ],
    });
    expect(parseCheckString('role:a or role:b or role:c')).toEqual({
      type: 'or',
      checks: [
        { type: 'role', role: 'a' },
        { type: 'role', role: 'b' },
        { type: 'role', role: 'c' },
      ],
    });
  });

  it.each([
    ['role:a and', /expected a check, "not" or "\(" but found the end/],
    ['(role:a', /expected "\)" but found the end/],
    ['role:a)', /unexpected "\)" after a complete rule/],
    ['role:a role:b', /unexpected "role:b"/],
    ['admin', /"admin" is not a check/],
    ['role:', /is not a check/],
    [':x', /is not a check/],
    ['and role:a', /expected a check/],
    ['http://example.com/check', /remote http checks are not supported/],
    ['project_id:%(project_id)', /%\(key\)s/],
    ['project_id:%()s', /%\(key\)s/],
    ['or', /expected a check/],
    ['()', /expected a check/],
  ])('%j is refused', (text, message) => {
    expect(() => parseCheckString(text)).toThrow(PolicySyntaxError);
    expect(() => parseCheckString(text)).toThrow(message);
  });
});

describe('evaluation', () => {
  const p = Policy.fromRules({
    only_admin: 'role:admin',
    owner: 'project_id:%(project_id)s',
    owner_dotted: 'project_id:%(target.project_id)s',
    admin_or_owner: 'rule:only_admin or rule:owner',
    not_reader: 'not role:reader',
    flag: 'is_admin:True',
    literal: "'compute':%(kind)s",
    bool_target: 'True:%(public)s',
    user_in_list: 'roles:member',
    never: '!',
    always: '@',
    combo: '(role:member or role:admin) and not role:reader',
  });

  it('role: is case-insensitive and looks at the roles list', () => {
    expect(p.check('only_admin', admin)).toBe(true);
    expect(p.check('only_admin', { ...admin, roles: ['Admin'] })).toBe(true);
    expect(p.check('only_admin', member)).toBe(false);
  });

  it('generic checks substitute from the target', () => {
    expect(p.check('owner', member, { project_id: 'p2' })).toBe(true);
    expect(p.check('owner', member, { project_id: 'p1' })).toBe(false);
    expect(p.check('owner', member, {})).toBe(false); // a missing key fails the check
    expect(p.check('owner_dotted', member, { target: { project_id: 'p2' } })).toBe(true);
    expect(p.check('owner_dotted', member, { 'target.project_id': 'p2' })).toBe(true);
    expect(p.check('owner', { ...member, project_id: null }, { project_id: null })).toBe(true); // None == None, as oslo.policy
  });

  it('is_admin:True compares the Python spelling of the boolean', () => {
    expect(p.check('flag', { ...member, is_admin: true })).toBe(true);
    expect(p.check('flag', member)).toBe(false);
  });

  it('literal kinds compare to the substituted match', () => {
    expect(p.check('literal', member, { kind: 'compute' })).toBe(true);
    expect(p.check('literal', member, { kind: 'network' })).toBe(false);
    expect(p.check('bool_target', member, { public: true })).toBe(true);
    expect(p.check('bool_target', member, { public: false })).toBe(false);
  });

  it('a list credential matches when it contains the value', () => {
    expect(p.check('user_in_list', member)).toBe(true);
    expect(p.check('user_in_list', { ...admin, roles: ['admin'] })).toBe(false);
  });

  it('rule:, not, and, or, @, !', () => {
    expect(p.check('admin_or_owner', member, { project_id: 'p2' })).toBe(true);
    expect(p.check('admin_or_owner', member, { project_id: 'p9' })).toBe(false);
    expect(p.check('admin_or_owner', admin, { project_id: 'p9' })).toBe(true);
    expect(p.check('not_reader', admin)).toBe(true);
    expect(p.check('not_reader', member)).toBe(false);
    expect(p.check('never', admin)).toBe(false);
    expect(p.check('always', member)).toBe(true);
    expect(p.check('combo', admin)).toBe(true);
    expect(p.check('combo', member)).toBe(false);
  });

  it('takes a RequestContext', () => {
    const ctx = new RequestContext({ user_id: 'u2', project_id: 'p2', roles: ['member'] });
    expect(p.check('owner', ctx, { project_id: 'p2' })).toBe(true);
    expect(p.check('flag', RequestContext.admin())).toBe(true);
  });

  it('enforce throws PolicyNotAuthorized; an unregistered rule is a programming error', () => {
    expect(() => p.enforce('only_admin', member)).toThrow(PolicyNotAuthorized);
    expect(() => p.enforce('only_admin', member)).toThrow("Policy doesn't allow only_admin to be performed.");
    expect(() => p.enforce('only_admin', admin)).not.toThrow();
    expect(() => p.check('ferry:nothing', admin)).toThrow(/not registered/);
  });
});

describe('default rules', () => {
  const p = Policy.fromRules({});
  const ferryRules = DEFAULT_POLICIES.filter((d) => d.name.startsWith('ferry:')).map((d) => d.name);
  /** The reads a project's readers may do (the target is the resource's project). */
  const projectReads: string[] = [POLICY.migrationGet, POLICY.migrationGetAll, POLICY.containerGetAll];

  it('are the documented set', () => {
    expect(Object.fromEntries(DEFAULT_POLICIES.map((d) => [d.name, d.check_str]))).toEqual({
      context_is_admin: 'role:admin and (is_admin_project:True or system_scope:all)',
      admin_api: 'is_admin:True or rule:context_is_admin',
      project_reader_api: 'role:reader and project_id:%(project_id)s',
      project_member_api: 'role:member and project_id:%(project_id)s',
      project_reader_or_admin: 'rule:project_reader_api or rule:context_is_admin',
      project_member_or_admin: 'rule:project_member_api or rule:context_is_admin',
      'ferry:migration:all_projects': 'rule:admin_api',
      'ferry:migration:create': 'rule:admin_api',
      'ferry:migration:delete': 'rule:admin_api',
      'ferry:migration:force_complete': 'rule:admin_api',
      'ferry:migration:get': 'rule:project_reader_or_admin',
      'ferry:migration:get_all': 'rule:project_reader_or_admin',
      'ferry:host:get_all': 'rule:admin_api',
      'ferry:host:update': 'rule:admin_api',
      'ferry:host:evacuate': 'rule:admin_api',
      'ferry:evacuation:get': 'rule:admin_api',
      'ferry:evacuation:get_all': 'rule:admin_api',
      'ferry:container:get_all': 'rule:project_reader_or_admin',
      'ferry:container:all_projects': 'rule:admin_api',
    });
    for (const d of DEFAULT_POLICIES) {
      expect(d.description.length).toBeGreaterThan(10);
      if (d.name.startsWith('ferry:')) expect(d.operations.length).toBeGreaterThan(0);
      // Every rule the API enforces says which token scopes it is for; helpers say nothing.
      expect([d.name, d.scope_types !== undefined]).toEqual([d.name, d.name.startsWith('ferry:')]);
    }
    // Deprecated: exactly the reads that were admin-only, with their old default.
    expect(DEFAULT_POLICIES.filter((d) => d.deprecated_rule).map((d) => [d.name, d.deprecated_rule!.name, d.deprecated_rule!.check_str])).toEqual(
      projectReads.map((r) => [r, r, 'rule:admin_api']),
    );
  });

  it('scope_types: project for migrations and containers, system or project for hosts and evacuations', () => {
    for (const d of DEFAULT_POLICIES.filter((x) => x.name.startsWith('ferry:'))) {
      const want = /^ferry:(host|evacuation):/.test(d.name) ? ['system', 'project'] : ['project'];
      expect([d.name, d.scope_types]).toEqual([d.name, want]);
    }
  });

  it('admin may do everything; a project member or reader only read their own project', () => {
    const reader: Credentials = { user_id: 'u3', project_id: 'p2', roles: ['reader'], is_admin: false };
    for (const r of ferryRules) {
      expect([r, p.check(r, admin, { project_id: 'p9' })]).toEqual([r, true]);
      const reads = projectReads.includes(r);
      // is_admin (an internal context) is admin_api; the new read defaults name context_is_admin, as Nova's.
      if (!reads) expect([r, p.check(r, { ...member, is_admin: true })]).toEqual([r, true]);
      for (const who of [member, reader]) {
        expect([r, who.roles, p.check(r, who, { project_id: 'p2' })]).toEqual([r, who.roles, reads]);
        // Another project's resource: never.
        expect([r, who.roles, p.check(r, who, { project_id: 'p9' })]).toEqual([r, who.roles, false]);
      }
    }
    expect(p.check(POLICY.contextIsAdmin, admin)).toBe(true);
  });

  it('the reader role is what counts: a role outside reader/member/admin in the project reads nothing', () => {
    const other: Credentials = { user_id: 'u4', project_id: 'p2', roles: ['heat_stack_owner'], is_admin: false };
    for (const r of projectReads) expect([r, p.check(r, other, { project_id: 'p2' })]).toEqual([r, false]);
    // Keystone puts implied roles in the token: an admin of a tenant project has reader, and reads that project.
    const tenantAdmin: Credentials = { user_id: 'u5', project_id: 'p2', roles: ['admin', 'member', 'reader'], is_admin_project: false };
    expect(p.check(POLICY.migrationGetAll, tenantAdmin, { project_id: 'p2' })).toBe(true);
    expect(p.check(POLICY.migrationAllProjects, tenantAdmin, { project_id: 'p2' })).toBe(false);
    expect(p.check(POLICY.migrationCreate, tenantAdmin, { project_id: 'p2' })).toBe(false);
  });

  it("context_is_admin is Keystone's convention: the admin role in the admin project, or system scope", () => {
    expect(p.check(POLICY.contextIsAdmin, admin)).toBe(true);
    // The admin role in another project (e.g. a tenant's own project admin) is not a cloud administrator.
    const projectAdmin = { ...admin, project_id: 'p-tenant', is_admin_project: false };
    expect(p.check(POLICY.contextIsAdmin, projectAdmin)).toBe(false);
    for (const r of ferryRules) expect([r, p.check(r, projectAdmin, { project_id: 'p-other' })]).toEqual([r, false]);
    // A system-scoped token with the admin role is one.
    expect(p.check(POLICY.contextIsAdmin, { ...admin, project_id: null, is_admin_project: false, system_scope: 'all' })).toBe(true);
    // System scope without the admin role is not.
    expect(p.check(POLICY.contextIsAdmin, { ...member, system_scope: 'all' })).toBe(false);
  });

  it('an override replaces one rule and keeps the rest', () => {
    const o = Policy.fromRules({ 'ferry:host:get_all': 'role:reader' });
    expect(o.check('ferry:host:get_all', member)).toBe(true);
    expect(o.check('ferry:migration:create', member)).toBe(false);
    expect(o.describe('ferry:host:get_all')).toEqual({ check_str: 'role:reader', source: 'policy overrides' });
    expect(o.describe('ferry:migration:create')).toEqual({ check_str: 'rule:admin_api', source: 'default' });
  });

  it('changing context_is_admin changes who is an admin everywhere', () => {
    const o = Policy.fromRules({ context_is_admin: 'role:cloud-admin' });
    expect(o.check('ferry:migration:create', admin)).toBe(false);
    expect(o.check('ferry:migration:create', { ...member, roles: ['cloud-admin'] })).toBe(true);
  });
});

describe('deprecated defaults ([oslo_policy] enforce_new_defaults)', () => {
  // An operator who let their own operators in through admin_api before the reads were opened to readers.
  const opsOverride = { admin_api: 'is_admin:True or rule:context_is_admin or role:ops' };
  const ops: Credentials = { user_id: 'u-ops', project_id: 'p-ops', roles: ['ops'], is_admin: false };

  it('the defaults follow the [oslo_policy] options: new defaults on, scope not enforced', () => {
    expect(DEFAULT_ENFORCEMENT).toEqual(defaultConfig().oslo_policy);
    expect(Policy.fromRules({}).options).toEqual({ enforce_new_defaults: true, enforce_scope: false });
  });

  it('off: a read is "new or deprecated default", so the old admin_api override still grants it', () => {
    const old = Policy.fromRules(opsOverride, { enforce_new_defaults: false });
    expect(old.describe(POLICY.migrationGetAll)).toEqual({
      check_str: '(rule:project_reader_or_admin) or (rule:admin_api)',
      source: 'default or deprecated default',
    });
    expect(old.check(POLICY.migrationGetAll, ops, { project_id: 'p-ops' })).toBe(true);
    expect(old.check(POLICY.migrationGet, ops, { project_id: 'p-demo' })).toBe(true);
    // Rules that did not change are not touched.
    expect(old.describe(POLICY.migrationCreate)).toEqual({ check_str: 'rule:admin_api', source: 'default' });
    // On: only the new default, which names context_is_admin, not the overridden admin_api.
    const fresh = Policy.fromRules(opsOverride, { enforce_new_defaults: true });
    expect(fresh.describe(POLICY.migrationGetAll)).toEqual({ check_str: 'rule:project_reader_or_admin', source: 'default' });
    expect(fresh.check(POLICY.migrationGetAll, ops, { project_id: 'p-ops' })).toBe(false);
    // A project reader reads either way.
    for (const pol of [old, fresh]) expect(pol.check(POLICY.migrationGet, member, { project_id: 'p2' })).toBe(true);
  });

  it('an override of the rule itself is enforced as written, whatever the option', () => {
    for (const enforce_new_defaults of [true, false]) {
      const o = Policy.fromRules({ ...opsOverride, 'ferry:migration:get': 'rule:admin_api' }, { enforce_new_defaults });
      expect(o.describe(POLICY.migrationGet)).toEqual({ check_str: 'rule:admin_api', source: 'policy overrides' });
      expect(o.check(POLICY.migrationGet, member, { project_id: 'p2' })).toBe(false);
    }
  });

  describe('a renamed rule (defaults of a test service)', () => {
    const defaults: RuleDefault[] = [
      {
        name: 'svc:thing:list',
        check_str: 'role:reader',
        description: 'List things (was svc:things:index).',
        operations: [{ method: 'GET', path: '/things' }],
        scope_types: ['project'],
        deprecated_rule: { name: 'svc:things:index', check_str: 'role:admin', reason: 'renamed', since: '0.2.0' },
      },
    ];
    const viewer: Credentials = { project_id: 'p1', roles: ['viewer'] };

    it("an operator's override of the old name is taken for the new name, in either mode", () => {
      for (const enforce_new_defaults of [true, false]) {
        const o = Policy.fromRules({ 'svc:things:index': 'role:viewer' }, { defaults, enforce_new_defaults });
        expect(o.describe('svc:thing:list')).toEqual({ check_str: 'role:viewer', source: 'svc:things:index (deprecated name)' });
        expect(o.check('svc:thing:list', viewer)).toBe(true);
      }
      // The old name is known: not reported as a rule nobody uses.
      expect(unusedPolicyRules({ 'svc:things:index': 'role:viewer' }, defaults)).toEqual([]);
      expect(deprecatedRulesInForce({ 'svc:things:index': 'role:viewer' }, true, defaults)).toEqual([
        { rule: 'svc:thing:list', check_str: 'role:viewer', why: 'deprecated name', old_name: 'svc:things:index' },
      ]);
    });

    it('the new name set too wins; the old name set to its old default is no override', () => {
      const both = Policy.fromRules({ 'svc:things:index': 'role:viewer', 'svc:thing:list': 'role:lister' }, { defaults });
      expect(both.check('svc:thing:list', viewer)).toBe(false);
      const same = Policy.fromRules({ 'svc:things:index': 'role:admin' }, { defaults, enforce_new_defaults: true });
      expect(same.describe('svc:thing:list')).toEqual({ check_str: 'role:reader', source: 'default' });
    });
  });

  it('deprecatedRulesInForce counts the reads left on their deprecated default', () => {
    expect(deprecatedRulesInForce({}, true)).toEqual([]);
    expect(deprecatedRulesInForce({}, false).map((d) => [d.rule, d.why])).toEqual([
      [POLICY.migrationGet, 'deprecated default'],
      [POLICY.migrationGetAll, 'deprecated default'],
      [POLICY.containerGetAll, 'deprecated default'],
    ]);
    // Set in the file: the operator's own choice, no longer the deprecated default.
    expect(deprecatedRulesInForce({ 'ferry:container:get_all': 'rule:admin_api' }, false)).toHaveLength(2);
  });
});

describe('scope types ([oslo_policy] enforce_scope)', () => {
  const systemAdmin: Credentials = { user_id: 'u1', project_id: null, system_scope: 'all', roles: ['admin', 'member', 'reader'] };
  const domainReader: Credentials = { user_id: 'u6', project_id: null, domain_id: 'default', roles: ['reader'] };

  it("a token's scope: system, else domain, else project (unscoped counts as project, as oslo.policy)", () => {
    expect(tokenScope(systemAdmin)).toBe('system');
    expect(tokenScope(domainReader)).toBe('domain');
    expect(tokenScope(member)).toBe('project');
    expect(tokenScope({ roles: [] })).toBe('project');
  });

  it('on: a system-scoped admin is refused project rules with InvalidScope, and keeps host rules', () => {
    const p = Policy.fromRules({}, { enforce_scope: true, logger });
    expect(p.check(POLICY.migrationGetAll, systemAdmin)).toBe(false);
    expect(() => p.enforce(POLICY.migrationCreate, systemAdmin)).toThrow(InvalidScope);
    expect(() => p.enforce(POLICY.migrationCreate, systemAdmin)).toThrow(
      'Policy ferry:migration:create is for project-scoped tokens and this token is system-scoped: ask Keystone for a project-scoped token.',
    );
    expect(p.check(POLICY.hostGetAll, systemAdmin)).toBe(true);
    expect(() => p.enforce(POLICY.hostEvacuate, systemAdmin)).not.toThrow();
    // A domain-scoped token fits none of Ferry's rules.
    expect(() => p.enforce(POLICY.hostGetAll, domainReader)).toThrow(/is for system or project-scoped tokens and this token is domain-scoped/);
    // Helper rules have no scope of their own: context_is_admin still says who is an admin.
    expect(p.check(POLICY.contextIsAdmin, systemAdmin)).toBe(true);
    // A project-scoped admin passes, and a denial within the scope is still PolicyNotAuthorized.
    expect(() => p.enforce(POLICY.migrationCreate, admin)).not.toThrow();
    expect(() => p.enforce(POLICY.migrationCreate, member)).toThrow(PolicyNotAuthorized);
  });

  it('off: the rule alone decides, and each rule and scope mismatch is logged once', () => {
    const lines: string[] = [];
    const capture = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const p = Policy.fromRules({}, { enforce_scope: false, logger: capture });
    for (let i = 0; i < 3; i++) expect(p.check(POLICY.migrationGetAll, systemAdmin)).toBe(true);
    expect(p.check(POLICY.migrationGet, systemAdmin, { project_id: 'p9' })).toBe(true);
    expect(p.check(POLICY.hostGetAll, systemAdmin)).toBe(true);
    const logged = lines.map((l) => JSON.parse(l) as { rule: string; token_scope: string; scope_types: string[] });
    expect(logged.map((l) => [l.rule, l.token_scope, l.scope_types])).toEqual([
      [POLICY.migrationGetAll, 'system', ['project']],
      [POLICY.migrationGet, 'system', ['project']],
    ]);
  });

  it('SIGHUP (replaceRules) brings the new options along', () => {
    const held = Policy.fromRules({}, { enforce_scope: false, logger });
    expect(held.check(POLICY.migrationGetAll, systemAdmin)).toBe(true);
    held.replaceRules(Policy.fromRules({}, { enforce_scope: true, enforce_new_defaults: false, logger }));
    expect(held.options).toEqual({ enforce_scope: true, enforce_new_defaults: false });
    expect(held.check(POLICY.migrationGetAll, systemAdmin)).toBe(false);
    expect(held.describe(POLICY.migrationGetAll)?.check_str).toBe('(rule:project_reader_or_admin) or (rule:admin_api)');
  });
});

describe('policy files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-policy-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  it('a missing file means the defaults', () => {
    const p = Policy.load(path.join(dir, 'absent.yaml'), { logger });
    expect(p.describe('ferry:migration:create')?.source).toBe('default');
    expect(Policy.load(null, { logger }).ruleNames()).toEqual(DEFAULT_POLICIES.map((d) => d.name));
  });

  it('YAML overrides and helper rules load', () => {
    const f = write(
      'ok.yaml',
      ['"owner": "project_id:%(project_id)s"', '"ferry:migration:get": "rule:admin_api or rule:owner"', 'ferry:host:get_all: role:reader', ''].join('\n'),
    );
    const p = Policy.load(f, { logger });
    expect(p.check('ferry:migration:get', member, { project_id: 'p2' })).toBe(true);
    expect(p.check('ferry:host:get_all', member)).toBe(true);
    expect(p.describe('owner')?.source).toBe(f);
  });

  it('JSON (a YAML subset) loads too; an empty file is no overrides', () => {
    const f = write('p.json', '{"ferry:host:get_all": "@"}');
    expect(Policy.load(f, { logger }).check('ferry:host:get_all', member)).toBe(true);
    expect(Policy.load(write('empty.yaml', '# nothing\n'), { logger }).ruleNames()).toHaveLength(DEFAULT_POLICIES.length);
  });

  it.each([
    ['bad-syntax.yaml', '"ferry:host:get_all": "role:admin or"\n', /bad-syntax\.yaml: rule "ferry:host:get_all": expected a check.*\(in "role:admin or"\)/],
    ['bad-ref.yaml', '"ferry:host:get_all": "rule:admins"\n', /rule "ferry:host:get_all" refers to rule:admins, which is not defined/],
    ['cycle.yaml', '"a": "rule:b"\n"b": "rule:a"\n', /cycle: a -> b -> a/],
    ['self.yaml', '"admin_api": "rule:admin_api"\n', /cycle: admin_api -> admin_api/],
    ['not-yaml.yaml', '"a": "role:x"\n  b: [\n', /not-yaml\.yaml: not valid YAML/],
    ['list.yaml', '- role:admin\n', /expected a mapping of rule name to check string/],
    ['number.yaml', '"ferry:host:get_all": 1\n', /rule "ferry:host:get_all": the value must be a check string/],
    ['null.yaml', '"ferry:host:get_all":\n', /the value must be a check string .* got nothing/],
    ['dup.yaml', '"a": "@"\n"a": "!"\n', /not valid YAML.*duplicated mapping key/s],
  ])('%s is a clear startup error', (name, text, message) => {
    const f = write(name, text);
    expect(() => Policy.load(f, { logger })).toThrow(ConfigError);
    expect(() => Policy.load(f, { logger })).toThrow(message);
  });

  it('an unreadable path is a ConfigError', () => {
    expect(() => Policy.load(dir, { logger })).toThrow(/cannot read policy file/);
  });

  it('parsePolicyText returns name -> check string', () => {
    expect(parsePolicyText('a: "@"\nb: role:x\n')).toEqual({ a: '@', b: 'role:x' });
  });
});

describe('sample file', () => {
  const sample = generatePolicySample();

  it('etc/ferry/policy.yaml is the generated sample', () => {
    expect(fs.readFileSync(path.join(repoRoot, 'etc/ferry/policy.yaml'), 'utf8')).toBe(sample);
  });

  it('gives each rule its intended scopes and each deprecated default after its rule', () => {
    for (const d of DEFAULT_POLICIES) {
      const at = sample.indexOf(`#${JSON.stringify(d.name)}: `);
      const block = sample.slice(sample.lastIndexOf('\n\n', at), at);
      if (d.scope_types) expect([d.name, block]).toEqual([d.name, expect.stringContaining(`# Intended scope(s): ${d.scope_types.join(', ')}\n`)]);
      else expect(block).not.toContain('Intended scope');
    }
    expect(sample).toContain(
      '# DEPRECATED\n# "ferry:migration:get":"rule:admin_api" has been deprecated since 0.2.0 in\n# favor of "ferry:migration:get":"rule:project_reader_or_admin".',
    );
    expect(sample.match(/^# DEPRECATED$/gm)).toHaveLength(DEFAULT_POLICIES.filter((d) => d.deprecated_rule).length);
  });

  it('is all comments: loading it changes nothing', () => {
    expect(parsePolicyText(sample)).toEqual({});
  });

  it('lists every rule with its default and description; uncommented it gives the defaults', () => {
    const uncommented = sample
      .split('\n')
      .filter((l) => l.startsWith('#"'))
      .map((l) => l.slice(1))
      .join('\n');
    const rules = yaml.load(uncommented) as Record<string, string>;
    expect(rules).toEqual(Object.fromEntries(DEFAULT_POLICIES.map((d) => [d.name, d.check_str])));
    for (const d of DEFAULT_POLICIES) {
      expect(sample).toContain(d.description.split(' ').slice(0, 4).join(' '));
      for (const op of d.operations) expect(sample).toMatch(new RegExp(`# ${op.method} +${op.path.replace(/[{}]/g, '\\$&')}`));
    }
  });
});
