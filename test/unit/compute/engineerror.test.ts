/** The engine's status and message out of what dockerode rejects with. */
import { expect, test } from '@jest/globals';
import { engineMessage, engineStatus } from '../../../src/compute/docker/engineerror.js';

test("the engine's answer: its status and its own message, not dockerode's wrapping", () => {
  const e = Object.assign(new Error('(HTTP code 409) unexpected - Conflict'), { statusCode: 409, json: { message: 'container abc is not running' } });
  expect(engineStatus(e)).toBe(409);
  expect(engineMessage(e)).toBe('container abc is not running');
});

test('no answer from the engine: no status, the error message', () => {
  const e = new Error('connect ENOENT /var/run/docker.sock');
  expect(engineStatus(e)).toBeUndefined();
  expect(engineMessage(e)).toBe('connect ENOENT /var/run/docker.sock');
  expect(engineMessage(Object.assign(new Error('plain'), { json: {} }))).toBe('plain');
});
