import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import yaml from 'js-yaml';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { ConfigError, PolicyNotAuthorized } from '../../../src/common/errors.js';
import { DEFAULT_POLICIES, POLICY } from '../../../src/identity/policies.js';
import {
  checkToString,
  generatePolicySample,
  parseCheckString,
  parsePolicyText,
  Policy,
  PolicySyntaxError,
  type Credentials,
} from '../../../src/identity/policy.js';

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
      checks: [{ type: 'not', check: { type: 'role', role: 'a' } }, { type: 'role', role: 'b' }],
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

  it('are the documented set', () => {
    expect(Object.fromEntries(DEFAULT_POLICIES.map((d) => [d.name, d.check_str]))).toEqual({
      context_is_admin: 'role:admin and (is_admin_project:True or system_scope:all)',
      admin_api: 'is_admin:True or rule:context_is_admin',
      'ferry:migration:all_projects': 'rule:admin_api',
      'ferry:migration:create': 'rule:admin_api',
      'ferry:migration:delete': 'rule:admin_api',
      'ferry:migration:force_complete': 'rule:admin_api',
      'ferry:migration:get': 'rule:admin_api',
      'ferry:migration:get_all': 'rule:admin_api',
      'ferry:host:get_all': 'rule:admin_api',
      'ferry:host:update': 'rule:admin_api',
      'ferry:host:evacuate': 'rule:admin_api',
      'ferry:evacuation:get': 'rule:admin_api',
      'ferry:evacuation:get_all': 'rule:admin_api',
      'ferry:container:get_all': 'rule:admin_api',
      'ferry:container:all_projects': 'rule:admin_api',
    });
    for (const d of DEFAULT_POLICIES) {
      expect(d.description.length).toBeGreaterThan(10);
      if (d.name.startsWith('ferry:')) expect(d.operations.length).toBeGreaterThan(0);
    }
  });

  it('admin may do everything, a member nothing', () => {
    for (const r of ferryRules) {
      expect([r, p.check(r, admin)]).toEqual([r, true]);
      expect([r, p.check(r, { ...member, is_admin: true })]).toEqual([r, true]);
      expect([r, p.check(r, member)]).toEqual([r, false]);
    }
    expect(p.check(POLICY.contextIsAdmin, admin)).toBe(true);
  });

  it("context_is_admin is Keystone's convention: the admin role in the admin project, or system scope", () => {
    expect(p.check(POLICY.contextIsAdmin, admin)).toBe(true);
    // The admin role in another project (e.g. a tenant's own project admin) is not a cloud administrator.
    const projectAdmin = { ...admin, project_id: 'p-tenant', is_admin_project: false };
    expect(p.check(POLICY.contextIsAdmin, projectAdmin)).toBe(false);
    for (const r of ferryRules) expect([r, p.check(r, projectAdmin)]).toEqual([r, false]);
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
    const f = write('ok.yaml', ['"owner": "project_id:%(project_id)s"', '"ferry:migration:get": "rule:admin_api or rule:owner"', 'ferry:host:get_all: role:reader', ''].join('\n'));
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
