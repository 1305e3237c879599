/**
 * The conductor's RPC client sends each method with the version that brought it: 1.2 only for
 * host maintenance, so that a 1.1 conductor still answers everything else during an upgrade.
 * The bus is replaced by spies on RPCClient (the version is what is checked, not the wire).
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import type { Transport } from '../../../src/bus/transport.js';
import { RequestContext } from '../../../src/common/context.js';
import { CONDUCTOR_METHODS, CONDUCTOR_RPC_VERSION } from '../../../src/conductor/methods.js';
import { ConductorRPCAPI } from '../../../src/conductor/rpcapi.js';

type Sent = { method: string; version: string | undefined; args: Record<string, unknown> };

function spyBus(): Sent[] {
  const sent: Sent[] = [];
  const record = function (this: RPCClient, _ctx: unknown, method: string, args: Record<string, unknown> = {}) {
    sent.push({ method, version: this.target.version, args });
    return Promise.resolve(method.startsWith('list_') ? [] : null);
  };
  jest.spyOn(RPCClient.prototype, 'call').mockImplementation(record as never);
  jest.spyOn(RPCClient.prototype, 'cast').mockImplementation(record as never);
  return sent;
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('ConductorRPCAPI versions', () => {
  it('is capped at 1.4, and every method of the map says when it came', () => {
    expect(CONDUCTOR_RPC_VERSION).toBe('1.4');
    expect(
      Object.entries(CONDUCTOR_METHODS)
        .filter(([, m]) => m.since === '1.2')
        .map(([n]) => n)
        .sort(),
    ).toEqual(['evacuate_host', 'get_evacuation', 'list_evacuations', 'set_host_status']);
    expect(
      Object.entries(CONDUCTOR_METHODS)
        .filter(([, m]) => m.since === '1.3')
        .map(([n]) => n),
    ).toEqual(['force_complete_migration']);
  });

  it('sends 1.3 only for post-copy (a plain migrate stays 1.0, so older conductors still answer it)', async () => {
    const sent = spyBus();
    const api = new ConductorRPCAPI({} as Transport);
    const ctx = new RequestContext();
    await api.migrateContainer(ctx, 'web', null, { post_copy: true });
    await api.forceCompleteMigration(ctx, 'u');
    expect(sent.map((s) => [s.method, s.version])).toEqual([
      ['migrate_container', '1.3'],
      ['force_complete_migration', '1.3'],
    ]);
    expect(sent[0].args).toEqual({ container: 'web', host: null, post_copy: true });
  });

  it('sends 1.4 only with a project scope (an older conductor refuses it rather than reach every project)', async () => {
    const sent = spyBus();
    const api = new ConductorRPCAPI({} as Transport);
    const ctx = new RequestContext();
    await api.migrateContainer(ctx, 'web', 'compute2', { project_id: 'p-demo' });
    await api.listContainers(ctx, { limit: 2, project_id: 'p-demo' });
    await api.migrateContainer(ctx, 'web');
    await api.listContainers(ctx, { limit: 2 });
    expect(sent.map((s) => [s.method, s.version])).toEqual([
      ['migrate_container', '1.4'],
      ['list_containers', '1.4'],
      ['migrate_container', '1.0'],
      ['list_containers', '1.1'],
    ]);
    expect(sent[0].args).toEqual({ container: 'web', host: 'compute2', post_copy: null, project_id: 'p-demo' });
    expect(sent[1].args).toEqual({ limit: 2, project_id: 'p-demo' });
  });

  it('sends 1.2 only with the host-maintenance methods', async () => {
    const sent = spyBus();
    const api = new ConductorRPCAPI({} as Transport);
    const ctx = new RequestContext();
    await api.migrateContainer(ctx, 'web');
    await api.getMigration(ctx, 'u');
    await api.listHosts(ctx);
    await api.listMigrations(ctx, { status: 'completed' });
    await api.setHostStatus(ctx, 'compute2', 'disabled', 'maintenance');
    await api.evacuateHost(ctx, 'compute1', { max_parallel: 2 });
    await api.getEvacuation(ctx, 'e');
    await api.listEvacuations(ctx, { host: 'compute1' });
    expect(sent.map((s) => [s.method, s.version])).toEqual([
      ['migrate_container', '1.0'],
      ['get_migration', '1.0'],
      ['list_hosts', '1.0'],
      ['list_migrations', '1.0'],
      ['set_host_status', '1.2'],
      ['evacuate_host', '1.2'],
      ['get_evacuation', '1.2'],
      ['list_evacuations', '1.2'],
    ]);
    expect(sent[4].args).toEqual({ host: 'compute2', status: 'disabled', disabled_reason: 'maintenance' });
    expect(sent[5].args).toEqual({ host: 'compute1', target_host: null, max_parallel: 2, post_copy: null });
    expect(sent[7].args).toEqual({ host: 'compute1' });
    // What the client sends passes the server's schema.
    for (const s of sent.slice(4)) {
      expect(CONDUCTOR_METHODS[s.method as keyof typeof CONDUCTOR_METHODS].args.safeParse(s.args).success).toBe(true);
    }
  });
});
