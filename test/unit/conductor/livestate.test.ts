/**
 * The conductor decides on live container state: events and inventories are merged by the
 * time the host observed them, and a migrate request asks the host when what it reported is
 * stale or disagrees. Real SQLite repository; the hosts' live answers are scripted (pure logic).
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { ContainerNotFound, InvalidInput, InvalidMigrationState, MessagingTimeout } from '../../../src/common/errors.js';
import type { ContainerEvent } from '../../../src/compute/events.js';
import type { Inventory, InventoryAPI } from '../../../src/compute/inventory.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import { ConductorManager } from '../../../src/conductor/manager.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { age, ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { ContainerSummary, HostState } from '../../../src/objects/host.js';

const log = pino({ level: 'silent' });
const ID = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);

function hostState(containers: ContainerSummary[]): HostState {
  return { docker_version: '20.10', api_version: '1.41', criu_version: '4.2.1', criu_ok: true, architecture: 'x86_64', migration_address: 'x:1', containers };
}

/** A ComputeAPI that never gets far: the flows started here fail at their first step, which these tests do not look at. */
const idleCompute = new Proxy({}, { get: () => () => new Promise(() => undefined) }) as unknown as ComputeAPI;

class ScriptedHosts implements InventoryAPI {
  readonly asked: string[] = [];
  constructor(public answers: Record<string, ContainerSummary[] | Error>) {}
  async inventory(_ctx: RequestContext, host: string): Promise<Inventory> {
    this.asked.push(host);
    const a = this.answers[host];
    if (a instanceof Error) throw a;
    return { host, taken_at: new Date().toISOString(), containers: a ?? [] };
  }
}

async function setup(hosts?: ScriptedHosts, maxAge = 1) {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const repo = new SqliteRepository(db);
  const svc = new ConductorService(
    repo,
    idleCompute,
    async () => undefined,
    { maxConcurrentPerHost: 5, serviceDownTime: 30, containerStateMaxAge: maxAge },
    log,
    hosts,
  );
  // The hosts' first inventories were taken a minute ago; the events below came after them.
  await svc.reportState('compute1', hostState([]), iso(60_000));
  await svc.reportState('compute2', hostState([]), iso(60_000));
  return { repo, svc };
}

const ev = (kind: ContainerEvent['kind'], status: string | null, at: string, over: Partial<ContainerEvent> = {}): ContainerEvent => ({
  kind,
  id: ID,
  name: 'web',
  image: 'ferry/counter',
  status,
  at,
  ...over,
});
const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
const names = async (svc: ConductorService) => (await svc.listContainers()).map((c) => `${c.host}/${c.name}/${c.status}`);

