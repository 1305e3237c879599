/**
 * An oslo.policy-style engine: rules are check strings, defaults come from code
 * (src/identity/policies.ts), `policy.yaml` overrides them or adds helper rules.
 *
 * Check-string syntax (the part of oslo.policy Ferry uses):
 *   @  (always)   !  (never)   role:NAME   rule:NAME
 *   KIND:MATCH    generic check: the credential KIND (dotted path; a list matches if it
 *                 contains MATCH) equals MATCH; MATCH may use %(key)s from the target, and
 *                 KIND may be a literal ('quoted', True, False, a number) compared to MATCH.
 *                 e.g. is_admin:True, project_id:%(project_id)s
 *   not X,  X and Y,  X or Y,  ( ... )     precedence: not > and > or
 * An empty check string allows everything (as in oslo.policy).
 *
 * Unlike oslo.policy, which logs and denies, a check string that does not parse, a rule
 * that refers to an unknown rule, or a cycle of rules is refused when the file is loaded:
 * ferry-api will not start on a policy it cannot read.
 *
 * As oslo.policy's Enforcer ([oslo_policy] options): a default with a deprecated rule is, unless
 * enforce_new_defaults, "new or old", and an operator's override of a renamed rule's old name
 * still applies to the new name; a rule with scope_types refuses other token scopes when
 * enforce_scope, else the mismatch is logged.
 */
import fs from 'node:fs';
import yaml from 'js-yaml';
import type { RequestContext } from '../common/context.js';
import { ConfigError, FerryError, InvalidScope, PolicyNotAuthorized } from '../common/errors.js';
import { getLogger, type Logger } from '../common/log.js';
import { wrapWords } from '../common/wrap.js';
import { osloPolicyOpts } from '../conf/oslo_policy.js';
import { DEFAULT_POLICIES, type RuleDefault, type ScopeType } from './policies.js';

// ---------------------------------------------------------------- the AST

export type Check =
  | { type: 'true' }
  | { type: 'false' }
  | { type: 'rule'; name: string }
  | { type: 'role'; role: string }
  | { type: 'generic'; kind: string; match: string }
  | { type: 'not'; check: Check }
  | { type: 'and'; checks: Check[] }
  | { type: 'or'; checks: Check[] };

/** What a rule is checked against: the caller. */
export interface Credentials {
  user_id?: string | null;
  project_id?: string | null;
  domain_id?: string | null;
  user_domain_id?: string | null;
  project_domain_id?: string | null;
  system_scope?: string | null;
  roles: string[];
  is_admin?: boolean;
  is_admin_project?: boolean;
  [key: string]: unknown;
}

/** What a rule is checked on: the object acted upon (e.g. {project_id} of a migration). */
export type Target = Record<string, unknown>;

export class PolicySyntaxError extends Error {}

// ---------------------------------------------------------------- parsing

type Token = { t: '(' } | { t: ')' } | { t: 'and' } | { t: 'or' } | { t: 'not' } | { t: 'check'; text: string };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  for (const chunk of text.split(/\s+/).filter((c) => c.length > 0)) {
    // As oslo.policy does: leading "(" and trailing ")" are parentheses; inner ones belong
    // to the check (as in %(project_id)s).
    let s = chunk;
    while (s.startsWith('(')) {
      out.push({ t: '(' });
      s = s.slice(1);
    }
    let closing = 0;
    while (s.endsWith(')') && !/%\([^()]*\)$/.test(s)) {
      closing++;
      s = s.slice(0, -1);
    }
    if (s.length > 0) {
      const lower = s.toLowerCase();
      if (lower === 'and' || lower === 'or' || lower === 'not') out.push({ t: lower });
      else out.push({ t: 'check', text: s });
    }
    for (let i = 0; i < closing; i++) out.push({ t: ')' });
  }
  return out;
}

function parseAtom(text: string): Check {
  if (text === '@') return { type: 'true' };
  if (text === '!') return { type: 'false' };
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) {
    throw new PolicySyntaxError(`"${text}" is not a check (expected KIND:MATCH such as role:admin, or @, or !)`);
  }
  const kind = text.slice(0, i);
  const match = text.slice(i + 1);
  if (kind === 'rule') return { type: 'rule', name: match };
  if (kind === 'role') return { type: 'role', role: match };
  if (kind === 'http' || kind === 'https') throw new PolicySyntaxError(`"${text}": remote http checks are not supported`);
  const subst = /%\(([^()]*)\)/g;
  for (const m of match.matchAll(subst)) {
    if (!match.slice(m.index).startsWith(`%(${m[1]})s`) || m[1] === '') {
      throw new PolicySyntaxError(`"${text}": a target substitution is written %(key)s`);
    }
  }
  return { type: 'generic', kind, match };
}

