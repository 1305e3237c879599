/** pidAlive: a zombie (exited, not yet reaped by its busy parent) counts as gone, so stopping a daemon never waits for ever. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { pidAlive } from '../../../src/devcloud/proc.js';

describe('pidAlive', () => {
  it('is true for a running process and false for a zombie', () => {
    const child = spawn('sleep', ['0.2'], { stdio: 'ignore' });
    const pid = child.pid as number;
    expect(pidAlive(pid)).toBe(true);
    // Block this event loop while the child exits, so nothing reaps it: it is a zombie meanwhile.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 800);
    expect(pidAlive(pid)).toBe(false);
  });

  it('is false for a PID that does not exist', () => {
    expect(pidAlive(2 ** 22 + 12345)).toBe(false);
  });
});
