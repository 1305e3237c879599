/**
 * One logger per process, JSON lines; each component has a child logger (`getLogger`).
 *
 * Where the lines go and at which level follow oslo.log's options (`configureLogging`, called
 * by every service once its config is read, and again on SIGHUP): stderr by default, a file
 * with `log_file`/`log_dir`, both with `use_stderr`; `debug` lowers the level to debug.
 * `FERRY_LOG_LEVEL` in the environment wins over the config (tests set it).
 *
 * Every line written while a request is handled carries its `request_id` and
 * `global_request_id` (oslo.context's fields): the API and the RPC server run each request
 * inside `runWithRequestIds`, and the root logger's mixin reads them from AsyncLocalStorage,
 * so the code that logs needs no context in hand.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import path from 'node:path';
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';

export interface RequestIds {
  request_id: string;
  global_request_id: string | null;
}

const requestIds = new AsyncLocalStorage<RequestIds>();

/** Run `fn` (and everything it starts) as part of this request: its log lines carry the ids. */
export function runWithRequestIds<T>(ids: RequestIds, fn: () => T): T {
  return requestIds.run({ request_id: ids.request_id, global_request_id: ids.global_request_id }, fn);
}

/** The ids of the request being handled here, if any. */
export function currentRequestIds(): RequestIds | undefined {
  return requestIds.getStore();
}

interface LineWriter {
  write(line: string): unknown;
}

/** A file destination that can be reopened (SonicBoom's reopen, after logrotate moved the file). */
interface FileWriter extends LineWriter {
  reopen(): void;
  flushSync(): void;
}

/**
 * The root logger's stream: it forwards each line to the current targets, so that changing
 * the destination reaches every child logger already made (children share the root's stream).
 */
class SwitchableSink implements DestinationStream {
  stderr: LineWriter = pino.destination({ dest: 2, sync: true });
  file: FileWriter | null = null;
  filePath: string | null = null;
  alsoStderr = true;

  write(line: string): void {
    if (this.file) {
      this.file.write(line);
      if (this.alsoStderr) this.stderr.write(line);
    } else {
      this.stderr.write(line);
    }
  }
}

const sink = new SwitchableSink();

/** The log level `FERRY_LOG_LEVEL` asks for, when set; it overrides the config. */
function envLevel(): LevelWithSilent | undefined {
  const v = process.env.FERRY_LOG_LEVEL;
  return v ? (v as LevelWithSilent) : undefined;
}

let currentLevel: LevelWithSilent = envLevel() ?? 'info';

const root: Logger = pino(
  {
    level: currentLevel,
    base: { pid: process.pid },
    mixin() {
      const ids = requestIds.getStore();
      return ids ? { request_id: ids.request_id, global_request_id: ids.global_request_id } : {};
    },
  },
  sink,
);

/** Children keep their own level once made (pino), so a level change walks them; WeakRefs let unused ones go. */
const children = new Set<WeakRef<Logger>>();

export function getLogger(component: string): Logger {
  const child = root.child({ component });
  child.level = currentLevel;
  children.add(new WeakRef(child));
  return child;
}

function setLevel(level: LevelWithSilent): void {
  currentLevel = level;
  root.level = level;
  for (const ref of children) {
    const l = ref.deref();
    if (l) l.level = level;
    else children.delete(ref);
  }
}

/** oslo.log's options, as src/conf/default.ts declares them in [DEFAULT]. */
export interface LoggingOptions {
  debug: boolean;
  log_file: string;
  log_dir: string;
  use_stderr: boolean;
}

/**
 * The log file oslo.log would write: log_file (relative to log_dir when log_dir is set), or
 * `<log_dir>/<service>.log` with log_dir alone; null means stderr.
 */
export function logFilePath(opts: Pick<LoggingOptions, 'log_file' | 'log_dir'>, service: string): string | null {
  if (opts.log_file) return opts.log_dir ? path.resolve(opts.log_dir, opts.log_file) : path.resolve(opts.log_file);
  if (opts.log_dir) return path.resolve(opts.log_dir, `${service}.log`);
  return null;
}

/** The level the options ask for: FERRY_LOG_LEVEL when set, else debug or info. */
export function levelFor(opts: Pick<LoggingOptions, 'debug'>): LevelWithSilent {
  return envLevel() ?? (opts.debug ? 'debug' : 'info');
}

/**
 * Apply the logging options: level, and destination (a file is opened, created with its
 * directory when missing; the same file again is reopened, which is what SIGHUP after
 * logrotate needs). Throws when the file cannot be opened, leaving the destination as it was.
 */
export function configureLogging(opts: LoggingOptions, service: string): { level: LevelWithSilent; file: string | null } {
  const file = logFilePath(opts, service);
  if (file === null) {
    closeFile();
  } else if (file === sink.filePath && sink.file) {
    sink.file.reopen();
  } else {
    const next = pino.destination({ dest: file, sync: true, mkdir: true, append: true }) as unknown as FileWriter;
    closeFile();
    sink.file = next;
    sink.filePath = file;
  }
  sink.alsoStderr = opts.use_stderr;
  const level = levelFor(opts);
  setLevel(level);
  return { level, file };
}

function closeFile(): void {
  if (!sink.file) return;
  try {
    sink.file.flushSync();
  } catch {
    // Nothing buffered (sync writes) or already closed: nothing to keep.
  }
  (sink.file as unknown as { end(): void }).end();
  sink.file = null;
  sink.filePath = null;
}

/** The level in force now. */
export function currentLogLevel(): LevelWithSilent {
  return currentLevel;
}

export type { Logger };
