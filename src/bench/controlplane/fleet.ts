/**
 * The simulated compute fleet of the control-plane benchmark: hosts with containers and memory,
 * shaped like real ones (64-hex IDs, a few images, most containers running, memory of a few MB
 * to a few GB), kept up to date as fake migrations move containers. It answers what agents
 * tell the conductor: the heartbeat's state (report_state) and the live inventory.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerSummary, HostState } from '../../objects/host.js';

export interface FleetOptions {
  hosts: number;
  containersPerHost: number;
  /** Share of the containers that are not running (exited), as on real hosts. */
  stoppedShare?: number;
  /** Seed of the pseudo-random shape, so that two runs see the same fleet. */
  seed?: number;
}

export interface FleetContainer extends ContainerSummary {
  memory_bytes: number;
}

interface FleetHost {
  name: string;
  total_bytes: number;
  containers: Map<string, FleetContainer>;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const IMAGES = ['nginx:1.27', 'redis:7.4', 'postgres:16', 'registry.local/shop/api:2.3.1', 'registry.local/shop/worker:2.3.1', 'busybox:1.36'];

/** A small deterministic generator (mulberry32): the fleet's shape must not change between runs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function hostName(i: number): string {
  return `compute-${String(i + 1).padStart(4, '0')}`;
}

export class Fleet {
  readonly hosts: FleetHost[] = [];
  private readonly byName = new Map<string, FleetHost>();
  private readonly random: () => number;

  constructor(readonly opts: FleetOptions) {
    this.random = rng(opts.seed ?? 13);
    const stopped = opts.stoppedShare ?? 0.1;
    for (let i = 0; i < opts.hosts; i++) {
      // Three sizes of machine, so that the memory share differs from the bytes used.
      const total = [64, 128, 256][Math.floor(this.random() * 3)] * GiB;
      const h: FleetHost = { name: hostName(i), total_bytes: total, containers: new Map() };
      for (let j = 0; j < opts.containersPerHost; j++) {
        const c = this.newContainer(`app-${i + 1}-${j + 1}`, this.random() < stopped ? 'exited' : 'running');
        h.containers.set(c.id, c);
      }
      this.hosts.push(h);
      this.byName.set(h.name, h);
    }
  }

  private newContainer(name: string, status: string, memory?: number): FleetContainer {
    // Memory from 16 MB to about 4 GB, most of it small (log-uniform).
    const mem = memory ?? Math.round(16 * MiB * Math.pow(256, this.random()));
    return { id: randomBytes(32).toString('hex'), name, image: IMAGES[Math.floor(this.random() * IMAGES.length)], status, memory_bytes: mem };
  }

  host(name: string): FleetHost {
    const h = this.byName.get(name);
    if (!h) throw new Error(`no host ${name} in the simulated fleet`);
    return h;
  }

  /** The containers as an engine lists them (what a heartbeat and a live inventory carry). */
  containers(host: string): ContainerSummary[] {
    return [...this.host(host).containers.values()].map(({ id, name, image, status }) => ({ id, name, image, status }));
  }

  find(host: string, ref: string): FleetContainer | undefined {
    const h = this.host(host);
    return h.containers.get(ref) ?? [...h.containers.values()].find((c) => c.name === ref || c.id.startsWith(ref));
  }

  /** The heartbeat of one host, as the real agent builds it (src/compute/manager.ts hostState). */
  state(host: string): HostState {
    const h = this.host(host);
    let used = 0;
    for (const c of h.containers.values()) if (c.status === 'running') used += c.memory_bytes;
    return {
      docker_version: '20.10.24',
      api_version: '1.41',
      criu_version: '4.2',
      criu_ok: true,
      architecture: 'x86_64',
      migration_address: `${host}:9518`,
      containers: this.containers(host),
      memory_used_bytes: used,
      memory_total_bytes: h.total_bytes,
    };
  }

  /** Running containers, up to `n`, drawn over all hosts (the burst's migrate requests). */
  pickRunning(n: number): { host: string; id: string }[] {
    const all: { host: string; id: string }[] = [];
    for (const h of this.hosts) for (const c of h.containers.values()) if (c.status === 'running') all.push({ host: h.name, id: c.id });
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [all[i], all[j]] = [all[j], all[i]];
    }
    return all.slice(0, n);
  }

  /** The target restored a copy (post_migration): a new container there with the same name and memory. */
  restoreCopy(target: string, source: string, sourceId: string, migrationId: string): string {
    const orig = this.find(source, sourceId);
    const copy = this.newContainer(orig?.name ?? `restored-${migrationId.slice(0, 8)}`, 'running', orig?.memory_bytes);
    this.host(target).containers.set(copy.id, copy);
    return copy.id;
  }

  /** The source removed its stopped original (cleanup_source). */
  remove(host: string, id: string): boolean {
    return this.host(host).containers.delete(id);
  }
}
