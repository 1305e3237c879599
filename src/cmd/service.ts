/** What every Ferry service's entry point shares: config from argv, logging, the bus, clean shutdown. */
import { transportFromConfig } from '../bus/index.js';
import type { Transport } from '../bus/transport.js';
import { FerryError } from '../common/errors.js';
import { getLogger, type Logger } from '../common/log.js';
import { configFilesFromArgv, configWarnings, loadConfig, type FerryConfig } from '../conf/index.js';

export interface ServiceContext {
  conf: FerryConfig;
  log: Logger;
  transport: Transport;
  onStop(fn: () => Promise<void> | void): void;
}

/** Load config, connect to the bus, run `body`, and stop cleanly on SIGTERM/SIGINT. */
export async function runService(name: string, body: (s: ServiceContext) => Promise<void>): Promise<void> {
  const log = getLogger(name);
  const stops: (() => Promise<void> | void)[] = [];
  let conf: FerryConfig;
  try {
    conf = loadConfig(configFilesFromArgv(process.argv.slice(2)));
  } catch (e) {
    process.stderr.write(`${name}: ${(e as Error).message}\n`);
    process.exit(2);
  }
  for (const w of configWarnings) log.warn(w);
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
    await body({ conf, log, transport, onStop: (fn) => stops.push(fn) });
    log.info({ host: conf.DEFAULT.host }, `${name} started`);
  } catch (e) {
    const msg = e instanceof FerryError ? `${e.name}: ${e.message}` : (e as Error).stack ?? String(e);
    log.fatal({ err: msg }, `${name} failed to start`);
    process.stderr.write(`${name}: ${msg}\n`);
    process.exit(1);
  }
}
