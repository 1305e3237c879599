#!/usr/bin/env node
/** ferry-api: the REST API (Keystone auth, policy, validation); hands work to the conductor over RPC. */
import { startApiService } from '../api/server.js';
import { ConductorRPCAPI } from '../conductor/rpcapi.js';
import { runService } from './service.js';

await runService('ferry-api', async ({ conf, log, transport, onStop }) => {
  const conductor = new ConductorRPCAPI(transport, conf.DEFAULT.rpc_response_timeout);
  const api = await startApiService({ conf, conductor, logger: log });
  onStop(() => api.close(5000));
  log.info({ url: api.url }, 'listening');
});
