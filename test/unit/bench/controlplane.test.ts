/**
 * The control-plane benchmark at toy scale (20 hosts x 10 containers, SQLite, the simulated
 * engine 50x faster): it runs end to end through the real conductor, and what it reports is
 * consistent with what happened. Figures are printed, never asserted on time.
 */
import { describe, expect, it } from '@jest/globals';
import { SqlRepository } from '../../../src/conductor/repository.js';
import { RequestContext } from '../../../src/common/context.js';
import { openDriver } from '../../../src/db/connection.js';
import { syncDatabase } from '../../../src/db/schema.js';
import { countStatements } from '../../../src/bench/controlplane/backends.js';
import { groupOf, QueryCounter } from '../../../src/bench/controlplane/counting.js';
import { FakeCompute } from '../../../src/bench/controlplane/fake-compute.js';
import { Fleet } from '../../../src/bench/controlplane/fleet.js';
import { parseControlPlane, runAll, scaledTimings } from '../../../src/bench/controlplane/main.js';
import { details, table } from '../../../src/bench/controlplane/report.js';

const UUID = '0b9f4f0e-6f1c-4c55-9a51-3f1f4c3c2a10';

describe('control-plane benchmark', () => {
  it('runs 20 hosts x 10 containers on SQLite through the real conductor and reports consistent figures', async () => {
    const scenario = {
      hosts: 20,
      containersPerHost: 10,
      burst: 30,
      burstSeconds: 60,
      requestConcurrency: 4,
      heartbeatConcurrency: 4,
      reportInterval: 1,
      drainSeconds: 60,
      maxConcurrentPerHost: 1,
      decisionSamples: 20,
      soloRequests: 2,
      threads: false,
      timings: scaledTimings(0.02),
    };
    const { results, skipped } = await runAll({ scenario, backends: ['sqlite'], conductors: [1, 2], mariadb: null }, () => undefined);
    process.stdout.write(`${table(results, skipped)}\n${results.map(details).join('\n')}\n`);
    expect(skipped).toEqual([{ backend: 'sqlite', conductors: 2, reason: expect.stringMatching(/single conductor/) }]);
    expect(results).toHaveLength(1);
    const r = results[0];
    expect(r.containers).toBe(200);
    expect(r.burst.sent).toBe(30);
    expect(r.burst.accepted).toBe(30);
    expect(r.burst.refused).toEqual({});
    expect(r.decision.accept_alone_ms.n).toBe(2);
    expect(r.decision.choose_ms.n).toBe(20);
    // Every migration accepted ended, and moved its container: never two at once on one host.
    expect(r.drain).toMatchObject({ completed: 32, failed: 0, unfinished: 0, timed_out: false });
    expect(r.max_per_host).toBe(1);
    expect(r.compute_calls).toMatchObject({ pre_migration: 32, live_migration: 32, post_migration_at_destination: 32, cleanup_source: 32 });
    // One repository call per heartbeat, its statements counted: the host row, the containers it had, all its
    // containers in one statement, its count; not one per container.
    expect(r.heartbeats.calls).toBe(1);
    expect(r.heartbeats.statements).toBe(4);
    expect(r.queries.accept.statements).toBeGreaterThan(0);
    expect(r.queries.flow.statements).toBeGreaterThan(r.queries.accept.statements);
    expect(r.methods['accept:createMigration'].calls).toBe(32);
    expect(table(results, skipped)).toMatch(/\| sqlite \| 1 \| \d+ \|/);
  });

  it('groups repository calls: heartbeats, claim upkeep, one migration by its uuid, and the rest (accept)', () => {
    expect(groupOf('saveHostReport', ['compute-0001', {}])).toBe('heartbeat');
    expect(groupOf('renewClaims', ['owner', 1000])).toBe('upkeep');
    expect(groupOf('migrationStates', [[UUID]])).toBe('upkeep');
    expect(groupOf('getMigration', [UUID])).toBe('flow');
    expect(groupOf('claim', ['migration', UUID, 'owner', 1000])).toBe('flow');
    expect(groupOf('setContainerHost', ['a'.repeat(64), 'compute-0002'])).toBe('flow');
    expect(groupOf('createMigration', [UUID])).toBe('accept');
    expect(groupOf('listContainers', [{}])).toBe('accept');
  });

  it('counts each statement once, under the repository method it ran for', async () => {
    const counter = new QueryCounter();
    const driver = openDriver('sqlite:///:memory:');
    await syncDatabase(driver);
    const repo = counter.wrap(new SqlRepository(countStatements(driver, counter)));
    const fleet = new Fleet({ hosts: 2, containersPerHost: 3, stoppedShare: 0 });
    await repo.saveHostReport('compute-0001', fleet.state('compute-0001'), new Date().toISOString());
    await repo.listContainers();
    await repo.listContainers();
    const m = counter.raw();
    expect(m['heartbeat:saveHostReport'].calls).toBe(1);
    expect(m['heartbeat:saveHostReport'].statements).toBeGreaterThanOrEqual(4);
    expect(m['accept:listContainers']).toMatchObject({ calls: 2, statements: 2 });
    expect(m['accept:listContainers'].db_ms).toBeGreaterThan(0);
    expect(counter.unattributed).toBe(0);
    await driver.close();
  });

  it('the simulated engine moves the container in the fleet and refuses an unknown one', async () => {
    const fleet = new Fleet({ hosts: 2, containersPerHost: 2, stoppedShare: 0 });
    const fake = new FakeCompute(fleet, scaledTimings(0));
    const ctx = RequestContext.admin();
    const [src, dst] = ['compute-0001', 'compute-0002'];
    const c = fleet.containers(src)[0];
    const args = { migration_id: 'm1', source_host: src };
    const d = await fake.call(ctx, dst, 'check_can_migrate_destination', args);
    const s = await fake.call(ctx, src, 'check_can_migrate_source', { migration_id: 'm1', container: c.id, dest_host: dst, dest: d.dest });
    expect(s.spec.id).toBe(c.id);
    const post = await fake.call(ctx, dst, 'post_migration_at_destination', { migration_id: 'm1' });
    expect(fleet.containers(dst).map((x) => x.id)).toContain(post.container_id);
    expect(fake.maxPerHost).toBe(1);
    await fake.call(ctx, src, 'cleanup_source', { migration_id: 'm1', container_id: c.id });
    expect(fleet.containers(src).map((x) => x.id)).not.toContain(c.id);
    expect(fleet.state(dst).memory_used_bytes).toBeGreaterThan(0);
    await expect(fake.call(ctx, src, 'check_can_migrate_source', { migration_id: 'm2', container: 'nope', dest_host: dst, dest: null })).rejects.toThrow(
      /no container nope/,
    );
  });

  it("parses its flags: the defaults are the issue's scale, --quick the smoke one", () => {
    const full = parseControlPlane([], '/repo');
    const quick = parseControlPlane(['--quick', '--backends', 'sqlite', '--conductors', '1'], '/repo');
    if (typeof full === 'string' || typeof quick === 'string') throw new Error('usage returned');
    expect([full.scenario.hosts, full.scenario.containersPerHost, full.scenario.burst]).toEqual([1000, 50, 2000]);
    expect(full.backends).toEqual(['sqlite', 'mariadb']);
    expect(full.conductors).toEqual([1, 2]);
    expect([quick.scenario.hosts, quick.scenario.containersPerHost, quick.backends, quick.conductors]).toEqual([20, 10, ['sqlite'], [1]]);
    expect(full.scenario.threads).toBe(true);
    expect((parseControlPlane(['--inline'], '/repo') as typeof full).scenario.threads).toBe(false);
    expect(parseControlPlane(['--help'], '/repo')).toMatch(/--control-plane/);
    expect(() => parseControlPlane(['--backends', 'oracle'], '/repo')).toThrow(/unknown backend oracle/);
    expect(() => parseControlPlane(['--hosts', '1'], '/repo')).toThrow(/--hosts must be an integer of at least 2/);
  });
});
