/**
 * Process helpers for the development cloud: run a command and fail with its output,
 * start a daemon with a pid file, and stop only what we started, by PID.
 */
import { execFile, spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../common/sleep.js';

export class CommandFailed extends Error {
  constructor(
    readonly cmd: string,
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`${cmd} failed (exit ${code}): ${output.trim().split('\n').slice(-5).join(' | ')}`);
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  allowFail?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (err && !opts.allowFail) {
          reject(new CommandFailed([cmd, ...args].join(' '), code, `${stdout}\n${stderr}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/**
 * Whether the process runs. A zombie does not: a daemon whose parent is another, busy process
 * (a test that started RabbitMQ and now waits synchronously for `down`) stays a zombie until
 * that parent reaps it, and waiting for it to vanish would wait for ever.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the two looks
  }
}

function readPid(pidFile: string): number | null {
  try {
    const n = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The PID in `pidFile` if that process is alive and its command line still contains `marker` (guards against PID reuse). */
export function runningPid(pidFile: string, marker: string): number | null {
  const pid = readPid(pidFile);
  if (pid === null || !pidAlive(pid)) return null;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    if (!cmdline.includes(marker)) return null;
  } catch {
    return null;
  }
  return pid;
}

export interface DaemonSpec {
  name: string;
  cmd: string;
  args: string[];
  pidFile: string;
  logFile: string;
  /** A string that must appear in /proc/PID/cmdline for the pid file to be believed. */
  marker: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Start a daemon detached from us, its output in logFile, its PID in pidFile. */
export function startDaemon(spec: DaemonSpec): number {
  fs.mkdirSync(path.dirname(spec.pidFile), { recursive: true });
  fs.mkdirSync(path.dirname(spec.logFile), { recursive: true });
  const out = fs.openSync(spec.logFile, 'a');
  const opts: SpawnOptions = {
    detached: true,
    stdio: ['ignore', out, out],
    env: spec.env ?? process.env,
    cwd: spec.cwd,
  };
  const child = spawn(spec.cmd, spec.args, opts);
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.cmd})`);
  child.unref();
  fs.writeFileSync(spec.pidFile, `${child.pid}\n`);
  return child.pid;
}

/** Stop the process in pidFile (only if it is still the one we started): TERM, then KILL after graceMs. */
export async function stopDaemon(pidFile: string, marker: string, graceMs = 15_000): Promise<boolean> {
  const pid = runningPid(pidFile, marker);
  if (pid === null) {
    fs.rmSync(pidFile, { force: true });
    return false;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  while (pidAlive(pid)) await sleep(50);
  fs.rmSync(pidFile, { force: true });
  return true;
}

/** Poll `check` until it returns true or `timeoutMs` passes; then throw with `what`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}