/** Parse an oslo.policy check string. Throws PolicySyntaxError with what is wrong. */
export function parseCheckString(text: string): Check {
  const tokens = tokenize(text);
  if (tokens.length === 0) return { type: 'true' };
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const describeTok = (t: Token | undefined) => (t === undefined ? 'the end' : t.t === 'check' ? `"${t.text}"` : `"${t.t}"`);

  const parseOr = (): Check => {
    const checks = [parseAnd()];
    while (peek()?.t === 'or') {
      pos++;
      checks.push(parseAnd());
    }
    return checks.length === 1 ? checks[0] : { type: 'or', checks };
  };
  const parseAnd = (): Check => {
    const checks = [parseNot()];
    while (peek()?.t === 'and') {
      pos++;
      checks.push(parseNot());
    }
    return checks.length === 1 ? checks[0] : { type: 'and', checks };
  };
  const parseNot = (): Check => {
    if (peek()?.t === 'not') {
      pos++;
      return { type: 'not', check: parseNot() };
    }
    return parsePrimary();
  };
  const parsePrimary = (): Check => {
    const t = peek();
    if (t?.t === '(') {
      pos++;
      const inner = parseOr();
      if (peek()?.t !== ')') throw new PolicySyntaxError(`expected ")" but found ${describeTok(peek())}`);
      pos++;
      return inner;
    }
    if (t?.t === 'check') {
      pos++;
      return parseAtom(t.text);
    }
    throw new PolicySyntaxError(`expected a check, "not" or "(" but found ${describeTok(t)}`);
  };

  const check = parseOr();
  if (pos < tokens.length) throw new PolicySyntaxError(`unexpected ${describeTok(peek())} after a complete rule`);
  return check;
}

/** The check back as a string, fully parenthesised where it matters. */
export function checkToString(c: Check): string {
  switch (c.type) {
    case 'true':
      return '@';
    case 'false':
      return '!';
    case 'rule':
      return `rule:${c.name}`;
    case 'role':
      return `role:${c.role}`;
    case 'generic':
      return `${c.kind}:${c.match}`;
    case 'not':
      return `not ${wrap(c.check)}`;
    case 'and':
      return c.checks.map(wrap).join(' and ');
    case 'or':
      return c.checks.map(wrap).join(' or ');
  }
}

function wrap(c: Check): string {
  return c.type === 'and' || c.type === 'or' ? `(${checkToString(c)})` : checkToString(c);
}

function referencedRules(c: Check, out: string[] = []): string[] {
  if (c.type === 'rule') out.push(c.name);
  else if (c.type === 'not') referencedRules(c.check, out);
  else if (c.type === 'and' || c.type === 'or') c.checks.forEach((x) => referencedRules(x, out));
  return out;
}

// ---------------------------------------------------------------- evaluation

/** Python's str() of a value, as oslo.policy compares them. */
function pyStr(v: unknown): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null || v === undefined) return 'None';
  return String(v);
}

/** Replace %(key)s with the target's values; undefined when a key is missing (the check fails). */
function substitute(match: string, target: Target): string | undefined {
  let missing = false;
  const out = match.replace(/%\(([^()]+)\)s/g, (_m, key: string) => {
    const v = lookup(target, key);
    if (v === undefined) {
      missing = true;
      return '';
    }
    return pyStr(v);
  });
  return missing ? undefined : out;
}

/** A flat key first (oslo targets use "target.x" keys), else a dotted path. */
function lookup(obj: Record<string, unknown>, key: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, key)) return obj[key];
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function literal(kind: string): string | undefined {
  const q = /^'(.*)'$/.exec(kind) ?? /^"(.*)"$/.exec(kind);
  if (q) return q[1];
  if (kind === 'True' || kind === 'False' || kind === 'None') return kind;
  if (/^-?\d+(\.\d+)?$/.test(kind)) return String(Number(kind));
  return undefined;
}

