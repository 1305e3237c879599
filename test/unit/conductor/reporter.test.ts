/**
 * Who may speak for a compute host: report_state and container_event name the host in their
 * arguments, so the conductor checks them against what it knows. Real SQLite repository and
 * ConductorService; the sender is what the RPC server hands over from the broker-validated
 * user_id (the manager passes it through).
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { HostIdentityMismatch, HostNotFound } from '../../../src/common/errors.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import { ConductorManager } from '../../../src/conductor/manager.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { HostState } from '../../../src/objects/host.js';
import { sleep } from '../../../src/common/sleep.js';

const log = pino({ level: 'silent' });
const idleCompute = new Proxy({}, { get: () => () => new Promise(() => undefined) }) as unknown as ComputeAPI;

function state(address: string): HostState {
  return {
    docker_version: '20.10',
    api_version: '1.41',
    criu_version: '4.2.1',
    criu_ok: true,
    architecture: 'x86_64',
    migration_address: address,
    containers: [],
  };
}

function setup(opts: { perHostBusUsers?: boolean; serviceDownTime?: number } = {}) {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const repo = new SqliteRepository(db);
  const svc = new ConductorService(
    repo,
    idleCompute,
    async () => undefined,
    { maxConcurrentPerHost: 5, serviceDownTime: opts.serviceDownTime ?? 30, ...opts },
    log,
  );
  return { repo, svc };
}

const event = { kind: 'start', id: 'a'.repeat(64), name: 'web', image: 'img', status: 'running', at: new Date().toISOString() } as const;

describe('report_state without a sender identity', () => {
  it('an up host keeps its data channel: a report naming it with another address is refused, the record untouched', async () => {
    const { repo, svc } = setup();
    await svc.reportState('compute1', state('10.0.0.1:9518'));
    await expect(svc.reportState('compute1', state('10.6.6.6:9518'))).rejects.toBeInstanceOf(HostIdentityMismatch);
    await expect(svc.reportState('compute1', state('10.6.6.6:9518'))).rejects.toThrow(/up with its data channel at 10\.0\.0\.1:9518/);
    expect((await repo.getHostRecord('compute1'))?.facts.migration_address).toBe('10.0.0.1:9518');
    // Its own heartbeats go on.
    await svc.reportState('compute1', state('10.0.0.1:9518'));
  });

  it('once the host has been down, a new address registers', async () => {
    const { repo, svc } = setup({ serviceDownTime: 1 });
    await svc.reportState('compute1', state('10.0.0.1:9518'));
    await sleep(1100);
    await svc.reportState('compute1', state('10.0.0.9:9518'));
    expect((await repo.getHostRecord('compute1'))?.facts.migration_address).toBe('10.0.0.9:9518');
  });

  it('an event from a host that never reported is refused', async () => {
    const { svc } = setup();
    await expect(svc.containerEvent('nowhere', { ...event })).rejects.toBeInstanceOf(HostNotFound);
    await svc.reportState('compute1', state('10.0.0.1:9518'));
    await expect(svc.containerEvent('compute1', { ...event, at: new Date(Date.now() + 1000).toISOString() })).resolves.toBe(true);
  });
});

describe('[conductor] per_host_bus_users', () => {
  it("takes a host's report and events only from the bus user named like it", async () => {
    const { svc } = setup({ perHostBusUsers: true });
    const manager = new ConductorManager(svc);
    const ctx = RequestContext.admin();
    const report = (sender: string | null) => manager.dispatch(ctx, 'report_state', { host: 'compute1', state: state('10.0.0.1:9518') }, { sender });
    await expect(report('compute2')).rejects.toThrow(/bus user compute2 may not speak for host compute1/);
    await expect(report(null)).rejects.toBeInstanceOf(HostIdentityMismatch);
    await report('compute1');
    const ev = (sender: string | null) => manager.dispatch(ctx, 'container_event', { host: 'compute1', event: { ...event } }, { sender });
    await expect(ev('compute2')).rejects.toBeInstanceOf(HostIdentityMismatch);
    await ev('compute1');
  });

  it('off (the default), the sender does not matter', async () => {
    const { svc } = setup();
    await new ConductorManager(svc).dispatch(RequestContext.admin(), 'report_state', { host: 'compute1', state: state('10.0.0.1:9518') }, { sender: 'ferry' });
  });
});
