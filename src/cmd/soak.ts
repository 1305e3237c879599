#!/usr/bin/env node
/**
 * ferry-soak: random migrations on the development cloud (counter, Redis with a writer, stream;
 * stop-and-copy and post-copy), random faults from the fault matrix at random moments, the
 * invariant checked after each. `npm run soak -- --help`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInput } from '../common/errors.js';
import { parseSoakArgs, USAGE } from '../soak/args.js';
import { exitCode, renderSoak, runSoak } from '../soak/run.js';

async function main(argv: string[]): Promise<number> {
  let opts: ReturnType<typeof parseSoakArgs>;
  try {
    opts = parseSoakArgs(argv);
  } catch (e) {
    if (e instanceof InvalidInput) {
      process.stderr.write(`ferry-soak: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (!opts) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { out, ...o } = opts;
  process.stdout.write(`soak: ${o.migrations} migrations, seed ${o.seed}\n`);
  const r = await runSoak({ ...o, log: (l) => process.stdout.write(`${l}\n`) });
  fs.mkdirSync(out, { recursive: true });
  const base = path.join(out, `soak-${r.seed}`);
  const table = renderSoak(r);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(r, null, 1)}\n`);
  fs.writeFileSync(`${base}.md`, `${table}\n`);
  // The counts last: the one line a CI log or a reader looks for.
  process.stdout.write(`\nresults: ${base}.{json,md}\n\n${table}\n`);
  return exitCode(r.counts);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ferry-soak: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
