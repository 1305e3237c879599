#!/usr/bin/env node
/** ferry-conductor: owns the migration state machine and the database; drives the compute agents. */
import { notifierFromConfig, versionedNotifierFromConfig } from '../bus/index.js';
import { RPCServer } from '../bus/rpc/server.js';
import { ConductorManager, CONDUCTOR_TOPIC } from '../conductor/manager.js';
import { CONDUCTOR_RPC_VERSION } from '../conductor/methods.js';
import { ConductorUpgradeState } from '../conductor/upgrade.js';
import { evacuationNotifier, migrationNotifier } from '../conductor/notifications.js';
import { openMigrationsSection } from '../conductor/report.js';
import { SqlRepository } from '../conductor/repository.js';
import { ConductorService } from '../conductor/service.js';
import { InventoryRPCAPI } from '../compute/inventory.js';
import { ComputeRPCAPI } from '../compute/rpcapi.js';
import { lockSingleConductor } from '../conductor/single.js';
import { openDriver, parseConnection } from '../db/connection.js';
import { requireCurrentDatabase } from '../db/schema.js';
import { configFilesFromArgv, loadConfig } from '../conf/index.js';
import { FerryError } from '../common/errors.js';
import { runService } from './service.js';

/**
 * With SQLite, the single-conductor lock is taken before anything else (the bus included): a
 * second conductor on the same database only says so and exits. Config errors are left to runService.
 */
function takeSqliteLock(): { file: string; release: () => void } | null {
  let connection: string;
  let host: string;
  try {
    const conf = loadConfig(configFilesFromArgv(process.argv.slice(2)));
    connection = conf.database.connection;
    host = conf.DEFAULT.host;
  } catch {
    return null;
  }
  try {
    const t = parseConnection(connection);
    return t.kind === 'sqlite' && t.file !== ':memory:' ? lockSingleConductor(t.file, host) : null;
  } catch (e) {
    process.stderr.write(`ferry-conductor: ${e instanceof FerryError ? `${e.name}: ` : ''}${(e as Error).message}\n`);
    process.exit(1);
  }
}

const sqliteLock = takeSqliteLock();

await runService('ferry-conductor', async ({ conf, log, transport, onStop, addReportSection }) => {
  const target = parseConnection(conf.database.connection);
  const host = conf.DEFAULT.host;
  if (sqliteLock) {
    onStop(sqliteLock.release);
    log.info(
      { database: target.kind === 'sqlite' ? target.file : '', lock: sqliteLock.file },
      'SQLite database: this is the only conductor (a second one on this database refuses to start); several conductors need MariaDB',
    );
  }
  const db = openDriver(conf.database.connection, {
    onFailover: (from, to, why) => log.warn({ from, to, err: why }, 'database server stopped answering: using the next one listed'),
  });
  onStop(() => db.close());
  const schemaWarning = await requireCurrentDatabase(db);
  if (schemaWarning) log.warn(schemaWarning);
  const leaseMs = conf.conductor.claim_lease_seconds * 1000;
  const owner = `${host}:${process.pid}`;
  if (target.kind === 'mysql')
    log.info({ database: db.description, owner, lease_s: conf.conductor.claim_lease_seconds }, 'MariaDB database: conductors share the work through claims');
  const notifier = notifierFromConfig(conf, transport, `ferry-conductor:${conf.DEFAULT.host}`);
  const versionedNotifier = versionedNotifierFromConfig(conf, transport, `ferry-conductor:${conf.DEFAULT.host}`);
  const repo = new SqlRepository(db);
  // This conductor's service record, and [upgrade_levels] compute resolved from the agents' records.
  const upgrade = new ConductorUpgradeState(
    repo,
    {
      host,
      rpcVersion: CONDUCTOR_RPC_VERSION,
      computeLevel: conf.upgrade_levels.compute,
      serviceDownTimeS: conf.conductor.service_down_time,
      // Well within the down time, so that ferry-status never sees a running conductor as gone.
      intervalS: Math.min(conf.compute.report_interval, Math.max(1, Math.floor(conf.conductor.service_down_time / 3))),
    },
    log,
  );
  await upgrade.start();
  onStop(() => upgrade.stop());
  const compute = new ComputeRPCAPI(transport, {
    shortTimeout: conf.DEFAULT.rpc_response_timeout,
    longTimeout: conf.conductor.migration_timeout,
    callMonitorTimeout: conf.conductor.call_monitor_timeout,
    versionCap: upgrade.computeCap,
  });
  addReportSection(openMigrationsSection(() => repo.unfinishedMigrations()));
  const service = new ConductorService(
    repo,
    compute,
    migrationNotifier(notifier, log, versionedNotifier),
    {
      maxConcurrentPerHost: conf.conductor.max_concurrent_migrations_per_host,
      serviceDownTime: conf.conductor.service_down_time,
      containerStateMaxAge: conf.conductor.container_state_max_age,
      retry: { deadlineMs: conf.conductor.step_retry_deadline * 1000, backoffMs: 1000 },
      // SQLite: the lone conductor takes every claim over at start; MariaDB: only this host's previous processes'.
      claims: { owner, leaseMs, scanMs: Math.min(5000, Math.floor(leaseMs / 3)), takeOverPrefix: target.kind === 'sqlite' ? '' : `${host}:` },
      completionTimeout: conf.compute.live_migration_completion_timeout,
      timeoutAction: conf.compute.live_migration_timeout_action === 'force_complete' ? 'force_complete' : 'abort',
      perHostBusUsers: conf.conductor.per_host_bus_users,
    },
    log,
    new InventoryRPCAPI(transport, conf.conductor.container_state_timeout),
    evacuationNotifier(notifier, log, versionedNotifier),
  );
  const server = new RPCServer(transport, { topic: CONDUCTOR_TOPIC, server: conf.DEFAULT.host }, [new ConductorManager(service)], {
    poolSize: conf.DEFAULT.executor_thread_pool_size,
  });
  await server.start();
  onStop(() => server.stop(5000));
  onStop(() => service.stop());
  const resumed = await service.recover();
  if (resumed) log.warn({ resumed }, 'resuming migrations left unfinished');
});