describe('events and inventories', () => {
  it('an event changes the listing at once; host counts follow', async () => {
    const { svc } = await setup();
    expect(await svc.containerEvent('compute1', ev('create', 'created', iso(30)))).toBe(true);
    expect(await names(svc)).toEqual(['compute1/web/created']);
    await svc.containerEvent('compute1', ev('start', 'running', iso(20)));
    expect(await names(svc)).toEqual(['compute1/web/running']);
    expect((await svc.listHosts()).find((h) => h.name === 'compute1')?.containers).toBe(1);
    await svc.containerEvent('compute1', ev('rename', null, iso(10), { name: 'web2' }));
    expect(await names(svc)).toEqual(['compute1/web2/running']);
    await svc.containerEvent('compute1', ev('destroy', 'removed', iso(5), { name: null }));
    expect(await names(svc)).toEqual([]);
    expect((await svc.listHosts()).find((h) => h.name === 'compute1')?.containers).toBe(0);
  });

  it('an inventory taken before a newer event does not undo it; a removed container does not come back', async () => {
    const { svc } = await setup();
    const takenBefore = iso(50);
    await svc.containerEvent('compute1', ev('destroy', 'removed', iso(40)));
    // A heartbeat whose list was taken before the removal arrives after it.
    await svc.reportState('compute1', hostState([{ id: ID, name: 'web', image: 'i', status: 'running' }]), takenBefore);
    expect(await names(svc)).toEqual([]);
    await svc.containerEvent('compute1', ev('create', 'created', iso(30), { id: ID2, name: 'db' }));
    await svc.reportState('compute1', hostState([]), takenBefore);
    expect(await names(svc)).toEqual(['compute1/db/created']);
    // A newer inventory is the truth: db is gone, web is not back.
    await svc.reportState('compute1', hostState([]), iso(1));
    expect(await names(svc)).toEqual([]);
  });

  it('events older than the newest full inventory are already in it and are dropped', async () => {
    const { svc } = await setup();
    await svc.reportState('compute1', hostState([]), iso(10));
    expect(await svc.containerEvent('compute1', ev('create', 'created', iso(20)))).toBe(false);
    expect(await names(svc)).toEqual([]);
    expect(await svc.containerEvent('compute1', ev('create', 'created', iso(5)))).toBe(true);
  });

  it("malformed events are refused with a clear message (container_event's schema, before the service)", async () => {
    const { svc, repo } = await setup();
    const mgr = new ConductorManager(svc);
    const event = (host: string, e: unknown) => () => mgr.dispatch(RequestContext.admin(), 'container_event', { host, event: e });
    expect(event('compute1', { ...ev('start', 'running', iso(1)), kind: 'explode' })).toThrow('container_event: unknown kind "explode"');
    expect(event('compute1', ev('start', 'running', iso(1), { id: '../../x' }))).toThrow(/"id" must be a container ID/);
    expect(event('compute1', ev('start', 'running', 'yesterday'))).toThrow(/"at" must be an ISO 8601 time/);
    expect(event('compute1', ev('start', 'running', iso(1), { name: 5 as never }))).toThrow(/"name" must be a string/);
    expect(event('compute1', 'started')).toThrow(/argument "event" must be an object/);
    expect(event('', ev('start', 'running', iso(1)))).toThrow(InvalidInput);
    const report = (state: unknown, taken_at?: string) => () => mgr.dispatch(RequestContext.admin(), 'report_state', { host: 'compute1', state, taken_at });
    expect(report(hostState([]), 'soon')).toThrow(/"taken_at" must be an ISO 8601 time/);
    expect(report({ ...hostState([]), containers: 'none' })).toThrow('report_state needs a state with a containers list');
    expect(report(hostState([{ id: ID, name: 'web', image: 'i', status: 'running' }, { id: ID2 } as never]))).toThrow(
      'report_state: containers[1] must be an object with string id, name, image and status',
    );
    expect(report({ ...hostState([]), criu_ok: 'yes' })).toThrow('report_state: state.criu_ok must be true or false');
    expect(report({ ...hostState([]), modes: { post_copy: true } })).toThrow(/report_state: state.modes must be/);
    expect(report({ ...hostState([]), migration_address: undefined })).toThrow('report_state: state.migration_address must be a string');
    expect(report({ ...hostState([]), memory_used_bytes: '1G' })).toThrow(/state.memory_used_bytes must be a number or null/);
    expect(await repo.listContainers()).toEqual([]);
  });

  it('a checked event and report reach the service as the schema left them: times as toISOString writes them, extra facts kept', async () => {
    const { svc, repo } = await setup();
    const mgr = new ConductorManager(svc);
    const at = new Date(Date.now() - 1000);
    const plain = at.toISOString().replace(/\.\d{3}Z$/, '+00:00');
    await mgr.dispatch(RequestContext.admin(), 'container_event', {
      host: 'compute1',
      event: { kind: 'start', id: ID, status: 'running', at: plain, project_id: 7 },
    });
    expect(await repo.listContainers()).toEqual([
      expect.objectContaining({ id: ID, status: 'running', project_id: null, updated_at: new Date(Date.parse(plain)).toISOString() }),
    ]);
    await mgr.dispatch(RequestContext.admin(), 'report_state', { host: 'compute2', state: { ...hostState([]), future_fact: 'kept' }, taken_at: plain });
    expect((await svc.listHosts()).find((h) => h.name === 'compute2')).toBeDefined();
    expect((await repo.getHostRecord('compute2'))?.facts).toMatchObject({ future_fact: 'kept' });
  });
});

