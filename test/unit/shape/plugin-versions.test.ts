/** The Python plugins (openstack CLI, Horizon, tempest) ship with Ferry: each says Ferry's version. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ferryVersion = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

describe("the Python plugins carry Ferry's version", () => {
  test.each(['osc-plugin', 'horizon-plugin', 'tempest-plugin'])('%s/setup.cfg', (plugin) => {
    const cfg = fs.readFileSync(path.join(root, plugin, 'setup.cfg'), 'utf8');
    expect(cfg.match(/^version = (\S+)$/m)?.[1]).toBe(ferryVersion);
  });
});
