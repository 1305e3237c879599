/** A release's tree may run on this checkout's node_modules only with the same runtime dependencies. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { dependencyChanges } from '../../../src/devcloud/release.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-release-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function tree(name: string, pkg: Record<string, unknown>): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
  return dir;
}

describe('dependencyChanges', () => {
  const ours = tree('ours', { version: '0.2.0', dependencies: { amqplib: '^2.3.1', zod: '^4.6.7' }, devDependencies: { typescript: '^5.9.3' } });

  it('finds none when only the version and dev dependencies differ', () => {
    const theirs = tree('same', { version: '0.1.0', dependencies: { zod: '^4.6.7', amqplib: '^2.3.1' }, devDependencies: { typescript: '^5.0.0' } });
    expect(dependencyChanges(ours, theirs)).toEqual([]);
  });

  it('names each dependency changed, added or removed, ours first', () => {
    const theirs = tree('other', { dependencies: { amqplib: '^1.0.0', pino: '^9.0.0' } });
    expect(dependencyChanges(ours, theirs)).toEqual(['amqplib: ^2.3.1 -> ^1.0.0', 'pino: none -> ^9.0.0', 'zod: ^4.6.7 -> none']);
  });

  it('treats a package.json without dependencies as none', () => {
    expect(dependencyChanges(ours, tree('bare', {}))).toEqual(['amqplib: ^2.3.1 -> none', 'zod: ^4.6.7 -> none']);
  });
});
