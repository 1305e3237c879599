/**
 * The machine-wide CRIU configuration that runc hands to every checkpoint and restore
 * (/etc/criu/runc.conf), and the lock that keeps post-copy's temporary options out of every
 * other checkpoint.
 *
 * runc.conf is one file per machine (in the dev cloud both compute hosts read the same one), and
 * its settings override runc's. A post-copy needs options in it for a moment (`lazy-pages`, the
 * page server's `address`/`port` for the dump, `work-dir` for the restore), and so does a
 * stop-and-copy restore that reads its images in place (`images-dir`, startFromImages in
 * checkpoint.ts); they would break any other checkpoint or restore reading the file at the same
 * time. So:
 * - every checkpoint/restore path without options of its own takes the lock SHARED while it runs
 *   (they run side by side), a step with options takes it EXCLUSIVE while they are in the file;
 * - the lock is flock(2) on a lock file, held by a `flock` child process whose stdin is this
 *   process's pipe: if this process dies, the pipe closes, the child exits and the lock is free;
 * - the lazy options are written atomically (temporary file + rename) between two marker lines and
 *   removed in a `finally`; whoever takes the lock next and still finds the marked block (its
 *   writer died in between) removes it before going on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../../common/errors.js';

export const RUNC_CONF = '/etc/criu/runc.conf';
/** In a folder only root writes: in world-writable /run/lock anyone could hold the lock (or plant the file) and stall every checkpoint. */
export const RUNC_CONF_LOCK = '/run/ferry/criu-runc-conf.lock';

const BEGIN = '# ferry post-copy: temporary options, removed when this step ends (src/compute/docker/runcconf.ts)';
const END = '# ferry post-copy: end';

/** The file's content without a post-copy block (what it must hold whenever no post-copy step runs). */
export function withoutLazyBlock(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let inBlock = false;
  for (const l of lines) {
    if (l === BEGIN) inBlock = true;
    else if (l === END) inBlock = false;
    else if (!inBlock) out.push(l);
  }
  return out.join('\n');
}

/** The file's content with `options` (CRIU config lines, e.g. "lazy-pages", "port 27027") appended in a marked block. */
export function withLazyBlock(text: string, options: string[]): string {
  for (const o of options) {
    if (!/^[a-z][a-z-]*( [A-Za-z0-9_./:-]+)?$/.test(o)) throw new EngineError(`refusing to write ${JSON.stringify(o)} into ${RUNC_CONF}`);
  }
  let base = withoutLazyBlock(text);
  if (base && !base.endsWith('\n')) base += '\n';
  return `${base}${BEGIN}\n${options.join('\n')}\n${END}\n`;
}

export function hasLazyBlock(text: string): boolean {
  return text.split('\n').includes(BEGIN);
}

function readConf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Replace the file's content in one step (readers see the old or the new file, never half of one). */
function writeAtomically(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.ferry-${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** Remove a block left by a writer that died; call with the lock held. */
function repair(file: string): void {
  const text = readConf(file);
  if (hasLazyBlock(text)) writeAtomically(file, withoutLazyBlock(text));
}

export interface ConfLockOptions {
  file?: string;
  lockFile?: string;
  /** How long to wait for the lock before giving up (a post-copy step waits for running stop-and-copies). */
  timeoutMs?: number;
}

/**
 * Make the lock file's folder (0700) or check the one there: a real folder of this process's
 * user that nobody else may write, so nobody else can create, replace or hold the lock file.
 */
export function ensurePrivateLockDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.();
  const why = !st.isDirectory()
    ? 'is not a folder'
    : uid !== undefined && st.uid !== uid
      ? `belongs to uid ${st.uid}, not ${uid}`
      : (st.mode & 0o022) !== 0
        ? `is writable by others (mode ${(st.mode & 0o7777).toString(8)})`
        : null;
  if (why) throw new EngineError(`refusing the lock folder ${dir}: it ${why}`);
}

/** Take flock(2) on the lock file through a `flock` child; resolves once it is held, with its release. */
async function takeLock(lockFile: string, mode: 'shared' | 'exclusive', timeoutMs: number): Promise<() => Promise<void>> {
  ensurePrivateLockDir(path.dirname(lockFile));
  const child: ChildProcess = spawn(
    'flock',
    [mode === 'shared' ? '-s' : '-x', '-w', String(Math.ceil(timeoutMs / 1000)), lockFile, '-c', 'echo held; exec cat >/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('held')) resolve();
    });
    child.on('error', (e) => reject(new EngineError(`cannot run flock for ${lockFile}: ${e.message}`)));
    child.on('close', (code) =>
      reject(new EngineError(`could not lock ${lockFile} (${mode}) within ${timeoutMs} ms (flock exited ${code}: ${stderr.trim()})`)),
    );
  });
  return async () => {
    child.stdin?.end();
    await exited;
  };
}

/**
 * Run `fn` while holding the lock shared: for stop-and-copy checkpoints and restores, which need
 * the file's normal content but may run side by side.
 */
export async function withRuncConfShared<T>(fn: () => Promise<T>, opts: ConfLockOptions = {}): Promise<T> {
  const file = opts.file ?? RUNC_CONF;
  const release = await takeLock(opts.lockFile ?? RUNC_CONF_LOCK, 'shared', opts.timeoutMs ?? 600_000);
  try {
    repair(file);
    return await fn();
  } finally {
    await release();
  }
}

/**
 * Run `fn` with `options` added to the file, holding the lock exclusively. The options are in the
 * file from before `fn` starts until `fn` settles (or `releaseWhen` resolves earlier: the step
 * says when CRIU has read its configuration), then the file's normal content is back.
 */
export async function withLazyRuncConf<T>(options: string[], fn: (configRead: () => void) => Promise<T>, opts: ConfLockOptions = {}): Promise<T> {
  const file = opts.file ?? RUNC_CONF;
  const release = await takeLock(opts.lockFile ?? RUNC_CONF_LOCK, 'exclusive', opts.timeoutMs ?? 600_000);
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    writeAtomically(file, withoutLazyBlock(readConf(file)));
  };
  try {
    repair(file);
    writeAtomically(file, withLazyBlock(readConf(file), options));
    return await fn(restore);
  } finally {
    try {
      restore();
    } finally {
      await release();
    }
  }
}

/** The file's current content (for tests and status). */
export function runcConfText(file = RUNC_CONF): string {
  return readConf(file);
}
