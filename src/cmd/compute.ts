#!/usr/bin/env node
/** ferry-compute: the agent beside one host's Docker engine; runs the migration steps, reports heartbeats and container events. */
import { RequestContext } from '../common/context.js';
import { RPCServer } from '../bus/rpc/server.js';
import { ConductorRPCAPI } from '../conductor/rpcapi.js';
import { explicitVersionCap } from '../conductor/upgrade.js';
import { dockerFromUrl } from '../compute/docker/driver.js';
import { DockerEventSource } from '../compute/docker/events.js';
import { ContainerEventFollower } from '../compute/events.js';
import { createAgent } from '../compute/index.js';
import { InventoryEndpoint } from '../compute/inventory.js';
import { ComputeManager, hostState, startHeartbeat } from '../compute/manager.js';
import { COMPUTE_TOPIC } from '../compute/rpcapi.js';
import { runService } from './service.js';

await runService('ferry-compute', async ({ conf, log, transport, onStop }) => {
  const agent = createAgent(conf);
  await agent.start();
  onStop(() => agent.stop());
  const server = new RPCServer(
    transport,
    { topic: COMPUTE_TOPIC, server: conf.DEFAULT.host },
    [new ComputeManager(agent), new InventoryEndpoint(conf.DEFAULT.host, () => agent.driver.listContainers())],
    { poolSize: conf.DEFAULT.executor_thread_pool_size },
  );
  await server.start();
  onStop(() => server.stop(10_000));
  const conductor = new ConductorRPCAPI(transport, undefined, explicitVersionCap(conf.upgrade_levels.conductor));
  const ctx = RequestContext.admin();
  // The full inventory: the heartbeat, and at once after the event stream or the bus reconnects.
  const report = async () => {
    const takenAt = new Date().toISOString();
    await conductor.reportState(ctx, conf.DEFAULT.host, await hostState(agent), takenAt);
  };
  const stopBeat = startHeartbeat(report, conf.compute.report_interval, log);
  onStop(stopBeat);
  const follower = new ContainerEventFollower(
    new DockerEventSource(dockerFromUrl(conf.compute.docker_url)),
    { event: (e) => conductor.containerEvent(ctx, conf.DEFAULT.host, e), inventory: report },
    log,
  );
  follower.start();
  onStop(() => follower.stop());
  const onBus = () => void follower.requestInventory('bus reconnected');
  transport.on('connected', onBus);
  onStop(() => void transport.off('connected', onBus));
});
