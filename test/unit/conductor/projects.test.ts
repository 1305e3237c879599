/**
 * Containers carry a project (their creator's label): the conductor records it from inventories
 * and events, lists one project's containers, lets a project-scoped request name only that
 * project's (any other is "not found" exactly like a container that does not exist), and gives
 * a migration its container's project whoever asked. Real SQLite repository; the hosts' live
 * answers are scripted (pure logic).
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { RequestContext } from '../../../src/common/context.js';
import { ContainerNotFound, FerryError } from '../../../src/common/errors.js';
import type { ContainerEvent } from '../../../src/compute/events.js';
import type { Inventory, InventoryAPI } from '../../../src/compute/inventory.js';
import type { ComputeAPI } from '../../../src/compute/rpcapi.js';
import { SqliteRepository } from '../../../src/conductor/repository.js';
import { ConductorService } from '../../../src/conductor/service.js';
import { openDatabase, syncSchema } from '../../../src/db/schema.js';
import type { ContainerSummary, HostState } from '../../../src/objects/host.js';
import { migrateOnRecord } from './recorded-decision.js';
import { newMigration } from '../../../src/objects/migration.js';

const log = pino({ level: 'silent' });
const MINE = 'a'.repeat(64);
const THEIRS = 'b'.repeat(64);
const NOBODYS = 'c'.repeat(64);

const containers: ContainerSummary[] = [
  { id: MINE, name: 'mine', image: 'i', status: 'running', project_id: 'p-demo' },
  { id: THEIRS, name: 'theirs', image: 'i', status: 'running', project_id: 'p-other' },
  { id: NOBODYS, name: 'nobodys', image: 'i', status: 'running' },
];

function hostState(cs: ContainerSummary[]): HostState {
  return {
    docker_version: '20.10',
    api_version: '1.41',
    criu_version: '4.2.1',
    criu_ok: true,
    architecture: 'x86_64',
    migration_address: 'x:1',
    containers: cs,
  };
}

/** A ComputeAPI that never gets far: the flows started here never finish, which these tests do not look at. */
const idleCompute = new Proxy({}, { get: () => () => new Promise(() => undefined) }) as unknown as ComputeAPI;

class Hosts implements InventoryAPI {
  constructor(public answers: Record<string, ContainerSummary[]>) {}
  async inventory(_ctx: RequestContext, host: string): Promise<Inventory> {
    return { host, taken_at: new Date().toISOString(), containers: this.answers[host] ?? [] };
  }
}

async function setup() {
  const db = openDatabase('sqlite:///:memory:');
  syncSchema(db);
  const repo = new SqliteRepository(db);
  const hosts = new Hosts({ compute1: containers });
  const svc = new ConductorService(
    repo,
    idleCompute,
    async () => undefined,
    { maxConcurrentPerHost: 5, serviceDownTime: 30, containerStateMaxAge: 1 },
    log,
    hosts,
  );
  await svc.reportState('compute1', hostState(containers));
  await svc.reportState('compute2', hostState([]));
  return { repo, svc };
}

const demo = () => new RequestContext({ user_id: 'u-demo', project_id: 'p-demo', roles: ['member'] });
const admin = () => RequestContext.admin({ user_id: 'u-admin', project_id: 'p-admin' });

describe("containers' projects", () => {
  it('are recorded from the inventory and listed; a project list holds only that project', async () => {
    const { svc } = await setup();
    expect((await svc.listContainers()).map((c) => `${c.name}:${c.project_id}`)).toEqual(['mine:p-demo', 'nobodys:null', 'theirs:p-other']);
    expect((await svc.listContainers({ project_id: 'p-demo' })).map((c) => c.name)).toEqual(['mine']);
    // An empty project is a project no container has, never "no filter".
    expect(await svc.listContainers({ project_id: '' })).toEqual([]);
    // A marker of another project's container is unknown within the project.
    await expect(svc.listContainers({ project_id: 'p-demo', marker: THEIRS })).rejects.toThrow(/marker .* could not be found/);
  });

  it('come with events too; an event that does not say keeps the recorded project', async () => {
    const { svc } = await setup();
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const ev: ContainerEvent = { kind: 'create', id: 'd'.repeat(64), name: 'new', image: 'i', status: 'created', project_id: 'p-demo', at: at(1) };
    await svc.containerEvent('compute2', ev);
    await svc.containerEvent('compute2', { ...ev, kind: 'start', status: 'running', project_id: null, at: at(2) });
    expect((await svc.listContainers({ project_id: 'p-demo' })).map((c) => `${c.name}/${c.status}`)).toEqual(['mine/running', 'new/running']);
  });
});

describe('a project-scoped migrate request', () => {
  it("migrates its own project's container; the record carries that project", async () => {
    const { svc } = await setup();
    const m = await svc.migrateOnLiveState(demo(), 'mine', null, { project_id: 'p-demo' });
    expect(m).toMatchObject({ container_id: MINE, project_id: 'p-demo', user_id: 'u-demo' });
  });

  it("finds another project's container, or an unlabelled one, no more than one that does not exist", async () => {
    const { svc } = await setup();
    const refusal = async (ref: string) => {
      const e = await svc.migrateOnLiveState(demo(), ref, null, { project_id: 'p-demo' }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(ContainerNotFound);
      return { message: (e as Error).message.replace(ref, 'REF'), details: (e as FerryError).details };
    };
    const missing = await refusal('d'.repeat(64));
    for (const ref of ['theirs', THEIRS, THEIRS.slice(0, 12), 'nobodys', NOBODYS]) expect(await refusal(ref)).toEqual(missing);
    // Without the scope (a cloud admin) they are found.
    await expect(svc.migrateOnLiveState(admin(), 'theirs')).resolves.toMatchObject({ container_id: THEIRS });
  });

  it('also on the recorded state alone (no live check)', async () => {
    const { svc } = await setup();
    await expect(migrateOnRecord(svc, demo(), 'theirs', null, { project_id: 'p-demo' })).rejects.toThrow(ContainerNotFound);
    await expect(migrateOnRecord(svc, demo(), 'mine', null, { project_id: 'p-demo' })).resolves.toMatchObject({ project_id: 'p-demo' });
  });
});

describe("a migration's project", () => {
  it("is its container's when an admin asks, the admin's only for an unlabelled container", async () => {
    const { svc } = await setup();
    expect(await svc.migrateOnLiveState(admin(), 'mine')).toMatchObject({ project_id: 'p-demo', user_id: 'u-admin' });
    expect(await svc.migrateOnLiveState(admin(), 'nobodys')).toMatchObject({ project_id: 'p-admin', user_id: 'u-admin' });
  });

  it('an empty project filter lists no migration, never every one', async () => {
    const { repo } = await setup();
    await repo.createMigration(
      newMigration({ uuid: 'm1', container_id: MINE, container_name: 'mine', source_host: 'compute1', dest_host: null, project_id: 'p-demo' }),
    );
    await repo.createMigration(
      newMigration({ uuid: 'm2', container_id: NOBODYS, container_name: 'nobodys', source_host: 'compute1', dest_host: null, project_id: null }),
    );
    expect((await repo.listMigrations({})).length).toBe(2);
    expect(await repo.listMigrations({ project_id: '' })).toEqual([]);
    expect((await repo.listMigrations({ project_id: 'p-demo' })).map((m) => m.uuid)).toEqual(['m1']);
  });
});
