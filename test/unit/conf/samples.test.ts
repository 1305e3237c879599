/**
 * The sample files in etc/ferry/ are generated from the declarations: every option of
 * src/conf and every policy rule of src/identity/policies.ts. These tests fail as soon as a
 * declaration and its sample drift apart, and say how to regenerate the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { groups, sampleConfig } from '../../../src/conf/index.js';
import { DEFAULT_POLICIES } from '../../../src/identity/policies.js';

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const CONF_SAMPLE = 'etc/ferry/ferry.conf.sample';
const POLICY_SAMPLE = 'etc/ferry/policy.yaml';

function read(rel: string): string {
  return fs.readFileSync(path.join(repoRoot, rel), 'utf8');
}

/** "[group] option" for every option line (commented out) of a sample ferry.conf. */
function optionsInSample(text: string): string[] {
  const out: string[] = [];
  let group = '';
  for (const line of text.split('\n')) {
    const g = /^\[([^\]]+)\]$/.exec(line);
    if (g) group = g[1];
    const o = /^#([a-z_][a-z0-9_]*) = /.exec(line);
    if (o) out.push(`[${group}] ${o[1]}`);
  }
  return out;
}

function declaredOptions(): string[] {
  return Object.entries(groups).flatMap(([g, opts]) => Object.keys(opts).map((name) => `[${g}] ${name}`));
}

/** The rule names a sample policy.yaml shows (commented out or not). */
function rulesInSample(text: string): string[] {
  return [...text.matchAll(/^#?"([^"]+)":/gm)].map((m) => m[1]);
}

describe(`${CONF_SAMPLE}`, () => {
  const sample = read(CONF_SAMPLE);

  it('lists exactly the declared options, group by group', () => {
    const inFile = optionsInSample(sample);
    const declared = declaredOptions();
    const missing = declared.filter((o) => !inFile.includes(o));
    const stale = inFile.filter((o) => !declared.includes(o));
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
  });

  it('is the generated sample, help texts and defaults included (regenerate: ferry-manage config sample > etc/ferry/ferry.conf.sample)', () => {
    expect(sample).toBe(sampleConfig());
  });

  it('does not depend on the machine that generated it', () => {
    expect(sampleConfig()).toContain("#host = <this machine's host name>");
  });
});

describe(`${POLICY_SAMPLE}`, () => {
  it('shows exactly the rules declared in src/identity/policies.ts (regenerate: ferry-manage policy sample > etc/ferry/policy.yaml)', () => {
    const inFile = rulesInSample(read(POLICY_SAMPLE));
    const declared = DEFAULT_POLICIES.map((d) => d.name);
    expect({ missing: declared.filter((r) => !inFile.includes(r)), stale: inFile.filter((r) => !declared.includes(r)) }).toEqual({
      missing: [],
      stale: [],
    });
  });
});
