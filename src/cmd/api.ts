#!/usr/bin/env node
/**
 * ferry-api: the REST API (Keystone auth, policy, validation); hands work to the conductor over RPC.
 * With [api] workers = N > 1, this process only keeps N worker processes (node:cluster) that
 * share the listening port; each worker is a whole ferry-api with its own bus connection. The
 * first worker registers the catalog endpoints, so that they are registered once.
 */
import cluster from 'node:cluster';
import { reloadPolicy, startApiService } from '../api/server.js';
import { configureLogging, getLogger } from '../common/log.js';
import { sleep } from '../common/sleep.js';
import { ConductorRPCAPI } from '../conductor/rpcapi.js';
import { explicitVersionCap } from '../conductor/upgrade.js';
import { configFilesFromArgv, loadConfig } from '../conf/index.js';
import { runService } from './service.js';

/** How many workers to keep; 1 when the config cannot be read (runService then says why and exits). */
function workersWanted(): number {
  try {
    return loadConfig(configFilesFromArgv(process.argv.slice(2))).api.workers;
  } catch {
    return 1;
  }
}

async function supervise(n: number): Promise<void> {
  try {
    // The workers (forked with the same argv) write to the same log, each opening it in append mode.
    configureLogging(loadConfig(configFilesFromArgv(process.argv.slice(2))).DEFAULT, 'ferry-api');
  } catch (e) {
    process.stderr.write(`ferry-api: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const log = getLogger('ferry-api');
  let stopping = false;
  const fork = (index: number) => {
    const w = cluster.fork({ FERRY_API_WORKER: String(index) });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      // A worker that died is replaced (after a pause, so that one failing at start does not spin).
      log.error({ worker: index, pid: w.process.pid, code, signal }, 'ferry-api worker exited; starting another');
      void sleep(1000).then(() => !stopping && fork(index));
    });
  };
  for (let i = 1; i <= n; i++) fork(i);
  log.info({ workers: n, pid: process.pid }, 'ferry-api started its workers');
  const stop = async (signal: NodeJS.Signals) => {
    stopping = true;
    log.info({ signal }, 'stopping the workers');
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // Each worker reloads and reports for itself: the operator signals the PID they know, this one.
  for (const signal of ['SIGHUP', 'SIGUSR2'] as const) {
    process.on(signal, () => {
      for (const w of Object.values(cluster.workers ?? {})) if (w && !w.isDead()) w.process.kill(signal);
    });
  }
}

const workers = cluster.isPrimary ? workersWanted() : 1;
if (cluster.isPrimary && workers > 1) {
  await supervise(workers);
} else {
  const worker = process.env.FERRY_API_WORKER;
  await runService('ferry-api', async ({ conf, log, transport, onStop, onReload }) => {
    const conductor = new ConductorRPCAPI(transport, conf.DEFAULT.rpc_response_timeout, explicitVersionCap(conf.upgrade_levels.conductor));
    // One registration in the catalog, by the first worker (or the single process).
    const register = conf.api.register_endpoints && (worker === undefined || worker === '1');
    const api = await startApiService({ conf: { ...conf, api: { ...conf.api, register_endpoints: register } }, conductor, logger: log });
    onStop(() => api.close(5000));
    // SIGHUP: the policy file is read again; one that does not load leaves the rules in force.
    onReload(() => reloadPolicy(api.policy, conf, log));
    log.info({ url: api.url, ...(worker ? { worker, pid: process.pid } : {}) }, 'listening');
  });
}
