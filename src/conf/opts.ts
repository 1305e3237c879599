/**
 * oslo.config-style option declarations: each group module declares its options once
 * (name, type, default, help); the loader (src/conf/index.ts) parses INI files into
 * typed values, and `ferry-manage config sample` prints them with their help.
 */
import { ConfigError } from '../common/errors.js';

export interface Opt<T> {
  readonly type: 'str' | 'int' | 'float' | 'bool' | 'list';
  readonly default: T;
  readonly help: string;
  readonly secret?: boolean;
  /** What the sample file shows instead of a default that depends on the machine (oslo.config's sample_default). */
  readonly sampleDefault?: string;
  /** Re-read on SIGHUP and applied without a restart (oslo.config's mutable=True). */
  readonly mutable?: boolean;
  parse(raw: string, where: string): T;
}

export function strOpt(
  def: string,
  help: string,
  extra: { secret?: boolean; choices?: string[]; sampleDefault?: string; mutable?: boolean } = {},
): Opt<string> {
  return {
    type: 'str',
    default: def,
    help,
    secret: extra.secret,
    sampleDefault: extra.sampleDefault,
    mutable: extra.mutable,
    parse(raw, where) {
      if (extra.choices && !extra.choices.includes(raw)) {
        throw new ConfigError(`${where}: "${raw}" is not one of ${extra.choices.join(', ')}`);
      }
      return raw;
    },
  };
}

export function intOpt(def: number, help: string, min?: number): Opt<number> {
  return {
    type: 'int',
    default: def,
    help,
    parse(raw, where) {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new ConfigError(`${where}: "${raw}" is not an integer`);
      if (min !== undefined && n < min) throw new ConfigError(`${where}: ${n} is below the minimum ${min}`);
      return n;
    },
  };
}

export function floatOpt(def: number, help: string): Opt<number> {
  return {
    type: 'float',
    default: def,
    help,
    parse(raw, where) {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new ConfigError(`${where}: "${raw}" is not a number`);
      return n;
    },
  };
}

export function boolOpt(def: boolean, help: string, extra: { mutable?: boolean } = {}): Opt<boolean> {
  return {
    type: 'bool',
    default: def,
    help,
    mutable: extra.mutable,
    parse(raw, where) {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`${where}: "${raw}" is not a boolean (true/false)`);
    },
  };
}

/** "a, b,,c" -> ["a", "b", "c"]: how every comma-separated list is read (list options, command-line lists). */
export function parseList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function listOpt(def: string[], help: string): Opt<string[]> {
  return {
    type: 'list',
    default: def,
    help,
    parse: parseList,
  };
}

export type OptGroup = Record<string, Opt<unknown>>;
export type GroupValues<G extends OptGroup> = { [K in keyof G]: G[K] extends Opt<infer T> ? T : never };
