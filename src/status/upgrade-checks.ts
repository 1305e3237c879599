/**
 * `ferry-status upgrade check` (oslo.upgradecheck's shape): each check looks at one thing an
 * upgrade depends on and says Success, Warning (works, but needs the operator's attention) or
 * Failure (must be fixed before or after upgrading this service). The checks are plain
 * functions of what the command read (database, config, policy file), so that each is tested
 * on its own; src/cmd/status.ts reads and prints.
 */
import { compareVersions } from '../bus/version.js';
import { MIN_SUPPORTED_SERVICE_VERSION, SERVICE_VERSION } from '../common/service-version.js';
import { AUTO } from '../conf/upgrade_levels.js';
import { resolveVersionCap, type RunningServices } from '../conductor/upgrade.js';
import { SCHEMA_VERSION, schemaVerdict, type SchemaState } from '../db/schema.js';
import { wrapWords } from '../common/wrap.js';
import { DEFAULT_ENFORCEMENT, deprecatedRulesInForce, parsePolicyText, Policy, unusedPolicyRules, type EnforcementOptions } from '../identity/policy.js';
import { COMPUTE_RPC_VERSION } from '../compute/methods.js';
import { CONDUCTOR_RPC_VERSION } from '../conductor/methods.js';

/** oslo.upgradecheck's codes, which are also the command's exit status (the worst result). */
export enum CheckCode {
  Success = 0,
  Warning = 1,
  Failure = 2,
}

export interface CheckResult {
  name: string;
  code: CheckCode;
  /** What was found and, unless all is well, what to do; null: nothing to say. */
  details: string | null;
}

/** The first schema version with service records (src/db/schema.ts, 8). */
export const SERVICES_SCHEMA_VERSION = 8;

const DB_SYNC = 'ferry-manage db sync';

/**
 * The database's schema against the code's, by the services' start-up rule (src/db/schema.ts
 * schemaVerdict): behind needs `ferry-manage db sync`; ahead is a warning while its oldest code
 * schema still admits this release (an expand-only upgrade in progress), else a failure.
 * `found`: the version and its oldest code schema, or why they could not be read.
 */
export function checkSchema(found: SchemaState | Error): CheckResult {
  const name = 'Database schema';
  if (found instanceof Error) return { name, code: CheckCode.Failure, details: `cannot read the database: ${found.message}` };
  const { version } = found;
  if (version === SCHEMA_VERSION) return { name, code: CheckCode.Success, details: `schema version ${version} is this release's` };
  if (version < SCHEMA_VERSION) {
    return {
      name,
      code: CheckCode.Failure,
      details: `the database schema is at version ${version}, this release needs ${SCHEMA_VERSION}: run "${DB_SYNC}"`,
    };
  }
  const verdict = schemaVerdict(found);
  if (verdict.ok) return { name, code: CheckCode.Warning, details: verdict.warning };
  return { name, code: CheckCode.Failure, details: `${verdict.error.message} (this ferry-status is older than the database; run the upgraded one)` };
}

/** Why the service checks cannot look, when the schema has no service records yet; null when it has. */
function noServiceRecords(schema: number | Error): string | null {
  if (schema instanceof Error) return 'not checked: the database could not be read (see Database schema)';
  if (schema < SERVICES_SCHEMA_VERSION) return `the database (schema ${schema}) has no service records yet: run "${DB_SYNC}", then check again`;
  return null;
}

function isUp(updatedAt: string, r: RunningServices): boolean {
  return r.now - Date.parse(updatedAt) <= r.serviceDownTimeS * 1000;
}