function evaluate(c: Check, target: Target, creds: Credentials, rules: ReadonlyMap<string, Check>): boolean {
  switch (c.type) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'rule': {
      const r = rules.get(c.name);
      return r ? evaluate(r, target, creds, rules) : false;
    }
    case 'role': {
      const role = substitute(c.role, target);
      if (role === undefined) return false;
      const want = role.toLowerCase();
      return creds.roles.some((r) => r.toLowerCase() === want);
    }
    case 'generic': {
      const match = substitute(c.match, target);
      if (match === undefined) return false;
      const lit = literal(c.kind);
      if (lit !== undefined) return lit === match;
      const value = lookup(creds, c.kind);
      if (value === undefined) return false;
      if (Array.isArray(value)) return value.some((v) => pyStr(v) === match);
      return pyStr(value) === match;
    }
    case 'not':
      return !evaluate(c.check, target, creds, rules);
    case 'and':
      return c.checks.every((x) => evaluate(x, target, creds, rules));
    case 'or':
      return c.checks.some((x) => evaluate(x, target, creds, rules));
  }
}

/** The credentials of a request context, as oslo.context's to_policy_values(). */
export function credentialsFromContext(ctx: RequestContext): Credentials {
  return {
    user_id: ctx.user_id,
    project_id: ctx.project_id,
    domain_id: ctx.domain_id,
    user_domain_id: ctx.user_domain_id,
    project_domain_id: ctx.project_domain_id,
    system_scope: ctx.system_scope,
    roles: [...ctx.roles],
    is_admin: ctx.is_admin,
    is_admin_project: ctx.is_admin_project,
  };
}

function isContext(x: RequestContext | Credentials): x is RequestContext {
  return typeof (x as RequestContext).toDict === 'function';
}

/** The token's scope, as oslo.policy tells it: system, else domain, else project (an unscoped token too). */
export function tokenScope(creds: Credentials): ScopeType {
  if (creds.system_scope) return 'system';
  if (creds.domain_id) return 'domain';
  return 'project';
}

// ---------------------------------------------------------------- the enforcer

interface LoadedRule {
  check: Check;
  check_str: string;
  source: 'default' | string;
}

/** The [oslo_policy] options the enforcer follows. */
export interface EnforcementOptions {
  enforce_new_defaults: boolean;
  enforce_scope: boolean;
}

export const DEFAULT_ENFORCEMENT: EnforcementOptions = {
  enforce_new_defaults: osloPolicyOpts.enforce_new_defaults.default,
  enforce_scope: osloPolicyOpts.enforce_scope.default,
};

export interface PolicyOptions extends Partial<EnforcementOptions> {
  /** Where the overrides come from, for messages. */
  source?: string;
  defaults?: readonly RuleDefault[];
  logger?: Logger;
}

export type PolicyLoadOptions = Omit<PolicyOptions, 'source'>;

/**
 * The check string a default is enforced with: its own, or, while [oslo_policy]
 * enforce_new_defaults is off, "new or deprecated" (oslo.policy's OrCheck), so nobody who
 * passed the old default loses access before the operator says so. An override of the rule
 * itself replaces both; an override of a renamed rule's old name is taken for the new name.
 */
export function effectiveDefault(d: RuleDefault, overrides: Record<string, string>, enforceNewDefaults: boolean): { check_str: string; source: string } {
  const dep = d.deprecated_rule;
  if (!dep || Object.hasOwn(overrides, d.name)) return { check_str: d.check_str, source: 'default' };
  if (dep.name !== d.name && Object.hasOwn(overrides, dep.name) && overrides[dep.name] !== dep.check_str) {
    return { check_str: overrides[dep.name], source: `${dep.name} (deprecated name)` };
  }
  if (!enforceNewDefaults && dep.check_str !== d.check_str) {
    return { check_str: `(${d.check_str}) or (${dep.check_str})`, source: 'default or deprecated default' };
  }
  return { check_str: d.check_str, source: 'default' };
}

export class Policy {
  private readonly rules: Map<string, LoadedRule>;
  private readonly compiled: Map<string, Check>;
  private readonly scopes: Map<string, readonly ScopeType[]>;
  private enforcement: EnforcementOptions;
  /** Rule and token scope pairs already logged as mismatched (once each, not per request). */
  private readonly scopeWarned = new Set<string>();
  private readonly log: Logger;
  readonly defaults: readonly RuleDefault[];

