/**
 * docs/architecture.md against the code: the RPC versions it names, every conductor method in
 * its table (with the version that brought it, when newer than 1.0) and every compute method in
 * its list. A method added to the code without the docs fails here.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import { COMPUTE_METHODS, COMPUTE_RPC_VERSION } from '../../../src/compute/methods.js';
import { CONDUCTOR_METHODS, CONDUCTOR_RPC_VERSION } from '../../../src/conductor/methods.js';

const doc = fs.readFileSync('docs/architecture.md', 'utf8');

describe('docs/architecture.md says what the code does', () => {
  it('names the RPC API versions the code serves', () => {
    const m = /`ferry-compute`\s+(\d+\.\d+), `ferry-conductor` (\d+\.\d+)/.exec(doc);
    expect(m?.slice(1)).toEqual([COMPUTE_RPC_VERSION, CONDUCTOR_RPC_VERSION]);
  });

  it.each(Object.entries(CONDUCTOR_METHODS))('conductor method %s has a row, with the version that brought it', (name, m) => {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    expect(row).toBeDefined();
    if (m.since !== '1.0') expect(row).toContain(`(${m.since})`);
  });

  it.each(Object.keys(COMPUTE_METHODS))('compute method %s is listed', (name) => {
    const section = doc.slice(doc.indexOf('Topic `ferry-compute`'));
    expect(section).toContain(`\`${name}\``);
  });

  it('documents no phase the code never sets', () => {
    expect(doc).not.toContain('rollback-failed');
  });
});
