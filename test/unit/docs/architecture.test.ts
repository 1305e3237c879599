/**
 * docs/architecture.md against the code: the RPC versions it names, the method tables of both
 * topics (each way: no method missing from the doc, none in the doc that the code lacks; the
 * version that brought a conductor method, whether a compute call is long) and the migration
 * phases of its status table. A method or phase added to (or dropped from) the code without the
 * docs fails here.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import { COMPUTE_METHODS, COMPUTE_RPC_VERSION } from '../../../src/compute/methods.js';
import { CONDUCTOR_METHODS, CONDUCTOR_RPC_VERSION } from '../../../src/conductor/methods.js';
import { MIGRATION_PHASES } from '../../../src/objects/migration.js';

const doc = fs.readFileSync('docs/architecture.md', 'utf8');

/** The text from `from` up to the next `to` (both must be there: a renamed heading fails loudly). */
function section(text: string, from: string, to: string): string {
  const start = text.indexOf(from);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = text.indexOf(to, start + from.length);
  expect(end).toBeGreaterThan(start);
  return text.slice(start, end);
}

/** The body rows of the first Markdown table whose header row starts with `header`, as cells. */
function tableRows(text: string, header: string): string[][] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(header));
  if (at < 0) throw new Error(`no table with header ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** The names in backticks in a cell. */
function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

const conductorRows = tableRows(section(doc, 'Topic `ferry-conductor`', 'Topic `ferry-compute`'), '| method |');
const computeRows = tableRows(section(doc, 'Topic `ferry-compute`', '### Notifications'), '| method |');

describe('docs/architecture.md says what the code does', () => {
  it('names the RPC API versions the code serves', () => {
    const m = /`ferry-compute`\s+(\d+\.\d+), `ferry-conductor` (\d+\.\d+)/.exec(doc);
    expect(m?.slice(1)).toEqual([COMPUTE_RPC_VERSION, CONDUCTOR_RPC_VERSION]);
  });

  it('has a row for every conductor method and none for a method the code lacks', () => {
    expect(sorted(conductorRows.map((r) => codeSpans(r[0])[0]))).toEqual(sorted(Object.keys(CONDUCTOR_METHODS)));
  });

  it.each(Object.entries(CONDUCTOR_METHODS))('conductor method %s names the version that brought it', (name, m) => {
    const row = conductorRows.find((r) => r[0] === `\`${name}\``);
    // The kind cell says `(1.N)` for a method newer than 1.0, nothing for one of 1.0.
    expect(/\((\d+\.\d+)\)/.exec(row?.[1] ?? '')?.[1] ?? '1.0').toBe(m.since);
  });

  it('has a row for every compute method and none for a method the code lacks', () => {
    expect(sorted(computeRows.map((r) => codeSpans(r[0])[0]))).toEqual(sorted(Object.keys(COMPUTE_METHODS)));
  });

  it.each(Object.entries(COMPUTE_METHODS))('compute method %s is documented as long or short as it is', (name, m) => {
    const row = computeRows.find((r) => r[0] === `\`${name}\``);
    expect(row?.[2].split(' ')[0]).toBe(m.long ? 'long' : 'short');
  });

  it('lists exactly the migration phases the code sets', () => {
    const rows = tableRows(doc, '| status | phase(s) |');
    expect(sorted(rows.flatMap((r) => codeSpans(r[1])))).toEqual(sorted(MIGRATION_PHASES));
  });
});

describe('tableRows', () => {
  it('reads the body rows of the table under a header and stops at its end', () => {
    const text = 'intro\n| a | b |\n|---|---|\n| `x` | 1 |\n| `y` | 2 |\n\n| a | b |\n|---|---|\n| `z` | 3 |\n';
    expect(tableRows(text, '| a |')).toEqual([
      ['`x`', '1'],
      ['`y`', '2'],
    ]);
  });
});
