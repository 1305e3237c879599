/**
 * The compute agents of the control-plane benchmark: a ComputeAPI (and InventoryAPI) that
 * answers every migration step with results shaped like a real agent's, after sleeping about
 * as long as the real engine takes, so that the conductor's flows, queues and database work
 * are real while no engine runs. Containers move in the simulated fleet as they would.
 * It also watches the per-host limit: how many migrations it saw on one host at once.
 */
import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../../common/context.js';
import { ContainerNotFound, InvalidInput } from '../../common/errors.js';
import { sleep } from '../../common/sleep.js';
import type { ContainerSpec, HostFacts } from '../../compute/driver.js';
import type { Inventory, InventoryAPI } from '../../compute/inventory.js';
import type { ComputeArgs, ComputeMethod, ComputeResult } from '../../compute/methods.js';
import type { ComputeAPI } from '../../compute/rpcapi.js';
import type { Fleet } from './fleet.js';

/** How long each step takes on the simulated engine, ms (measured orders of the real one for a small container). */
export interface EngineTimings {
  /** check_can_migrate_source / _destination. */
  check: number;
  /** Image present, shell created, channel opened. */
  pre_migration: number;
  /** Freeze, checkpoint and transfer. */
  live_migration: number;
  /** Restore and verify. */
  post_migration: number;
  cleanup: number;
  rollback: number;
  /** A live container list (docker ps) asked by the conductor before a decision. */
  inventory: number;
}

export const REAL_ENGINE_TIMINGS: Readonly<EngineTimings> = {
  check: 20,
  pre_migration: 300,
  live_migration: 400,
  post_migration: 500,
  cleanup: 50,
  rollback: 50,
  inventory: 20,
};

interface InFlight {
  source: string;
  dest: string;
  container: string;
  started: boolean;
}

/** ±10 %: hosts never answer in lockstep. */
function jitter(ms: number): number {
  return ms <= 0 ? 0 : ms * (0.9 + Math.random() * 0.2);
}

function facts(host: string): HostFacts {
  return {
    host,
    architecture: 'x86_64',
    kernel: '6.1.0-27-amd64',
    engine: 'docker',
    engine_version: '20.10.24',
    api_version: '1.41',
    experimental: true,
    criu_version: '4.2',
    criu_ok: true,
    criu_error: null,
    fast_checkpoint: true,
    migration_address: `${host}:9518`,
    free_disk_bytes: 400 * 2 ** 30,
  };
}

/** A container spec about the size of a real one (a web service on the fabric with a volume). */
function spec(id: string, name: string, image: string, memory: number): ContainerSpec {
  return {
    id,
    name,
    image: { id: `sha256:${randomBytes(32).toString('hex')}`, ref: image },
    running: true,
    tty: false,
    privileged: false,
    auto_remove: false,
    network_mode: 'ferry-fabric',
    networks: [{ name: 'ferry-fabric', shared: true, ip: '10.77.3.41', mac: '02:42:0a:4d:03:29', aliases: [name] }],
    volumes: [{ name: `${name}-data`, destination: '/data', driver: 'local', labels: { app: name }, options: {}, read_only: false }],
    binds: [],
    ports: [{ container_port: '8080/tcp', host_ip: '', host_port: '' }],
    devices: [],
    restart_policy: 'unless-stopped',
    memory_bytes_estimate: memory,
    create: {
      Image: image,
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `APP_NAME=${name}`, 'LOG_LEVEL=info', 'LISTEN=0.0.0.0:8080'],
      Cmd: ['/usr/local/bin/app', '--config', '/etc/app/config.yaml'],
      WorkingDir: '/srv',
      Labels: { 'com.example.team': 'shop', 'com.example.tier': 'web', 'org.opencontainers.image.version': '2.3.1' },
      ExposedPorts: { '8080/tcp': {} },
      MacAddress: '02:42:0a:4d:03:29',
      HostConfig: {
        Binds: [`${name}-data:/data`],
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
        Memory: 2 * memory,
        NanoCpus: 1_000_000_000,
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m' } },
      },
      NetworkingConfig: { EndpointsConfig: { 'ferry-fabric': { IPAMConfig: { IPv4Address: '10.77.3.41' }, Aliases: [name] } } },
    },
  };
}

function grant(host: string): { address: string; token: string } {
  return { address: `${host}:9518`, token: randomBytes(24).toString('base64url') };
}

export class FakeCompute implements ComputeAPI, InventoryAPI {
  private readonly t: EngineTimings;
  private readonly flights = new Map<string, InFlight>();
  private readonly busy = new Map<string, number>();
  /** Every call by method, and the most migrations one host had at once (as source or target). */
  readonly calls = new Map<string, number>();
  maxPerHost = 0;
  private halted = false;

  constructor(
    private readonly fleet: Fleet,
    timings: Partial<EngineTimings> = {},
  ) {
    this.t = { ...REAL_ENGINE_TIMINGS, ...timings };
  }

  async inventory(_ctx: RequestContext, host: string): Promise<Inventory> {
    this.count('list_containers');
    const taken_at = new Date().toISOString();
    await sleep(jitter(this.t.inventory));
    return { host, taken_at, containers: this.fleet.containers(host) };
  }

