/**
 * All option groups, registered in one place, and the INI loader.
 * `loadConfig(['/etc/ferry/ferry.conf'])` returns typed values for every group; later
 * files override earlier ones, as with oslo.config's repeated --config-file.
 */
import fs from 'node:fs';
import { parse as parseIni } from 'ini';
import { parseCommandLine } from '../common/args.js';
import { ConfigError } from '../common/errors.js';
import { apiOpts } from './api.js';
import { computeOpts } from './compute.js';
import { conductorOpts } from './conductor.js';
import { criuOpts } from './criu.js';
import { databaseOpts } from './database.js';
import { defaultOpts } from './default.js';
import { healthcheckOpts } from './healthcheck.js';
import { keystoneAuthtokenOpts } from './keystone_authtoken.js';
import { notificationFormatOpts, notificationOpts } from './notifications.js';
import { osloPolicyOpts } from './oslo_policy.js';
import { rabbitOpts } from './rabbit.js';
import { upgradeLevelsOpts } from './upgrade_levels.js';
import type { GroupValues, OptGroup } from './opts.js';

export const groups = {
  DEFAULT: defaultOpts,
  api: apiOpts,
  database: databaseOpts,
  healthcheck: healthcheckOpts,
  keystone_authtoken: keystoneAuthtokenOpts,
  conductor: conductorOpts,
  compute: computeOpts,
  criu: criuOpts,
  notifications: notificationFormatOpts,
  oslo_messaging_notifications: notificationOpts,
  oslo_messaging_rabbit: rabbitOpts,
  oslo_policy: osloPolicyOpts,
  upgrade_levels: upgradeLevelsOpts,
} as const satisfies Record<string, OptGroup>;

export type FerryConfig = { [G in keyof typeof groups]: GroupValues<(typeof groups)[G]> };

export const DEFAULT_CONFIG_FILE = '/etc/ferry/ferry.conf';

/** What the loader ignored; services log these at start. */
export const configWarnings: string[] = [];

function defaults(): FerryConfig {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [g, opts] of Object.entries(groups)) {
    out[g] = {};
    for (const [name, opt] of Object.entries(opts)) out[g][name] = opt.default;
  }
  return out as FerryConfig;
}

/** A line that starts a section but is no `[name]` (the ini parser would take it as an option and drop the section). */
function checkSectionHeaders(text: string, source: string): void {
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('[') && !/^\[[^[\]]+\]\s*$/.test(raw)) {
      throw new ConfigError(`${source} line ${i + 1}: "${line}" is not a section header (write it as [name], at the start of the line)`);
    }
  });
}

/**
 * Parse INI text into the config, on top of `base`. Unknown groups and options are ignored with
 * a warning, as oslo.config does: sections such as [keystone_authtoken] carry options of other
 * libraries (memcached_servers, cafile, ...) that Ferry does not read. Bad values are errors.
 */
export function applyIni(base: FerryConfig, text: string, source: string): FerryConfig {
  checkSectionHeaders(text, source);
  const parsed = parseIni(text) as Record<string, unknown>;
  const out = structuredClone(base) as Record<string, Record<string, unknown>>;
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'object' || value === null) {
      // ini puts keys before any [section] at the top level; treat them as [DEFAULT].
      setOpt(out, 'DEFAULT', key, String(value), source);
      continue;
    }
    if (!(key in groups)) continue;
    for (const [name, raw] of Object.entries(value as Record<string, unknown>)) {
      setOpt(out, key, name, String(raw), source);
    }
  }
  return out as FerryConfig;
}

function setOpt(out: Record<string, Record<string, unknown>>, group: string, name: string, raw: string, source: string) {
  const opts = (groups as Record<string, OptGroup>)[group];
  const opt = opts[name];
  if (!opt) {
    configWarnings.push(`${source}: option [${group}] ${name} is not used by Ferry; ignored`);
    return;
  }
  out[group][name] = opt.parse(raw.trim(), `${source} [${group}] ${name}`);
}

export function loadConfig(files: string[]): FerryConfig {
  let conf = defaults();
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${f}: ${(e as Error).message}`);
    }
    conf = applyIni(conf, text, f);
  }
  return conf;
}

export function defaultConfig(): FerryConfig {
  return defaults();
}

/** The `--config-file` option as parseArgs declares it (repeatable, as with oslo.config). */
export const CONFIG_FILE_ARG = { 'config-file': { type: 'string', multiple: true } } as const;

/** The files given with --config-file, else the default file when it exists. */
export function configFilesOrDefault(given: string[] | undefined): string[] {
  if (given && given.length > 0) return given;
  return fs.existsSync(DEFAULT_CONFIG_FILE) ? [DEFAULT_CONFIG_FILE] : [];
}

/** A service's whole command line: `--config-file F` (repeatable) and nothing else. */
export function configFilesFromArgv(argv: string[]): string[] {
  return configFilesOrDefault(parseCommandLine(argv, CONFIG_FILE_ARG, false).values['config-file']);
}

/** The sample file text: every option commented out with its help and default. */
export function sampleConfig(): string {
  const lines: string[] = [];
  for (const [g, opts] of Object.entries(groups)) {
    lines.push(`[${g}]`, '');
    for (const [name, opt] of Object.entries(opts as OptGroup)) {
      lines.push(`# ${opt.help} (${opt.type})`);
      if (opt.mutable) lines.push('# Mutable: SIGHUP applies a change without a restart.');
      const def = opt.sampleDefault ?? (Array.isArray(opt.default) ? opt.default.join(',') : String(opt.default));
      lines.push(`#${name} = ${def}`, '');
    }
  }
  return lines.join('\n');
}

export interface OptionChange {
  group: string;
  name: string;
  old: unknown;
  new: unknown;
}

/**
 * oslo.config's mutate_config_files: copy the mutable options that differ in `fresh` into
 * `conf` (in place, so that everything holding a group sees the new values) and list them;
 * changed options that are not mutable are listed as ignored (they need a restart).
 */
export function mutateConfig(conf: FerryConfig, fresh: FerryConfig): { changed: OptionChange[]; ignored: OptionChange[] } {
  const changed: OptionChange[] = [];
  const ignored: OptionChange[] = [];
  const cur = conf as unknown as Record<string, Record<string, unknown>>;
  const next = fresh as unknown as Record<string, Record<string, unknown>>;
  for (const [g, opts] of Object.entries(groups as Record<string, OptGroup>)) {
    for (const [name, opt] of Object.entries(opts)) {
      const a = cur[g][name];
      const b = next[g][name];
      if (JSON.stringify(a) === JSON.stringify(b)) continue;
      const change = { group: g, name, old: opt.secret ? '***' : a, new: opt.secret ? '***' : b };
      if (opt.mutable) {
        cur[g][name] = b;
        changed.push(change);
      } else {
        ignored.push(change);
      }
    }
  }
  return { changed, ignored };
}
