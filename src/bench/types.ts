/** Shared shapes of the benchmark: workloads, methods, one run's result. */

/** 'client': the workload's own client (service-clients.ts) measures the pauses and keeps the evidence. */
export type ProbeKind = 'http' | 'redis' | 'client';

/** The services' own clients (src/bench/service-clients.ts). */
export type ServiceClientKind = 'pgbench' | 'append';

/** One workload the benchmark knows; later ones are added to the list in workloads.ts. */
export interface Workload {
  name: string; // CLI name, e.g. redis-1m
  label: string; // human label, e.g. "Redis 1M keys"
  image: string; // Docker image on compute1
  env: Record<string, string>;
  port: number; // what the probe asks, inside the container
  probe: ProbeKind;
  /** Redis: keys loaded with DEBUG POPULATE before the migration. */
  keys: number;
  /** Rough memory of the process, for ordering only (the measured image size is what the chart uses). */
  approxBytes: number;
  /** Heavy workloads may get fewer runs (see --runs-heavy). */
  heavy: boolean;
  /** Services: the client that loads the workload, times its pauses and checks every acknowledged write. */
  client?: ServiceClientKind;
  /** pgbench: the scale of `pgbench -i` (20: ~300 MB, 200: ~3 GB of table files in the writable layer). */
  scale?: number;
  /** The container's command instead of the image's, with PORT replaced by the port it listens on. */
  cmd?: string[];
  /** Mount point of a named local volume the workload writes to (it moves with the container). */
  volume?: string;
}

export type MethodName =
  'ferry-rest' | 'ferry-rest-postcopy' | 'ferry-engine' | 'ferry-engine-fast' | 'ferry-postcopy' | 'docker-manual' | 'podman' | 'raw-criu' | 'raw-criu-lazy';

export interface ProbeSample {
  /** Epoch ms when the answer (or failure) arrived. */
  t: number;
  ok: boolean;
  /** The answer (counter value, Redis reply) or the error code. */
  v: string;
}

export interface DowntimeResult {
  downtime_ms: number;
  last_before: number;
  first_after: number;
}

/** One migration of one workload by one method. */
export interface RunResult {
  method: MethodName;
  workload: string;
  run: number;
  ok: boolean;
  error: string | null;
  /** Client-observed: gap between the last answer before the freeze and the first after the restore. */
  downtime_ms: number | null;
  /** What the tool itself reports as frozen time (Ferry: freeze_ms), when it reports one. */
  tool_freeze_ms: number | null;
  total_ms: number | null;
  checkpoint_ms: number | null;
  transfer_ms: number | null;
  restore_ms: number | null;
  /** Size of the checkpoint (CRIU images) on disk. */
  memory_bytes: number | null;
  /** Bytes moved between the hosts (checkpoint, rootfs, image...). */
  transferred_bytes: number | null;
  /** The workload's state went on (Redis marker key and DBSIZE, counter read from the process); null = not judged. */
  verified: boolean | null;
  /** The downtime is the client probe's (false: measured another way, see detail.downtime_measured_by). */
  probed: boolean;
  /** 1, or 2 for a retry (the first try is then its own result). */
  attempt: number;
  /** Failed tries before this one (flattened into the results by allTries before the report). */
  earlier_tries?: RunResult[];
  probe: { answers: number; failures: number; answers_after: number };
  detail: Record<string, number | string | boolean | null>;
}

export interface Stat {
  n: number;
  median: number | null;
  min: number | null;
  max: number | null;
  /** (max - min) / 2: half the range, a small-sample spread. */
  spread: number | null;
}