describe('migrate decisions on live state', () => {
  const running = [{ id: ID, name: 'web', image: 'i', status: 'running' }];

  it('a container the hosts reported as created is asked about live, and migrates when it runs', async () => {
    const hosts = new ScriptedHosts({ compute1: running });
    const { svc } = await setup(hosts);
    await svc.containerEvent('compute1', ev('create', 'created', iso(5)));
    const m = await svc.migrateOnLiveState(new RequestContext(), 'web');
    expect(hosts.asked).toEqual(['compute1']);
    expect(m).toMatchObject({ status: 'accepted', source_host: 'compute1', dest_host: 'compute2', container_id: ID });
  });

  it('a container not known yet is looked for on every up host', async () => {
    const hosts = new ScriptedHosts({ compute1: [], compute2: running });
    const { svc } = await setup(hosts);
    const m = await svc.migrateOnLiveState(new RequestContext(), 'web');
    expect(hosts.asked.sort()).toEqual(['compute1', 'compute2']);
    expect(m).toMatchObject({ source_host: 'compute2', dest_host: 'compute1' });
  });

  it('a fresh running state is trusted; a stale one is checked', async () => {
    const hosts = new ScriptedHosts({ compute1: running });
    const { svc } = await setup(hosts, 1);
    await svc.containerEvent('compute1', ev('start', 'running', iso(100)));
    await svc.migrateOnLiveState(new RequestContext(), 'web');
    expect(hosts.asked).toEqual([]);

    const h2 = new ScriptedHosts({ compute1: running });
    const { svc: s2 } = await setup(h2, 1);
    s2.containerEvent('compute1', ev('start', 'running', iso(5000)));
    await s2.migrateOnLiveState(new RequestContext(), 'web');
    expect(h2.asked).toEqual(['compute1']);
  });

  it('a removed container, confirmed live, is not found; the message says the hosts were asked', async () => {
    const hosts = new ScriptedHosts({ compute1: [], compute2: [] });
    const { svc } = await setup(hosts);
    await svc.containerEvent('compute1', ev('start', 'running', iso(5000)));
    const err = await svc.migrateOnLiveState(new RequestContext(), 'web').catch((e: Error) => e);
    expect(err).toBeInstanceOf(ContainerNotFound);
    expect((err as Error).message).toBe('container "web" was not found on any compute host (asked compute1, compute2 just now); see GET /v1/containers');
  });

  it('a refusal resting on what a host reported says how old it is, and that the host did not answer', async () => {
    const hosts = new ScriptedHosts({ compute1: new MessagingTimeout('Timed out waiting for a reply') });
    const { svc } = await setup(hosts);
    await svc.containerEvent('compute1', ev('die', 'exited', iso(4200)));
    const err = await svc.migrateOnLiveState(new RequestContext(), 'web').catch((e: Error) => e);
    expect(err).toBeInstanceOf(InvalidMigrationState);
    expect((err as Error).message).toMatch(
      /^container "web" on compute1 was exited when compute1 last reported, 4\.\d s ago; compute1 did not answer a live check \(Timed out waiting for a reply\), so whether it runs now is not known; only running containers are live-migrated$/,
    );
  });

  it('a refusal confirmed live says so', async () => {
    const hosts = new ScriptedHosts({ compute1: [{ id: ID, name: 'web', image: 'i', status: 'exited' }] });
    const { svc } = await setup(hosts);
    await svc.containerEvent('compute1', ev('die', 'exited', iso(1)));
    await expect(svc.migrateOnLiveState(new RequestContext(), 'web')).rejects.toThrow(
      'container "web" on compute1 is exited, not running (checked on compute1 just now); only running containers are live-migrated',
    );
  });

  it('without a live check, the reported state decides (and refusals give its age)', async () => {
    const { svc } = await setup(undefined);
    await svc.containerEvent('compute1', ev('create', 'created', iso(2000)));
    await expect(svc.migrateOnLiveState(new RequestContext(), 'web')).rejects.toThrow(
      /^container "web" on compute1 was created when compute1 last reported, 2\.\d s ago; only running containers are live-migrated$/,
    );
  });

  it('ages read well', async () => {
    expect(age(420)).toBe('0.4 s');
    expect(age(42_000)).toBe('42 s');
    expect(age(600_000)).toBe('10 min');
  });
});
