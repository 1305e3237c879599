#!/usr/bin/env node
/** ferry-compute: the agent beside one host's Docker engine; runs the migration steps and reports heartbeats. */
import { RequestContext } from '../bus/context.js';
import { RPCServer } from '../bus/rpc/server.js';
import { ConductorRPCAPI } from '../conductor/rpcapi.js';
import { createAgent } from '../compute/index.js';
import { ComputeManager, hostState, startHeartbeat } from '../compute/manager.js';
import { COMPUTE_TOPIC } from '../compute/rpcapi.js';
import { runService } from './service.js';

await runService('ferry-compute', async ({ conf, log, transport, onStop }) => {
  const agent = createAgent(conf);
  await agent.start();
  onStop(() => agent.stop());
  const server = new RPCServer(transport, { topic: COMPUTE_TOPIC, server: conf.DEFAULT.host }, [new ComputeManager(agent)]);
  await server.start();
  onStop(() => server.stop(10_000));
  const conductor = new ConductorRPCAPI(transport);
  const ctx = RequestContext.admin();
  const stopBeat = startHeartbeat(
    async () => conductor.reportState(ctx, conf.DEFAULT.host, await hostState(agent)),
    conf.compute.report_interval,
    log,
  );
  onStop(stopBeat);
});
