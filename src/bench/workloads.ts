/**
 * The workloads: plain data, so a new one is one more entry in WORKLOADS (a probe kind, an
 * image, a port, and for Redis the number of keys DEBUG POPULATE loads).
 */
import type { Workload } from './types.js';

const MB = 1_000_000;

function redis(keys: number, name: string, label: string, approxBytes: number, heavy = false): Workload {
  return { name, label, image: 'ferry/redis:latest', env: {}, port: 6379, probe: 'redis', keys, approxBytes, heavy };
}

export const WORKLOADS: Workload[] = [
  {
    name: 'counter',
    label: 'counter (busybox loop + httpd)',
    image: 'ferry/counter:latest',
    env: { COUNTER_INTERVAL: '0.1' },
    port: 8080,
    probe: 'http',
    keys: 0,
    approxBytes: 1 * MB,
    heavy: false,
  },
  redis(100_000, 'redis-100k', 'Redis 100k keys', 20 * MB),
  redis(1_000_000, 'redis-1m', 'Redis 1M keys', 180 * MB),
  redis(3_000_000, 'redis-3m', 'Redis 3M keys', 550 * MB, true),
  // The 1 GB class: where stop-and-copy's pause is longest and post-copy's stays flat.
  redis(10_000_000, 'redis-10m', 'Redis 10M keys', 1800 * MB, true),
];

export const QUICK_WORKLOADS = ['counter', 'redis-100k'];

export function findWorkloads(names: string[]): Workload[] {
  return names.map((n) => {
    const w = WORKLOADS.find((x) => x.name === n);
    if (!w) throw new Error(`unknown workload ${n} (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
    return w;
  });
}