function list(names: string[]): string {
  return names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} and ${names.length - 10} more`;
}

/**
 * The service versions the running services recorded against this code's: older than the
 * oldest supported is a Failure (upgrade them before this release's services start), older than
 * this release a Warning (a rolling upgrade under way), newer a Warning (this ferry-status is old).
 * The details also say what `[upgrade_levels] ... = auto` stands for now.
 */
export function checkServiceVersions(schema: number | Error, r: RunningServices, levels: { compute: string; conductor: string }): CheckResult {
  const name = 'Service versions';
  const why = noServiceRecords(schema);
  if (why) return { name, code: CheckCode.Warning, details: why };
  const running = r.services.filter((s) => isUp(s.updated_at, r));
  const who = (s: (typeof running)[number]) => `${s.binary} on ${s.host} (${s.service_version})`;
  const unsupported = running.filter((s) => s.service_version < MIN_SUPPORTED_SERVICE_VERSION);
  const older = running.filter((s) => s.service_version >= MIN_SUPPORTED_SERVICE_VERSION && s.service_version < SERVICE_VERSION);
  const newer = running.filter((s) => s.service_version > SERVICE_VERSION);
  const cap = (topic: 'ferry-compute' | 'ferry-conductor', setting: string, current: string) => {
    const v = resolveVersionCap(setting, topic, r);
    return `${topic} RPC ${v ?? current}${setting === AUTO ? ' (auto)' : ' (pinned)'}`;
  };
  const caps = `[upgrade_levels]: ${cap('ferry-compute', levels.compute, COMPUTE_RPC_VERSION)}, ${cap('ferry-conductor', levels.conductor, CONDUCTOR_RPC_VERSION)}`;
  if (unsupported.length) {
    return {
      name,
      code: CheckCode.Failure,
      details: `${list(unsupported.map(who))} run a service version older than the oldest this release works with (${MIN_SUPPORTED_SERVICE_VERSION}): upgrade them to the previous release first. ${caps}`,
    };
  }
  if (older.length || newer.length) {
    const parts: string[] = [];
    if (older.length)
      parts.push(
        `${list(older.map(who))} run an older service version than this release's ${SERVICE_VERSION}: upgrade them (a rolling upgrade works meanwhile)`,
      );
    if (newer.length)
      parts.push(`${list(newer.map(who))} run a newer service version than this ferry-status (${SERVICE_VERSION}): run the upgraded ferry-status`);
    return { name, code: CheckCode.Warning, details: `${parts.join('; ')}. ${caps}` };
  }
  const count = running.length;
  return {
    name,
    code: CheckCode.Success,
    details: `${count === 0 ? 'no running service has recorded its version yet' : `all ${count} running service(s) at service version ${SERVICE_VERSION}`}. ${caps}`,
  };
}

/**
 * Compute hosts whose heartbeats carry no service version: their agents are of the release
 * before service versions. They work with this release (a Warning: upgrade them); a host that is
 * down is left out, it reports again when it comes back.
 */
export function checkOldAgents(schema: number | Error, r: RunningServices): CheckResult {
  const name = 'Compute hosts on old agents';
  const why = noServiceRecords(schema);
  if (why) return { name, code: CheckCode.Warning, details: why };
  const recorded = new Set(r.services.filter((s) => s.topic === 'ferry-compute').map((s) => s.host));
  const up = r.hosts.filter((h) => isUp(h.updated_at, r));
  const old = up.filter((h) => !recorded.has(h.name)).map((h) => h.name);
  if (old.length) {
    return {
      name,
      code: CheckCode.Warning,
      details: `${list(old)} report no service version (an agent older than service versions): upgrade ferry-compute there; until then [upgrade_levels] compute = auto keeps the conductor at their RPC version`,
    };
  }
  return { name, code: CheckCode.Success, details: up.length ? `all ${up.length} up compute host(s) report their service version` : 'no compute host is up' };
}

/**
 * The policy file ([api] policy_file) and the [oslo_policy] options: the file must parse (rules,
 * references, no cycles); each rule in it should be one Ferry enforces or one another rule
 * refers to (any other was removed or is misspelled, and overrides nothing); and no rule should
 * still be enforced with a deprecated default (enforce_new_defaults = false) or through a
 * deprecated rule name, which a later release drops: these are counted, with their rules.
 * `text`: the file's content, null when there is no file (the defaults), an Error when unreadable.
 */
