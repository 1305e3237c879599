/** The checkpoint directory the target replaces can only be a checkpoint directory: no name or ID climbs out. */
import { expect, test } from '@jest/globals';
import { checkpointDir, checkpointName } from '../../../src/compute/docker/checkpoint.js';

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
