/**
 * The conductor's own MigrationFlow, run in this process over agents that live here too
 * (InProcessComputeAPI) with an in-memory database: how the compute integration tests and the
 * bench move a container, so that they exercise exactly the production rules.
 */
import { randomUUID } from 'node:crypto';
import { RequestContext } from '../common/context.js';
import { getLogger } from '../common/log.js';
import type { MigrationAgent } from '../compute/agent.js';
import { InProcessComputeAPI } from '../compute/inprocess.js';
import type { LiveMigrationResult, PostMigrationResult, PreMigrationResult } from '../compute/steps.js';
import { openDatabase, syncSchema } from '../db/schema.js';
import { newMigration, type Migration } from '../objects/migration.js';
import { MigrationFlow, type RetryPolicy } from './flow.js';
import { SqliteRepository } from './repository.js';

/** A finished migration and the step results the flow kept. */
export interface InProcessOutcome {
  migration: Migration;
  pre?: PreMigrationResult;
  live?: LiveMigrationResult;
  post?: PostMigrationResult;
}

export class InProcessConductor {
  readonly repo: SqliteRepository;
  readonly compute: InProcessComputeAPI;
  private readonly log = getLogger('conductor.inprocess');

  constructor(
    agents: MigrationAgent[],
    private readonly retry?: RetryPolicy,
  ) {
    const db = openDatabase('sqlite:///:memory:');
    syncSchema(db);
    this.repo = new SqliteRepository(db);
    this.compute = new InProcessComputeAPI(agents);
  }

  /** Move `container` (name or ID on the source) from `source` to `dest` and wait for a final status. */
  async migrate(container: string, source: string, dest: string, opts: { migrationId?: string } = {}): Promise<InProcessOutcome> {
    const m = newMigration({
      uuid: opts.migrationId ?? randomUUID(),
      container_id: container,
      container_name: container,
      source_host: source,
      dest_host: dest,
    });
    await this.repo.createMigration(m);
    const ctx = RequestContext.admin();
    const flow = new MigrationFlow({ repo: this.repo, compute: this.compute, notify: async () => undefined, log: this.log, retry: this.retry }, ctx, m.uuid);
    const migration = await flow.run();
    const steps = (await this.repo.getSteps(m.uuid)) as Omit<InProcessOutcome, 'migration'>;
    return { migration, pre: steps.pre, live: steps.live, post: steps.post };
  }
}
