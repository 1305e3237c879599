/** The checkpoint directory the target replaces can only be a checkpoint directory: no name or ID climbs out. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { canStartFromImages, checkpointDir, checkpointName, standInName } from '../../../src/compute/docker/checkpoint.js';

const ID = 'abcdef0123456789'.repeat(4);

test('a name from the migration id is one component under the container; anything that climbs is refused', () => {
  const name = checkpointName('9bddf8ea-187f-45c8-bd69-f2da2a59833f');
  expect(checkpointDir('/var/lib/docker', ID, name)).toBe(`/var/lib/docker/containers/${ID}/checkpoints/${name}`);
  for (const bad of ['../../../../../../etc', '..', '.', 'a/b', '', '/etc', 'x\0y']) {
    expect(() => checkpointDir('/var/lib/docker', ID, bad)).toThrow(/not a checkpoint name/);
  }
  for (const bad of ['../x', 'web', ID.slice(0, 12), `${ID}/..`]) {
    expect(() => checkpointDir('/var/lib/docker', bad, name)).toThrow(/not a full container ID/);
  }
});

test('a restore reads its images in place only from a checkpoint folder runc can start from, with a plain path', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ckdir-'));
  try {
    const images = checkpointDir(root, ID, checkpointName('9bddf8ea-187f-45c8-bd69-f2da2a59833f'));
    // Docker's stand-in folder is a checkpoint name of its own beside the images.
    expect(checkpointDir(root, ID, standInName(path.basename(images)))).toBe(`${images}.start`);
    fs.mkdirSync(images, { recursive: true });
    expect(canStartFromImages(images)).toBe(false); // empty: nothing to start from
    fs.writeFileSync(path.join(images, 'inventory.img'), 'x');
    expect(canStartFromImages(images)).toBe(false); // runc reads descriptors.json itself
    fs.writeFileSync(path.join(images, 'descriptors.json'), '[]');
    expect(canStartFromImages(images)).toBe(true);
    // runc.conf's lines are "option value": a path with a space or a newline cannot be written there.
    const odd = path.join(root, 'odd dir');
    fs.mkdirSync(odd);
    fs.writeFileSync(path.join(odd, 'inventory.img'), 'x');
    fs.writeFileSync(path.join(odd, 'descriptors.json'), '[]');
    expect(canStartFromImages(odd)).toBe(false);
    expect(canStartFromImages('relative/dir')).toBe(false);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
