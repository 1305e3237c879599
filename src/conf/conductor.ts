/** [conductor] options: scheduling, queueing, timeouts and retry deadlines of migrations. */
import { boolOpt, floatOpt, intOpt } from './opts.js';

export const conductorOpts = {
  max_concurrent_migrations_per_host: intOpt(1, 'Migrations running at once on one compute host, as source or as target; others queue.', 1),
  service_down_time: intOpt(30, 'Seconds without a heartbeat after which a compute host is down.', 1),
  migration_timeout: intOpt(900, 'Seconds a migration may take before it is rolled back.', 10),
  call_monitor_timeout: intOpt(
    30,
    'Seconds without a heartbeat from a compute host working on a long step (checkpoint, transfer, restore) after which its answer counts as lost and the step is asked again.',
    4,
  ),
  step_retry_deadline: intOpt(
    300,
    'Seconds the conductor keeps asking a compute host whose answer to a step is unknown (no reply, bus or host gone) before it ends the migration in `error` for the operator to check.',
    5,
  ),
  container_state_max_age: floatOpt(
    1.0,
    'Seconds a container state the hosts reported (events, heartbeats) is trusted for a migrate decision; older, or not running, and the conductor asks the host live first.',
  ),
  container_state_timeout: intOpt(3, 'Seconds the conductor waits for a host to answer a live container-state check.', 1),
  per_host_bus_users: boolOpt(
    false,
    "Each compute host connects to RabbitMQ as its own user, named like the host ([DEFAULT] host): the conductor then takes a host's report_state and container_event only from that user. RabbitMQ vouches for the sender (Ferry stamps each message with its user; the broker refuses any other). Off: any bus client may report for a host, except that an up host keeps its data channel address until it has been down.",
  ),
  claim_lease_seconds: intOpt(
    30,
    'Seconds a conductor holds its claim of a migration or evacuation without renewing it (it renews every third of that); when a conductor dies, another takes its work over once the lease has run out. Clocks of the conductors must agree (NTP).',
    3,
  ),
};