  private constructor(rules: Map<string, LoadedRule>, defaults: readonly RuleDefault[], enforcement: EnforcementOptions, log: Logger) {
    this.rules = rules;
    this.compiled = new Map([...rules].map(([k, v]) => [k, v.check]));
    this.scopes = scopesOf(defaults);
    this.defaults = defaults;
    this.enforcement = enforcement;
    this.log = log;
  }

  /**
   * The defaults with `overrides` (rule name -> check string) on top. Throws ConfigError
   * on a check string that does not parse, a reference to an unknown rule, or a cycle.
   */
  static fromRules(overrides: Record<string, string>, options: PolicyOptions = {}): Policy {
    const source = options.source ?? 'policy overrides';
    const defaults = options.defaults ?? DEFAULT_POLICIES;
    const enforcement: EnforcementOptions = {
      enforce_new_defaults: options.enforce_new_defaults ?? DEFAULT_ENFORCEMENT.enforce_new_defaults,
      enforce_scope: options.enforce_scope ?? DEFAULT_ENFORCEMENT.enforce_scope,
    };
    const rules = new Map<string, LoadedRule>();
    for (const d of defaults) {
      const eff = effectiveDefault(d, overrides, enforcement.enforce_new_defaults);
      const from = eff.source === 'default' || eff.source.startsWith('default ') ? 'the defaults in code' : source;
      rules.set(d.name, { check: compile(eff.check_str, d.name, from), check_str: eff.check_str, source: eff.source });
    }
    for (const [name, text] of Object.entries(overrides)) {
      rules.set(name, { check: compile(text, name, source), check_str: text, source });
    }
    validateGraph(rules);
    return new Policy(rules, defaults, enforcement, options.logger ?? getLogger('policy'));
  }

