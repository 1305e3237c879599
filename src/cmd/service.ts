/**
 * What every Ferry service's entry point shares: config from argv, logging, the bus, clean
 * shutdown, and the operator's signals as OpenStack services answer them: SIGHUP reloads the
 * mutable options (and whatever the service registers, e.g. ferry-api's policy file) and reopens
 * the log file; SIGUSR2 writes a Guru Meditation report to stderr (src/common/gmr.ts).
 */
import { transportFromConfig } from '../bus/index.js';
import type { Transport } from '../bus/transport.js';
import { FerryError } from '../common/errors.js';
import { installReportHandler, type ReportSection } from '../common/gmr.js';
import { configureLogging, getLogger, type Logger } from '../common/log.js';
import { configFilesFromArgv, configWarnings, loadConfig, mutateConfig, type FerryConfig } from '../conf/index.js';

export interface ServiceContext {
  conf: FerryConfig;
  log: Logger;
  transport: Transport;
  onStop(fn: () => Promise<void> | void): void;
  /** Something more to reload on SIGHUP (after the mutable options); a failure is logged and the old state kept. */
  onReload(fn: () => Promise<void> | void): void;
  /** A section of this service's Guru Meditation report (SIGUSR2). */
  addReportSection(section: ReportSection): void;
}

/**
 * SIGHUP: read the config files again, apply the mutable options (logging among them), then the
 * service's own reloads. A config that no longer parses changes nothing.
 */
export async function reloadService(
  name: string,
  conf: FerryConfig,
  files: string[],
  reloads: readonly (() => Promise<void> | void)[],
  log: Logger,
): Promise<void> {
  let fresh: FerryConfig;
  try {
    fresh = loadConfig(files);
  } catch (e) {
    log.error({ err: (e as Error).message }, 'SIGHUP: the config files cannot be read; nothing changed');
    return;
  }
  const { changed, ignored } = mutateConfig(conf, fresh);
  for (const c of changed) log.info({ group: c.group, option: c.name, old: c.old, new: c.new }, 'SIGHUP: mutable option changed');
  for (const c of ignored) log.warn({ group: c.group, option: c.name }, 'SIGHUP: option changed but is not mutable; restart the service to apply it');
  try {
    const { level, file } = configureLogging(conf.DEFAULT, name);
    // `log_level`: a `level` field would clash with pino's own.
    log.info({ log_level: level, log_file: file }, 'SIGHUP: logging reconfigured');
  } catch (e) {
    log.error({ err: (e as Error).message }, 'SIGHUP: cannot reopen the log file; logging as before');
  }
  for (const fn of reloads) {
    try {
      await fn();
    } catch (e) {
      log.error({ err: e instanceof FerryError ? `${e.name}: ${e.message}` : (e as Error).message }, 'SIGHUP: reload failed; the previous state stays');
    }
  }
}

/** Load config, connect to the bus, run `body`, and stop cleanly on SIGTERM/SIGINT. */
export async function runService(name: string, body: (s: ServiceContext) => Promise<void>): Promise<void> {
  const log = getLogger(name);
  const stops: (() => Promise<void> | void)[] = [];
  const reloads: (() => Promise<void> | void)[] = [];
  const sections: ReportSection[] = [];
  let conf: FerryConfig;
  let files: string[];
  try {
    // A bad command line is the caller's to fix, like a bad config file: exit 2 with the reason.
    files = configFilesFromArgv(process.argv.slice(2));
    conf = loadConfig(files);
  } catch (e) {
    process.stderr.write(`${name}: ${(e as Error).message}\n`);
    process.exit(2);
  }
  try {
    configureLogging(conf.DEFAULT, name);
  } catch (e) {
    process.stderr.write(`${name}: cannot open the log file: ${(e as Error).message}\n`);
    process.exit(2);
  }
  for (const w of configWarnings) log.warn(w);
  installReportHandler(name, () => conf, sections);
  // Reloads run one after another: a second SIGHUP during a reload waits for it.
  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading');
    reloading = reloading.then(() => reloadService(name, conf, files, reloads, log));
  });
  const transport = transportFromConfig(conf, { connectionName: `${name}:${conf.DEFAULT.host}` });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'stopping');
    for (const fn of stops.reverse()) {
      try {
        await fn();
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'error while stopping');
      }
    }
    await transport.close().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  try {
    await transport.connect();
    await body({
      conf,
      log,
      transport,
      onStop: (fn) => stops.push(fn),
      onReload: (fn) => reloads.push(fn),
      addReportSection: (s) => sections.push(s),
    });
    log.info({ host: conf.DEFAULT.host }, `${name} started`);
  } catch (e) {
    const msg = e instanceof FerryError ? `${e.name}: ${e.message}` : ((e as Error).stack ?? String(e));
    log.fatal({ err: msg }, `${name} failed to start`);
    process.stderr.write(`${name}: ${msg}\n`);
    process.exit(1);
  }
}
