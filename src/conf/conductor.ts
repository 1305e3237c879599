import { intOpt } from './opts.js';

export const conductorOpts = {
  max_concurrent_migrations_per_host: intOpt(1, 'Migrations running at once from one source host; others queue.', 1),
  service_down_time: intOpt(30, 'Seconds without a heartbeat after which a compute host is down.', 1),
  migration_timeout: intOpt(900, 'Seconds a migration may take before it is rolled back.', 10),
};
