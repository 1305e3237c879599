/**
 * A migrate request decided on the recorded state alone, without asking any host (what an
 * evacuation does inside the conductor). The service offers only the live-checked request
 * (migrateOnLiveState); tests that measure or word the recorded decision reach its admission part.
 */
import type { RequestContext } from '../../../src/common/context.js';
import type { Admission } from '../../../src/conductor/admission.js';
import type { ConductorService, MigrateOptions } from '../../../src/conductor/service.js';
import type { Migration } from '../../../src/objects/migration.js';

export function migrateOnRecord(
  svc: ConductorService,
  ctx: RequestContext,
  containerRef: string,
  requestedHost?: string | null,
  opts: MigrateOptions = {},
): Promise<Migration> {
  return (svc as unknown as { admission: Admission }).admission.migrate(ctx, containerRef, requestedHost, undefined, opts);
}