  async call<M extends ComputeMethod>(_ctx: RequestContext, host: string, method: M, raw: ComputeArgs<M>): Promise<ComputeResult<M>> {
    this.count(method);
    // As over the bus: the arguments arrive as JSON, the result leaves as JSON.
    const args = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
    const id = String(args.migration_id);
    const result = await this.answer(host, method, id, args);
    if (this.halted) return new Promise<never>(() => undefined);
    return JSON.parse(JSON.stringify(result)) as ComputeResult<M>;
  }

  /**
   * The engine stops answering: flows still running when a run ends wait for ever instead of
   * writing to a database that is being closed (they are dropped with the run).
   */
  halt(): void {
    this.halted = true;
  }

  private count(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }

  /** A migration occupies its source and target from its first check to its cleanup or rollback. */
  private occupy(id: string, f: InFlight): void {
    if (f.started) return;
    f.started = true;
    for (const h of [f.source, f.dest]) {
      const n = (this.busy.get(h) ?? 0) + 1;
      this.busy.set(h, n);
      if (n > this.maxPerHost) this.maxPerHost = n;
    }
    this.flights.set(id, f);
  }

  private release(id: string): void {
    const f = this.flights.get(id);
    if (!f) return;
    this.flights.delete(id);
    for (const h of [f.source, f.dest]) this.busy.set(h, (this.busy.get(h) ?? 1) - 1);
  }

  private async answer(host: string, method: ComputeMethod | string, id: string, a: Record<string, unknown>): Promise<unknown> {
    const t = this.t;
    switch (method) {
      case 'check_can_migrate_destination': {
        const source = String(a.source_host);
        this.occupy(id, this.flights.get(id) ?? { source, dest: host, container: '', started: false });
        await sleep(jitter(t.check));
        return { dest: facts(host), image_present: a.spec ? Math.random() < 0.8 : null };
      }
      case 'check_can_migrate_source': {
        await sleep(jitter(t.check));
        const c = this.fleet.find(host, String(a.container));
        if (!c) throw new ContainerNotFound(`no container ${String(a.container)} on ${host}`, { container: a.container, host });
        const f = this.flights.get(id);
        if (f) f.container = c.id;
        else this.occupy(id, { source: host, dest: String(a.dest_host), container: c.id, started: false });
        return { source: facts(host), spec: spec(c.id, c.name, c.image, c.memory_bytes), export: grant(host) };
      }
      case 'pre_migration': {
        await sleep(jitter(t.pre_migration));
        const present = Math.random() < 0.8;
        return {
          dest_host: host,
          container_id: randomBytes(32).toString('hex'),
          upload: grant(host),
          image_transferred: !present,
          image_bytes: present ? 0 : 48_000_000,
          image_ms: present ? 0 : 900,
          create_ms: 60,
          connections_preserved: true,
        };
      }
      case 'live_migration': {
        const frozen_at = Date.now();
        await sleep(jitter(t.live_migration));
        const f = this.flights.get(id);
        const mem = (f && this.fleet.find(host, f.container)?.memory_bytes) || 64 * 2 ** 20;
        return {
          container_id: f?.container ?? '',
          checkpoint_name: `ferry-${id}`,
          fast_checkpoint: true,
          frozen_at,
          checkpoint_ms: Math.round(t.live_migration * 0.6),
          transfer_ms: Math.round(t.live_migration * 0.4),
          memory_bytes: mem,
          rootfs_bytes: 40_960,
          volume_bytes: 1_048_576,
          transferred_bytes: mem + 1_089_536,
          parts: [{ part: 'checkpoint', bytes: mem, sha256: randomBytes(32).toString('hex') }],
          mode: 'stop-and-copy',
          page_server: null,
          memory_total_bytes: mem,
        };
      }
      case 'post_migration_at_destination': {
        await sleep(jitter(t.post_migration));
        const f = this.flights.get(id);
        const newId = f ? this.fleet.restoreCopy(host, f.source, f.container, id) : randomBytes(32).toString('hex');
        return {
          container_id: newId,
          running: true,
          restored_at: Date.now(),
          place_ms: 40,
          restore_ms: Math.round(t.post_migration * 0.8),
          garp_sent: true,
          connections_preserved: true,
          post_copy: false,
        };
      }
      case 'cleanup_source': {
        await sleep(jitter(t.cleanup));
        const f = this.flights.get(id);
        const removed = this.fleet.remove(host, String(a.container_id ?? f?.container ?? ''));
        this.release(id);
        return { container_removed: removed, volumes_removed: [] };
      }
      case 'rollback_at_destination':
        await sleep(jitter(t.rollback));
        this.release(id);
        return { container_removed: true, volumes_removed: [], image_removed: false };
      case 'rollback_at_source': {
        await sleep(jitter(t.rollback));
        this.release(id);
        return { container_id: String(a.container_id ?? ''), running: true, from_checkpoint: false, state_kept: true };
      }
      default:
        throw new InvalidInput(`the benchmark's simulated agent has no method ${method}`);
    }
  }
}