export function checkPolicyFile(file: string, text: string | null | Error, enforcement: EnforcementOptions = DEFAULT_ENFORCEMENT): CheckResult {
  const name = 'Policy file';
  if (text instanceof Error) return { name, code: CheckCode.Failure, details: `cannot read ${file}: ${text.message}` };
  let overrides: Record<string, string> = {};
  if (text !== null) {
    try {
      overrides = parsePolicyText(text, file);
      Policy.fromRules(overrides, { source: file, ...enforcement });
    } catch (e) {
      return { name, code: CheckCode.Failure, details: `${(e as Error).message}; ferry-api will not start with it` };
    }
  }
  const problems: string[] = [];
  const unused = unusedPolicyRules(overrides);
  if (unused.length) {
    problems.push(
      `${file}: rule(s) ${list(unused.map((u) => `"${u}"`))} are not Ferry's and no other rule uses them (removed or misspelled), so they change nothing: rename or remove them (see "ferry-manage policy sample")`,
    );
  }
  const deprecated = deprecatedRulesInForce(overrides, enforcement.enforce_new_defaults);
  const byName = deprecated.filter((d) => d.why === 'deprecated name');
  const byDefault = deprecated.filter((d) => d.why === 'deprecated default');
  if (byName.length) {
    problems.push(
      `${byName.length} rule(s) set in ${file} under a deprecated name: ${list(byName.map((d) => `"${d.old_name}" (now "${d.rule}")`))}: rename them, a later release ignores the old names`,
    );
  }
  if (byDefault.length) {
    problems.push(
      `${byDefault.length} rule(s) still let callers through with their deprecated default ([oslo_policy] enforce_new_defaults = false): ${list(byDefault.map((d) => `"${d.rule}"`))}: ` +
        'make sure the new defaults suit your users (see "ferry-manage policy sample"), or copy the old default into the policy file, then set enforce_new_defaults = true',
    );
  }
  if (problems.length) return { name, code: CheckCode.Warning, details: problems.join('; ') };
  if (text === null) return { name, code: CheckCode.Success, details: `no policy file at ${file}: the defaults apply` };
  const n = Object.keys(overrides).length;
  return { name, code: CheckCode.Success, details: n ? `${file}: ${n} rule(s), all known` : `${file} overrides no rule` };
}

/**
 * Options: ones Ferry does not know in its own sections (removed or misspelled: they are
 * ignored), and `[upgrade_levels]` pinned below this release's RPC versions (right during a
 * rolling upgrade; once every service runs this release it holds features back: set auto).
 * Ferry has no deprecated or renamed options so far. `loaderWarnings`: the config loader's
 * (options it ignored).
 */
export function checkOptions(loaderWarnings: readonly string[], levels: { compute: string; conductor: string }): CheckResult {
  const name = 'Configuration options';
  const problems: string[] = [];
  // [keystone_authtoken] also carries keystonemiddleware's options that Ferry does not read (memcached_servers, cafile ...): not a mistake.
  const ignored = loaderWarnings.filter((w) => !w.includes('option [keystone_authtoken] '));
  if (ignored.length) problems.push(`${ignored.join('; ')} (removed or misspelled: check the option's name in "ferry-manage config sample")`);
  const pins: [string, string, string][] = [
    ['compute', levels.compute, COMPUTE_RPC_VERSION],
    ['conductor', levels.conductor, CONDUCTOR_RPC_VERSION],
  ];
  for (const [topic, setting, current] of pins) {
    if (setting !== AUTO && compareVersions(setting, current) < 0) {
      problems.push(
        `[upgrade_levels] ${topic} = ${setting} holds calls below this release's ${current}: set it to auto once every ${topic} service runs this release`,
      );
    }
  }
  if (problems.length) return { name, code: CheckCode.Warning, details: problems.join('; ') };
  return { name, code: CheckCode.Success, details: null };
}

/** The command's exit status: the worst result (0 with no checks). */
export function worst(results: readonly CheckResult[]): CheckCode {
  return results.reduce((m, r) => Math.max(m, r.code), CheckCode.Success) as CheckCode;
}

/** The results as oslo.upgradecheck prints them: a boxed table, one block per check. */
export function formatTable(results: readonly CheckResult[], width = 60): string {
  const inner = width;
  const rule = `+${'-'.repeat(inner + 2)}+`;
  const row = (s: string) => `| ${s.padEnd(inner)} |`;
  const lines = [rule, row('Upgrade Check Results'), rule];
  for (const r of results) {
    lines.push(row(`Check: ${r.name}`), row(`Result: ${CheckCode[r.code]}`));
    const details = wrapWords(`Details: ${r.details ?? 'None'}`, inner - 2, { breakLongWords: true });
    for (const [i, l] of details.entries()) lines.push(row(i === 0 ? l : `  ${l}`));
    lines.push(rule);
  }
  return `${lines.join('\n')}\n`;
}