  /**
   * Load `policy.yaml` (YAML or JSON mapping of rule name -> check string) over the defaults.
   * A missing file means the defaults alone; an unreadable or invalid one is a ConfigError.
   */
  static load(file: string | null | undefined, options: PolicyLoadOptions = {}): Policy {
    const log = options.logger ?? getLogger('policy');
    const opts = { ...options, logger: log };
    let policy: Policy;
    let text: string | null = null;
    if (file) {
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code !== 'ENOENT') throw new ConfigError(`cannot read policy file ${file}: ${err.message}`);
        log.info({ policy_file: file }, 'no policy file; using the default rules');
      }
    }
    if (text === null) {
      policy = Policy.fromRules({}, { ...opts, source: 'defaults' });
    } else {
      policy = Policy.fromRules(parsePolicyText(text, file as string), { ...opts, source: file as string });
      const overridden = [...policy.rules].filter(([, r]) => r.source === file).map(([k]) => k);
      log.info({ policy_file: file, rules: overridden }, 'policy file loaded');
    }
    const deprecated = [...policy.rules].filter(([, r]) => r.source !== 'default' && r.source !== file).map(([k, r]) => `${k}: ${r.check_str}`);
    if (deprecated.length) {
      // oslo.policy's warning: the operator should get ready for the new defaults, or keep the old ones in the file.
      log.warn({ rules: deprecated }, 'policy rules enforced with a deprecated default or name (see the policy sample; [oslo_policy] enforce_new_defaults)');
    }
    return policy;
  }

  /** The [oslo_policy] options this policy follows. */
  get options(): EnforcementOptions {
    return { ...this.enforcement };
  }

  /**
   * Whether the caller's token scope fits the rule. A mismatch refuses only with enforce_scope;
   * without it the request is judged by the rule alone, and the mismatch logged once.
   */
  private scopeAllows(rule: string, creds: Credentials): { ok: true } | { ok: false; scope: ScopeType; wanted: readonly ScopeType[] } {
    const wanted = this.scopes.get(rule);
    const scope = tokenScope(creds);
    if (!wanted || wanted.includes(scope)) return { ok: true };
    if (this.enforcement.enforce_scope) return { ok: false, scope, wanted };
    const key = `${rule} ${scope}`;
    if (!this.scopeWarned.has(key)) {
      this.scopeWarned.add(key);
      this.log.warn(
        { rule, token_scope: scope, scope_types: wanted },
        'policy rule checked with a token of a scope it is not meant for; [oslo_policy] enforce_scope = true would refuse it',
      );
    }
    return { ok: true };
  }

  /** Whether `rule` allows the caller on `target` (and its token scope, with enforce_scope). An unknown rule is a programming error. */
  check(rule: string, who: RequestContext | Credentials, target: Target = {}): boolean {
    const c = this.compiled.get(rule);
    if (!c) throw new FerryError(`policy rule ${rule} is not registered`, { rule });
    const creds = isContext(who) ? credentialsFromContext(who) : who;
    return this.scopeAllows(rule, creds).ok && evaluate(c, target, creds, this.compiled);
  }

  /** Throws InvalidScope (enforce_scope) or PolicyNotAuthorized when `rule` does not allow the caller on `target`. */
  enforce(rule: string, who: RequestContext | Credentials, target: Target = {}): void {
    const creds = isContext(who) ? credentialsFromContext(who) : who;
    if (!this.compiled.has(rule)) throw new FerryError(`policy rule ${rule} is not registered`, { rule });
    const scope = this.scopeAllows(rule, creds);
    if (!scope.ok) {
      throw new InvalidScope(
        `Policy ${rule} is for ${scope.wanted.join(' or ')}-scoped tokens and this token is ${scope.scope}-scoped: ask Keystone for a ${scope.wanted.join(' or ')}-scoped token.`,
        { rule, token_scope: scope.scope, scope_types: [...scope.wanted] },
      );
    }
    if (!evaluate(this.compiled.get(rule)!, target, creds, this.compiled)) {
      throw new PolicyNotAuthorized(`Policy doesn't allow ${rule} to be performed.`, { rule });
    }
  }

  /**
   * Enforce `fresh`'s rules from now on (SIGHUP re-reading the policy file): swapped in place,
   * so that every holder of this policy sees them; `fresh` loaded without error, so the swap
   * cannot leave a half-read file in force.
   */
  replaceRules(fresh: Policy): void {
    this.rules.clear();
    this.compiled.clear();
    for (const [k, v] of fresh.rules) {
      this.rules.set(k, v);
      this.compiled.set(k, v.check);
    }
    this.scopes.clear();
    for (const [k, v] of fresh.scopes) this.scopes.set(k, v);
    this.enforcement = { ...fresh.enforcement };
    this.scopeWarned.clear();
  }

  ruleNames(): string[] {
    return [...this.rules.keys()];
  }

  /** The check string in force for a rule, and where it came from. */
  describe(rule: string): { check_str: string; source: string } | undefined {
    const r = this.rules.get(rule);
    return r ? { check_str: r.check_str, source: r.source } : undefined;
  }
}

function scopesOf(defaults: readonly RuleDefault[]): Map<string, readonly ScopeType[]> {
  return new Map(defaults.filter((d) => d.scope_types && d.scope_types.length > 0).map((d) => [d.name, d.scope_types as readonly ScopeType[]]));
}

function compile(text: string, name: string, source: string): Check {
  try {
    return parseCheckString(text);
  } catch (e) {
    if (e instanceof PolicySyntaxError) throw new ConfigError(`${source}: rule "${name}": ${e.message} (in "${text}")`);
    throw e;
  }
}

