/**
 * The conductor's notifications, in two formats (`[notifications] notification_format`):
 * - unversioned: `container.<event>` with the ContainerMigrationPayload the migration record fills,
 *   and `host.evacuate.start|end|error` with the HostEvacuationPayload, on `notifications.<priority>`;
 * - versioned: the same event types (plus force-complete's, which are only versioned, as Nova adds
 *   no new legacy notifications) with the declared payload objects of
 *   src/objects/notification-payloads.ts, on `versioned_notifications.<priority>`.
 */
import type { RequestContext } from '../common/context.js';
import { exceptionPayload, type Notifier, type Priority } from '../bus/notifier.js';
import type { Logger } from '../common/log.js';
import { evacuationPayload, type Evacuation } from '../objects/evacuation.js';
import { migrationPayload, type Migration } from '../objects/migration.js';
import { containerMigrationObject, hostEvacuationObject, type FaultInfo } from '../objects/notification-payloads.js';
import type { EventName, FlowDeps } from './flow.js';

export type EvacuationEvent = 'host.evacuate.start' | 'host.evacuate.end' | 'host.evacuate.error';

/** Events sent in the versioned format only. */
const VERSIONED_ONLY: readonly EventName[] = ['live_migration_force_complete.start', 'live_migration_force_complete.end'];

const MIGRATION_EVENTS: readonly EventName[] = [
  'live_migration.start',
  'live_migration.end',
  'live_migration.error',
  'live_migration_pre.start',
  'live_migration_pre.end',
  'live_migration_post_dest.start',
  'live_migration_post_dest.end',
  'live_migration_rollback.start',
  'live_migration_rollback.end',
  'live_migration_abort.start',
  'live_migration_abort.end',
  'live_migration_force_complete.start',
  'live_migration_force_complete.end',
];
const EVACUATION_EVENTS: readonly EvacuationEvent[] = ['host.evacuate.start', 'host.evacuate.end', 'host.evacuate.error'];

function priorityOf(eventType: string): Priority {
  return eventType.endsWith('.error') ? 'error' : 'info';
}

/** Every versioned notification the conductor sends: its event type, priority and payload object (docs and samples list these). */
export const VERSIONED_EVENTS: readonly { eventType: string; priority: Priority; payload: string }[] = [
  ...MIGRATION_EVENTS.map((e) => ({ eventType: `container.${e}`, priority: priorityOf(e), payload: 'ContainerMigrationPayload' })),
  ...EVACUATION_EVENTS.map((e) => ({ eventType: e, priority: priorityOf(e), payload: 'HostEvacuationPayload' })),
];

async function send(
  notifier: Notifier | undefined,
  ctx: RequestContext,
  eventType: string,
  payload: () => unknown,
  log: Logger,
  what: Record<string, unknown>,
): Promise<void> {
  if (!notifier || notifier.driver === 'noop') return;
  try {
    await notifier.notify(ctx, eventType, payload(), priorityOf(eventType));
  } catch (e) {
    log.warn({ ...what, event_type: eventType, topics: notifier.topics, err: (e as Error).message }, 'could not send a notification');
  }
}

/** Sends `container.<event>` in the unversioned format (`notifier`) and the versioned one (`versioned`); never throws. */
export function migrationNotifier(notifier: Notifier, log: Logger, versioned?: Notifier): FlowDeps['notify'] {
  return async (ctx: RequestContext, event: EventName, m: Migration, error?: Error) => {
    const eventType = `container.${event}`;
    const fault: FaultInfo | null = error ? (exceptionPayload(error, 'live_migration', 'ferry.conductor.flow') as unknown as FaultInfo) : null;
    const unversioned = () => {
      const payload = migrationPayload(m);
      // Nova's versioned error notifications carry the exception beside the object (`fault`).
      if (fault) (payload['ferry_object.data'] as Record<string, unknown>).fault = fault;
      return payload;
    };
    await Promise.all([
      VERSIONED_ONLY.includes(event) ? undefined : send(notifier, ctx, eventType, unversioned, log, { migration: m.uuid }),
      send(versioned, ctx, eventType, () => containerMigrationObject(m, fault), log, { migration: m.uuid }),
    ]);
  };
}

/** Sends one evacuation notification; never throws (a lost notification must not stop an evacuation). */
export type EvacuationNotify = (ctx: RequestContext, event: EvacuationEvent, e: Evacuation) => Promise<void>;

export function evacuationNotifier(notifier: Notifier, log: Logger, versioned?: Notifier): EvacuationNotify {
  return async (ctx, event, e) => {
    await Promise.all([
      send(notifier, ctx, event, () => evacuationPayload(e), log, { evacuation: e.uuid }),
      send(versioned, ctx, event, () => hostEvacuationObject(e), log, { evacuation: e.uuid }),
    ]);
  };
}
