/** The soak's command line: `npm run soak -- --help`. */
import path from 'node:path';
import { parseCommandLine } from '../common/args.js';
import { InvalidInput } from '../common/errors.js';
import { repoRoot } from '../devcloud/layout.js';
import { FAULTS, WORKLOAD_KINDS, type WorkloadKind } from './catalogue.js';
import type { SoakOptions } from './run.js';

export const USAGE = `usage: npm run soak -- [options]   (the development cloud must be up)

  --migrations N      how many migrations (default 20)
  --seed S            the seed of every random choice (default: from the clock; printed, to replay)
  --fault-rate R      share of migrations with a fault, 0..1 (default 0.5)
  --workloads a,b     ${WORKLOAD_KINDS.join(',')} (default: all)
  --faults a,b        only these faults (default: all):
                      ${FAULTS.map((f) => f.id).join(', ')}
  --no-post-copy      stop-and-copy only (default: post-copy for half, where both hosts offer it)
  --max-minutes M     start no migration after M minutes (default: no limit)
  --out DIR           results folder (default results/): soak-SEED.json and soak-SEED.md

Exits 1 when a container was lost or duplicated, a migration ended otherwise than the faults
table pins, or a step could not be carried out; 2 on bad options.`;

const OPTIONS = {
  migrations: { type: 'string' },
  seed: { type: 'string' },
  'fault-rate': { type: 'string' },
  workloads: { type: 'string' },
  faults: { type: 'string' },
  'no-post-copy': { type: 'boolean' },
  'max-minutes': { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function list(flag: string, raw: string, known: readonly string[]): string[] {
  const items = raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const bad = items.filter((x) => !known.includes(x));
  if (items.length === 0 || bad.length) throw new InvalidInput(`${flag}: unknown ${bad.join(', ') || '(empty)'} (known: ${known.join(', ')})`);
  return items;
}

/** The options, or null for --help; bad flags and values throw InvalidInput. */
export function parseSoakArgs(argv: string[], now = Date.now()): (SoakOptions & { out: string }) | null {
  const { values: v } = parseCommandLine(argv, OPTIONS, false);
  if (v.help) return null;
  const migrations = Number(v.migrations ?? '20');
  if (!Number.isInteger(migrations) || migrations < 1) throw new InvalidInput(`--migrations must be a positive integer, not "${v.migrations}"`);
  const seed = Number(v.seed ?? String(now % 2 ** 31));
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new InvalidInput(`--seed must be an integer from 0 to 4294967295, not "${v.seed}"`);
  const faultRate = Number(v['fault-rate'] ?? '0.5');
  if (!(faultRate >= 0 && faultRate <= 1)) throw new InvalidInput(`--fault-rate must be between 0 and 1, not "${v['fault-rate']}"`);
  const maxMinutes = v['max-minutes'] === undefined ? undefined : Number(v['max-minutes']);
  if (maxMinutes !== undefined && !(maxMinutes > 0)) throw new InvalidInput(`--max-minutes must be a positive number, not "${v['max-minutes']}"`);
  return {
    migrations,
    seed,
    faultRate,
    ...(v.workloads ? { workloads: list('--workloads', v.workloads, WORKLOAD_KINDS) as WorkloadKind[] } : {}),
    ...(v.faults
      ? {
          faults: list(
            '--faults',
            v.faults,
            FAULTS.map((f) => f.id),
          ),
        }
      : {}),
    ...(v['no-post-copy'] ? { postCopy: false } : {}),
    ...(maxMinutes !== undefined ? { maxMinutes } : {}),
    out: path.resolve(v.out ?? path.join(repoRoot, 'results')),
  };
}
