/**
 * The conductor's notifications: `container.<event>` with the versioned ContainerMigrationPayload,
 * and `host.evacuate.start|end|error` with the HostEvacuationPayload.
 */
import type { RequestContext } from '../common/context.js';
import { exceptionPayload, type Notifier } from '../bus/notifier.js';
import type { Logger } from '../common/log.js';
import { evacuationPayload, type Evacuation } from '../objects/evacuation.js';
import { migrationPayload, type Migration } from '../objects/migration.js';
import type { EventName, FlowDeps } from './flow.js';

export function migrationNotifier(notifier: Notifier, log: Logger): FlowDeps['notify'] {
  return async (ctx: RequestContext, event: EventName, m: Migration, error?: Error) => {
    const payload = migrationPayload(m);
    const isError = event.endsWith('.error');
    if (error) {
      // Nova's versioned error notifications carry the exception beside the object (`fault`).
      (payload['ferry_object.data'] as Record<string, unknown>).fault = exceptionPayload(error, 'live_migration', 'ferry.conductor.flow');
    }
    try {
      await (isError ? notifier.error(ctx, `container.${event}`, payload) : notifier.info(ctx, `container.${event}`, payload));
    } catch (e) {
      log.warn({ event, migration: m.uuid, err: (e as Error).message }, 'could not send a notification');
    }
  };
}

export type EvacuationEvent = 'host.evacuate.start' | 'host.evacuate.end' | 'host.evacuate.error';
/** Sends one evacuation notification; never throws (a lost notification must not stop an evacuation). */
export type EvacuationNotify = (ctx: RequestContext, event: EvacuationEvent, e: Evacuation) => Promise<void>;

export function evacuationNotifier(notifier: Notifier, log: Logger): EvacuationNotify {
  return async (ctx, event, e) => {
    try {
      const payload = evacuationPayload(e);
      await (event.endsWith('.error') ? notifier.error(ctx, event, payload) : notifier.info(ctx, event, payload));
    } catch (err) {
      log.warn({ event, evacuation: e.uuid, err: (err as Error).message }, 'could not send a notification');
    }
  };
}
