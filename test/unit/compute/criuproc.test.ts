/** Ending processes by PID: sigkill, and killIfNamed's guard against a reused PID (a real child process). */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, test } from '@jest/globals';
import { killIfNamed, sigkill } from '../../../src/compute/criuproc.js';

test('killIfNamed ends the process only under its own name; sigkill of a process gone is false', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  const pid = child.pid as number;
  expect(killIfNamed(pid, 'criu')).toBe(false); // another name: left alone
  expect(child.exitCode).toBeNull();
  expect(killIfNamed(pid, 'sleep')).toBe(true);
  const [, signal] = await exited;
  expect(signal).toBe('SIGKILL');
  expect(sigkill(pid)).toBe(false); // reaped: no such process any more
  expect(killIfNamed(pid, 'sleep')).toBe(false);
});

test('sigkill ends a running process', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  expect(sigkill(child.pid as number)).toBe(true);
  expect((await exited)[1]).toBe('SIGKILL');
});
