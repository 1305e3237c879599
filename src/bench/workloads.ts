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

function postgres(scale: number, name: string, label: string, approxBytes: number, heavy: boolean): Workload {
  return { name, label, image: 'ferry/postgres:15', env: {}, port: 5432, probe: 'client', keys: 0, approxBytes, heavy, client: 'pgbench', scale };
}

// Each line a client sends is appended to a file in the writable layer and to one in a named
// local volume, then echoed back: the echo acknowledges both writes.
const APPENDER = 'while read -r l; do echo "$l" >> /layer/appended; echo "$l" >> /vol/appended; echo "$l"; done';

export const SERVICE_WORKLOADS: Workload[] = [
  // PostgreSQL 15 as postgres, its table files in the writable layer, under pgbench.
  postgres(20, 'postgres', 'PostgreSQL 15, pgbench -s 20 (~300 MB)', 300 * MB, false),
  postgres(200, 'postgres-3g', 'PostgreSQL 15, pgbench -s 200 (~3 GB)', 3000 * MB, true),
  {
    name: 'append',
    label: 'appends to a file in the layer and in a local volume',
    image: 'ferry/stream:latest',
    env: {},
    port: 7000,
    probe: 'client',
    keys: 0,
    approxBytes: 120 * MB,
    heavy: false,
    client: 'append',
    cmd: ['sh', '-c', `mkdir -p /layer && printf '%s\\n' '${APPENDER}' > /bin/appender && chmod +x /bin/appender && exec nc -ll -p PORT -e /bin/appender`],
    volume: '/vol',
  },
];

WORKLOADS.push(...SERVICE_WORKLOADS);

export const QUICK_WORKLOADS = ['counter', 'redis-100k'];

export function findWorkloads(names: string[]): Workload[] {
  return names.map((n) => {
    const w = WORKLOADS.find((x) => x.name === n);
    if (!w) throw new Error(`unknown workload ${n} (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
    return w;
  });
}