function validateGraph(rules: Map<string, LoadedRule>): void {
  for (const [name, r] of rules) {
    for (const ref of referencedRules(r.check)) {
      if (!rules.has(ref)) {
        throw new ConfigError(`${r.source}: rule "${name}" refers to rule:${ref}, which is not defined`);
      }
    }
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new ConfigError(`policy rules refer to each other in a cycle: ${[...path, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const ref of referencedRules(rules.get(name)!.check)) visit(ref, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of rules.keys()) visit(name, []);
}

/** Read policy file text into rule name -> check string; ConfigError when it is not that. */
export function parsePolicyText(text: string, source = 'policy file'): Record<string, string> {
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: source });
  } catch (e) {
    throw new ConfigError(`${source}: not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${source}: expected a mapping of rule name to check string`);
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof value !== 'string') {
      throw new ConfigError(
        `${source}: rule "${name}": the value must be a check string (quote it, e.g. "${name}": "role:admin"), got ${value === null ? 'nothing' : typeof value}`,
      );
    }
    out[name] = value;
  }
  return out;
}

/** A rule enforced with what a deprecation left: its deprecated default (ORed in), or an override of its old name. */
export interface DeprecatedInForce {
  rule: string;
  /** The check string in force. */
  check_str: string;
  why: 'deprecated default' | 'deprecated name';
  /** The old name, for `deprecated name`. */
  old_name?: string;
}

/**
 * What the upgrade check counts: the rules that `overrides` and enforce_new_defaults leave on a
 * deprecated default or name, and overrides of an old name that the new name's override hides.
 */
export function deprecatedRulesInForce(
  overrides: Record<string, string>,
  enforceNewDefaults: boolean,
  defaults: readonly RuleDefault[] = DEFAULT_POLICIES,
): DeprecatedInForce[] {
  const out: DeprecatedInForce[] = [];
  for (const d of defaults) {
    const dep = d.deprecated_rule;
    if (!dep) continue;
    const eff = effectiveDefault(d, overrides, enforceNewDefaults);
    if (eff.source.endsWith('(deprecated name)') || (dep.name !== d.name && Object.hasOwn(overrides, dep.name))) {
      out.push({ rule: d.name, check_str: eff.check_str, why: 'deprecated name', old_name: dep.name });
    } else if (eff.source !== 'default') {
      out.push({ rule: d.name, check_str: eff.check_str, why: 'deprecated default' });
    }
  }
  return out;
}

/**
 * Rules of a policy file that Ferry neither enforces nor reaches through another rule
 * (`rule:NAME`): removed in a release, or misspelled, so the override does nothing. The
 * overrides must parse (Policy.fromRules first).
 */
export function unusedPolicyRules(overrides: Record<string, string>, defaults: readonly RuleDefault[] = DEFAULT_POLICIES): string[] {
  const known = new Set(defaults.flatMap((d) => [d.name, ...(d.deprecated_rule ? [d.deprecated_rule.name] : [])]));
  const referenced = new Set<string>();
  for (const text of [...defaults.map((d) => d.check_str), ...Object.values(overrides)]) {
    for (const ref of referencedRules(parseCheckString(text))) referenced.add(ref);
  }
  return Object.keys(overrides).filter((name) => !known.has(name) && !referenced.has(name));
}

// ---------------------------------------------------------------- the sample file

/**
 * The sample policy.yaml: every rule commented out with its default and description, in
 * the format of oslopolicy-sample-generator. `ferry-manage policy sample` prints it and
 * etc/ferry/policy.yaml is this text.
 */
export function generatePolicySample(defaults: readonly RuleDefault[] = DEFAULT_POLICIES): string {
  const lines = [
    '# Ferry policy (oslo.policy rule syntax). Every rule below is shown commented out with',
    '# its default; uncomment and change a line to override it. A rule that is not listed',
    '# keeps its default. "Intended scope(s)" are the token scopes a rule is meant for',
    "# ([oslo_policy] enforce_scope = true refuses others). A DEPRECATED note gives a rule's",
    '# old default, which still lets callers through while [oslo_policy]',
    '# enforce_new_defaults = false. Generated by `ferry-manage policy sample`; do not edit',
    '# by hand.',
    '',
  ];
  for (const d of defaults) {
    for (const l of wrapWords(d.description, 76)) lines.push(`# ${l}`);
    for (const op of d.operations) lines.push(`# ${op.method.padEnd(7)}${op.path}`);
    if (d.scope_types?.length) lines.push(`# Intended scope(s): ${d.scope_types.join(', ')}`);
    lines.push(`#${JSON.stringify(d.name)}: ${JSON.stringify(d.check_str)}`, '');
    const dep = d.deprecated_rule;
    if (dep) {
      // As oslopolicy-sample-generator writes it: after the rule, so that uncommenting the rule line keeps the new default.
      const note =
        `${JSON.stringify(dep.name)}:${JSON.stringify(dep.check_str)} has been deprecated since ${dep.since} in favor of ` +
        `${JSON.stringify(d.name)}:${JSON.stringify(d.check_str)}. Reason: ${dep.reason}`;
      lines.push('# DEPRECATED');
      for (const l of wrapWords(note, 76)) lines.push(`# ${l}`);
      lines.push('');
    }
  }
  return lines.join('\n');
}
