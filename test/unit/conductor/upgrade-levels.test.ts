/**
 * Rolling upgrades: the service version history, what `[upgrade_levels] ... = auto|X.Y` stands
 * for, and how the rpcapi clients hold calls to it (RPCVersionCapped names the method and the
 * versions). The bus is replaced by spies on RPCClient: the version sent is what is checked.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { RPCClient } from '../../../src/bus/rpc/client.js';
import type { Transport } from '../../../src/bus/transport.js';
import { requireSendable } from '../../../src/bus/upgrade.js';
import { compareVersions, oldestVersion } from '../../../src/bus/version.js';
import { RequestContext } from '../../../src/common/context.js';
import { ConfigError, InvalidInput, RPCVersionCapped } from '../../../src/common/errors.js';
import { MIN_SUPPORTED_SERVICE_VERSION, rpcVersionOf, SERVICE_VERSION, SERVICE_VERSION_HISTORY } from '../../../src/common/service-version.js';
import { COMPUTE_RPC_VERSION } from '../../../src/compute/methods.js';
import { sendVersion } from '../../../src/compute/rpcapi.js';
import { applyIni, defaultConfig } from '../../../src/conf/index.js';
import { CONDUCTOR_METHODS, CONDUCTOR_RPC_VERSION } from '../../../src/conductor/methods.js';
import type { HostRecord, Repository, ServiceRecord } from '../../../src/conductor/repository.js';
import { ConductorRPCAPI } from '../../../src/conductor/rpcapi.js';
import { ConductorUpgradeState, explicitVersionCap, resolveVersionCap, runningVersions, type RunningServices } from '../../../src/conductor/upgrade.js';
import { getLogger } from '../../../src/common/log.js';
import type { HostState } from '../../../src/objects/host.js';

const NOW = Date.parse('2026-12-07T10:00:00.000Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

function svc(host: string, over: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    binary: 'ferry-compute',
    host,
    topic: 'ferry-compute',
    service_version: SERVICE_VERSION,
    rpc_version: COMPUTE_RPC_VERSION,
    updated_at: ago(1),
    ...over,
  };
}

function host(name: string, updatedSecondsAgo = 1): HostRecord {
  return { name, facts: {} as HostRecord['facts'], containers: 0, updated_at: ago(updatedSecondsAgo), status: 'enabled', disabled_reason: null };
}

function running(services: ServiceRecord[], hosts: HostRecord[] = []): RunningServices {
  return { services, hosts, now: NOW, serviceDownTimeS: 30 };
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('service versions', () => {
  it("this release's entry speaks the RPC versions the code declares; version 1 (before records) stays known", () => {
    expect(SERVICE_VERSION).toBe(SERVICE_VERSION_HISTORY.length - 1);
    expect(SERVICE_VERSION_HISTORY[SERVICE_VERSION]).toEqual({ compute_rpc: COMPUTE_RPC_VERSION, conductor_rpc: CONDUCTOR_RPC_VERSION });
    expect(MIN_SUPPORTED_SERVICE_VERSION).toBeLessThanOrEqual(SERVICE_VERSION);
    expect(rpcVersionOf('ferry-compute', 1)).toBe('1.2');
    expect(rpcVersionOf('ferry-conductor', 1)).toBe('1.4');
    expect(rpcVersionOf('ferry-compute', 0)).toBeNull();
    expect(rpcVersionOf('ferry-compute', SERVICE_VERSION + 1)).toBeNull();
  });

  it('orders versions by number, not by text', () => {
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareVersions('1.2', '1.2.0')).toBe(0);
    expect(oldestVersion(['1.10', '1.2', '1.9'])).toBe('1.2');
    expect(oldestVersion([])).toBeUndefined();
  });

  it("a heartbeat may carry versions; bad ones are refused with what to send (report_state's schema)", () => {
    const base: HostState = {
      docker_version: '20.10',
      api_version: '1.41',
      criu_version: null,
      criu_ok: false,
      architecture: 'x86_64',
      migration_address: 'x:1',
      containers: [],
    };
    const check = (state: HostState) => () => {
      const r = CONDUCTOR_METHODS.report_state.args.safeParse({ host: 'h', state });
      if (!r.success) throw new InvalidInput(r.error.issues[0].message);
    };
    expect(check(base)).not.toThrow();
    expect(check({ ...base, service_version: 2, rpc_version: '1.2' })).not.toThrow();
    expect(check({ ...base, service_version: 0 })).toThrow(/service_version must be a positive integer/);
    expect(check({ ...base, service_version: '2' as never })).toThrow(/service_version must be a positive integer/);
    expect(check({ ...base, rpc_version: 'one' })).toThrow(/rpc_version "one" is not a version/);
    expect(check({ ...base, rpc_version: 12 as never })).toThrow(/rpc_version must be a version string/);
  });
});

describe('[upgrade_levels] options', () => {
  it('default to auto; take auto (any case) or X.Y; refuse anything else naming the option', () => {
    expect(defaultConfig().upgrade_levels).toEqual({ compute: 'auto', conductor: 'auto' });
    expect(applyIni(defaultConfig(), '[upgrade_levels]\ncompute = 1.1\nconductor = AUTO\n', 'f').upgrade_levels).toEqual({ compute: '1.1', conductor: 'auto' });
    expect(() => applyIni(defaultConfig(), '[upgrade_levels]\ncompute = juno\n', 'f')).toThrow(ConfigError);
    expect(() => applyIni(defaultConfig(), '[upgrade_levels]\nconductor = 1\n', 'f')).toThrow(
      /\[upgrade_levels\] conductor: "1" is neither auto nor a version/,
    );
  });
});

describe('the version auto stands for', () => {
  it('is the lowest RPC version of the running services of the topic', () => {
    const r = running([svc('c1'), svc('c2', { rpc_version: '1.1' }), svc('ctl', { binary: 'ferry-conductor', topic: 'ferry-conductor', rpc_version: '1.3' })]);
    expect(resolveVersionCap('auto', 'ferry-compute', r)).toBe('1.1');
    expect(resolveVersionCap('auto', 'ferry-conductor', r)).toBe('1.3');
  });

  it('leaves out services that stopped refreshing their record (down)', () => {
    const r = running([svc('c1'), svc('old', { rpc_version: '1.0', updated_at: ago(31) })]);
    expect(resolveVersionCap('auto', 'ferry-compute', r)).toBe(COMPUTE_RPC_VERSION);
  });

  it('counts an up host without a record as an agent of the release before service versions', () => {
    const r = running([svc('c1')], [host('c1'), host('c2'), host('gone', 60)]);
    expect([...runningVersions('ferry-compute', r)]).toEqual([
      ['ferry-compute c1', COMPUTE_RPC_VERSION],
      ['ferry-compute c2', rpcVersionOf('ferry-compute', 1)],
    ]);
  });

  it("takes a record without an RPC version at its service version's, and ignores versions this code does not know", () => {
    const r = running([svc('c1', { rpc_version: null, service_version: 1 }), svc('c2', { rpc_version: null, service_version: 99 })]);
    expect([...runningVersions('ferry-compute', r).values()]).toEqual(['1.2']);
  });

  it('is no cap when nothing runs (today behaviour), and an explicit X.Y is taken as it is', () => {
    expect(resolveVersionCap('auto', 'ferry-compute', running([]))).toBeUndefined();
    expect(resolveVersionCap('1.0', 'ferry-compute', running([svc('c1')]))).toBe('1.0');
    expect(explicitVersionCap('auto')).toBeUndefined();
    expect(explicitVersionCap('1.3')).toBe('1.3');
  });
});

describe('the conductor keeps its record and the compute cap', () => {
  function fakeRepo(services: ServiceRecord[], hosts: HostRecord[]) {
    const saved: { rec: Omit<ServiceRecord, 'updated_at'>; at: string }[] = [];
    const repo = {
      saveService: (rec: Omit<ServiceRecord, 'updated_at'>, at: string) => {
        saved.push({ rec, at });
        return Promise.resolve();
      },
      listServices: () => Promise.resolve(services.map((s) => ({ ...s, updated_at: new Date().toISOString() }))),
      listHostRecords: () => Promise.resolve(hosts.map((h) => ({ ...h, updated_at: new Date().toISOString() }))),
    } as unknown as Repository;
    return { repo, saved };
  }
  const opts = { host: 'ctl1', rpcVersion: CONDUCTOR_RPC_VERSION, serviceDownTimeS: 30, intervalS: 60 };

  it('records itself and resolves auto from the agents', async () => {
    const { repo, saved } = fakeRepo([svc('c1', { rpc_version: '1.1' })], [host('c1'), host('c2')]);
    const state = new ConductorUpgradeState(repo, { ...opts, computeLevel: 'auto' }, getLogger('test'));
    expect(state.computeCap()).toBeUndefined();
    await state.refresh();
    expect(saved.map((s) => s.rec)).toEqual([
      { binary: 'ferry-conductor', host: 'ctl1', topic: 'ferry-conductor', service_version: SERVICE_VERSION, rpc_version: CONDUCTOR_RPC_VERSION },
    ]);
    expect(state.computeCap()).toBe('1.1');
  });

  it('keeps an explicit cap whatever the agents report', async () => {
    const { repo } = fakeRepo([svc('c1', { rpc_version: '1.1' })], []);
    const state = new ConductorUpgradeState(repo, { ...opts, computeLevel: '1.0' }, getLogger('test'));
    expect(state.computeCap()).toBe('1.0');
    await state.refresh();
    expect(state.computeCap()).toBe('1.0');
  });
});

describe('compute calls under a cap', () => {
  const liveArgs = (mode: 'stop-and-copy' | 'post-copy' | null) => ({ migration_id: 'm1', upload: { address: 'a:1', token: 't'.repeat(16) }, mode });
  const pageServer = (withTunnel: boolean) => ({
    migration_id: 'm1',
    page_server: { address: '10.0.0.1', port: 27, ...(withTunnel ? { host: 'c2', token: 'a'.repeat(64) } : {}) },
  });

  it("go out at this code's version with no cap, or a cap at or above it (as before upgrade levels)", () => {
    expect(sendVersion('live_migration', liveArgs('post-copy'), undefined)).toBe(COMPUTE_RPC_VERSION);
    expect(sendVersion('post_migration_at_destination', pageServer(true), COMPUTE_RPC_VERSION)).toBe(COMPUTE_RPC_VERSION);
    expect(sendVersion('post_copy_status', { migration_id: 'm1' }, '1.9')).toBe(COMPUTE_RPC_VERSION);
  });

  it('go out at the cap when what they use fits in it', () => {
    expect(sendVersion('live_migration', liveArgs('stop-and-copy'), '1.0')).toBe('1.0');
    expect(sendVersion('live_migration', liveArgs('post-copy'), '1.1')).toBe('1.1');
    expect(sendVersion('post_migration_at_destination', pageServer(false), '1.1')).toBe('1.1');
    expect(sendVersion('check_can_migrate_source', { migration_id: 'm1', container: 'web', dest_host: 'c2' }, '1.0')).toBe('1.0');
  });

  it('fail with RPCVersionCapped naming the method and versions when they need more', () => {
    let err: unknown;
    try {
      sendVersion('post_migration_at_destination', pageServer(true), '1.1');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RPCVersionCapped);
    expect((err as InstanceType<typeof RPCVersionCapped>).details).toEqual({
      topic: 'ferry-compute',
      method: 'post_migration_at_destination',
      needed: '1.2',
      cap: '1.1',
    });
    expect((err as Error).message).toMatch(
      /ferry-compute method post_migration_at_destination needs RPC version 1\.2, but this service may send at most 1\.1 \(\[upgrade_levels\] compute\)/,
    );
    expect(() => sendVersion('post_copy_status', { migration_id: 'm1' }, '1.0')).toThrow(/post_copy_status needs RPC version 1\.1/);
    expect(() => sendVersion('live_migration', liveArgs('post-copy'), '1.0')).toThrow(RPCVersionCapped);
  });

  it('requireSendable lets anything through without a cap', () => {
    expect(() => requireSendable('ferry-conductor', 'x', '9.9', undefined)).not.toThrow();
    expect(() => requireSendable('ferry-conductor', 'x', '1.4', '1.4')).not.toThrow();
    expect(() => requireSendable('ferry-conductor', 'x', '2.0', '1.4')).toThrow(RPCVersionCapped);
  });
});

describe('conductor calls under a cap', () => {
  function spyBus(): string[] {
    const sent: string[] = [];
    const record = function (this: RPCClient, _ctx: unknown, method: string) {
      sent.push(`${method}@${this.target.version}`);
      return Promise.resolve(method.startsWith('list_') ? [] : null);
    };
    jest.spyOn(RPCClient.prototype, 'call').mockImplementation(record as never);
    jest.spyOn(RPCClient.prototype, 'cast').mockImplementation(record as never);
    return sent;
  }

  it('a 1.2 cap lets host maintenance through and refuses post-copy and project scopes, sending nothing for them', async () => {
    const sent = spyBus();
    const api = new ConductorRPCAPI({} as Transport, 60, '1.2');
    const ctx = new RequestContext();
    await api.migrateContainer(ctx, 'web');
    await api.setHostStatus(ctx, 'c1', 'disabled', 'why');
    await expect(api.migrateContainer(ctx, 'web', null, { post_copy: true })).rejects.toThrow(
      /ferry-conductor method migrate_container needs RPC version 1\.3, but this service may send at most 1\.2/,
    );
    await expect(api.forceCompleteMigration(ctx, 'u')).rejects.toBeInstanceOf(RPCVersionCapped);
    await expect(api.listContainers(ctx, { project_id: 'p' })).rejects.toMatchObject({ details: { method: 'list_containers', needed: '1.4', cap: '1.2' } });
    expect(sent).toEqual(['migrate_container@1.0', 'set_host_status@1.2']);
  });

  it('without a cap every method goes out as before', async () => {
    const sent = spyBus();
    const api = new ConductorRPCAPI({} as Transport);
    const ctx = new RequestContext();
    await api.migrateContainer(ctx, 'web', null, { project_id: 'p' });
    await api.forceCompleteMigration(ctx, 'u');
    await api.reportState(ctx, 'c1', { containers: [] } as unknown as HostState, ago(0));
    expect(sent).toEqual(['migrate_container@1.4', 'force_complete_migration@1.3', 'report_state@1.1']);
  });
});
