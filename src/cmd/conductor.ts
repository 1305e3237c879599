#!/usr/bin/env node
/** ferry-conductor: owns the migration state machine and the database; drives the compute agents. */
import { notifierFromConfig } from '../bus/index.js';
import { RPCServer } from '../bus/rpc/server.js';
import { ConductorManager, CONDUCTOR_TOPIC } from '../conductor/manager.js';
import { evacuationNotifier, migrationNotifier } from '../conductor/notifications.js';
import { SqlRepository } from '../conductor/repository.js';
import { ConductorService } from '../conductor/service.js';
import { InventoryRPCAPI } from '../compute/inventory.js';
import { ComputeRPCAPI } from '../compute/rpcapi.js';
import { openDriver } from '../db/connection.js';
import { requireCurrentDatabase } from '../db/schema.js';
import { runService } from './service.js';

await runService('ferry-conductor', async ({ conf, log, transport, onStop }) => {
  const db = openDriver(conf.database.connection);
  onStop(() => db.close());
  await requireCurrentDatabase(db);
  log.info({ database: db.description }, 'database');
  const notifier = notifierFromConfig(conf, transport, `ferry-conductor:${conf.DEFAULT.host}`);
  const compute = new ComputeRPCAPI(transport, {
    shortTimeout: conf.DEFAULT.rpc_response_timeout,
    longTimeout: conf.conductor.migration_timeout,
    callMonitorTimeout: conf.conductor.call_monitor_timeout,
  });
  const service = new ConductorService(
    new SqlRepository(db),
    compute,
    migrationNotifier(notifier, log),
    {
      maxConcurrentPerHost: conf.conductor.max_concurrent_migrations_per_host,
      serviceDownTime: conf.conductor.service_down_time,
      containerStateMaxAge: conf.conductor.container_state_max_age,
      retry: { deadlineMs: conf.conductor.step_retry_deadline * 1000, backoffMs: 1000 },
      completionTimeout: conf.compute.live_migration_completion_timeout,
      timeoutAction: conf.compute.live_migration_timeout_action === 'force_complete' ? 'force_complete' : 'abort',
    },
    log,
    new InventoryRPCAPI(transport, conf.conductor.container_state_timeout),
    evacuationNotifier(notifier, log),
  );
  const server = new RPCServer(transport, { topic: CONDUCTOR_TOPIC, server: conf.DEFAULT.host }, [new ConductorManager(service)]);
  await server.start();
  onStop(() => server.stop(5000));
  const resumed = await service.recover();
  if (resumed) log.warn({ resumed }, 'resuming migrations left unfinished');
});
