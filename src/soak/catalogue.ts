/**
 * The faults the soak injects: the rows of the fault matrix (test/integration/faults/matrix.test.ts,
 * README's "Faults survived" table) whose outcome is pinned, each with the faults to arm, the window
 * it waits for, what it does there and the outcome the table pins — with source and target standing
 * for compute1 and compute2, since the soak moves its containers both ways. Left out: the target's
 * Docker engine stopped (it stops every container on that engine, the soak's other workloads too)
 * and the abort racing completion (its outcome is "whichever wins"). Post-copy migrations get only
 * the faults that land before the freeze, where the mode makes no difference; the table pins the
 * others for stop-and-copy. And the plan: every choice drawn from the seeded generator.
 */
import type { Faults } from '../compute/faults.js';
import type { Rng } from './prng.js';
import type { Expected, HostName } from './verdict.js';

export type Mode = 'stop-and-copy' | 'post-copy';
export type WorkloadKind = 'counter' | 'redis' | 'stream';
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['counter', 'redis', 'stream'];

/** When the action happens: as soon as the migration reaches this point (then a random wait). */
export type Window = 'start' | 'preparing' | 'running' | 'bytes' | 'restoring' | 'running-on-target';

export type Action =
  | 'none'
  | 'kill-source-agent'
  | 'kill-target-agent'
  | 'kill-conductor'
  | 'close-amqp'
  | 'restart-rabbit'
  | 'keystone-down'
  | 'abort-accepted'
  | 'abort-refused'
  | 'name-clash'
  | 'disk-full';

export interface FaultKind {
  id: string;
  /** The matrix row: its fault and phase columns. */
  fault: string;
  phase: string;
  arm: (source: HostName, target: HostName) => Partial<Record<HostName, Faults>>;
  window: Window;
  action: Action;
  /** The random wait after the window opened is drawn from [0, jitterMaxMs]. */
  jitterMaxMs: number;
  expected: (source: HostName, target: HostName) => Expected;
  modes: readonly Mode[];
}

const SC: readonly Mode[] = ['stop-and-copy'];
const BOTH: readonly Mode[] = ['stop-and-copy', 'post-copy'];
const on = (h: HostName, f: Faults): Partial<Record<HostName, Faults>> => ({ [h]: f });
const completed = (_s: HostName, t: HostName): Expected => ({ status: 'completed', host: t });
const rolledBack = (s: HostName): Expected => ({ status: 'failed', host: s });

export const NO_FAULT: FaultKind = {
  id: 'none',
  fault: 'none',
  phase: '-',
  arm: () => ({}),
  window: 'start',
  action: 'none',
  jitterMaxMs: 0,
  expected: completed,
  modes: BOTH,
};

export const FAULTS: readonly FaultKind[] = [
  {
    id: 'src-kill-checkpoint',
    fault: 'source agent SIGKILL',
    phase: 'checkpoint',
    arm: (s) => on(s, { delayBeforeCheckpointMs: 4000 }),
    window: 'running',
    action: 'kill-source-agent',
    jitterMaxMs: 2000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'src-kill-transfer',
    fault: 'source agent SIGKILL',
    phase: 'transfer',
    arm: (s) => on(s, { throttleTransferBytesPerSec: 2_000_000 }),
    window: 'bytes',
    action: 'kill-source-agent',
    jitterMaxMs: 300,
    expected: completed,
    modes: SC,
  },
  // The table pins two outcomes here: failed in every run so far, completed when the kill lands after the last part.
  {
    id: 'dst-kill-transfer',
    fault: 'target agent SIGKILL',
    phase: 'transfer',
    arm: (s) => on(s, { throttleTransferBytesPerSec: 2_000_000 }),
    window: 'bytes',
    action: 'kill-target-agent',
    jitterMaxMs: 300,
    expected: () => ({ status: ['failed', 'completed'] }),
    modes: SC,
  },
  {
    id: 'dst-kill-after-restore',
    fault: 'target agent SIGKILL',
    phase: 'after restore, before reply',
    arm: (_s, t) => on(t, { delayAfterRestoreMs: 6000 }),
    window: 'running-on-target',
    action: 'kill-target-agent',
    jitterMaxMs: 2000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'amqp-checkpoint',
    fault: 'RabbitMQ connections closed',
    phase: 'checkpoint',
    arm: (s) => on(s, { delayBeforeCheckpointMs: 3000 }),
    window: 'running',
    action: 'close-amqp',
    jitterMaxMs: 2000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'amqp-transfer',
    fault: 'RabbitMQ connections closed',
    phase: 'transfer',
    arm: (s) => on(s, { delayAfterCheckpointMs: 3000 }),
    window: 'running',
    action: 'close-amqp',
    jitterMaxMs: 2000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'amqp-restore',
    fault: 'RabbitMQ connections closed',
    phase: 'restore',
    arm: (_s, t) => on(t, { delayBeforeRestoreMs: 3000 }),
    window: 'restoring',
    action: 'close-amqp',
    jitterMaxMs: 2000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'rabbit-restart',
    fault: 'RabbitMQ restarted',
    phase: 'transfer',
    arm: (s) => on(s, { delayAfterCheckpointMs: 8000 }),
    window: 'running',
    action: 'restart-rabbit',
    jitterMaxMs: 1000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'conductor-pre',
    fault: 'conductor SIGKILL',
    phase: 'pre-migrating',
    arm: (_s, t) => on(t, { delayPreMigrationMs: 5000 }),
    window: 'preparing',
    action: 'kill-conductor',
    jitterMaxMs: 3000,
    expected: completed,
    modes: BOTH,
  },
  {
    id: 'conductor-running',
    fault: 'conductor SIGKILL',
    phase: 'running',
    arm: (s) => on(s, { delayAfterCheckpointMs: 5000 }),
    window: 'running',
    action: 'kill-conductor',
    jitterMaxMs: 3000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'conductor-post',
    fault: 'conductor SIGKILL',
    phase: 'post-migrating',
    arm: (_s, t) => on(t, { delayBeforeRestoreMs: 5000 }),
    window: 'restoring',
    action: 'kill-conductor',
    jitterMaxMs: 3000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'keystone-down',
    fault: 'Keystone down',
    phase: 'transfer',
    arm: (s) => on(s, { delayAfterCheckpointMs: 5000 }),
    window: 'running',
    action: 'keystone-down',
    jitterMaxMs: 2000,
    expected: completed,
    modes: SC,
  },
  {
    id: 'truncated',
    fault: 'truncated stream',
    phase: 'transfer',
    arm: (s) => on(s, { truncateTransfer: true }),
    window: 'start',
    action: 'none',
    jitterMaxMs: 0,
    expected: rolledBack,
    modes: SC,
  },
  {
    id: 'corrupted',
    fault: 'corrupted stream',
    phase: 'transfer',
    arm: (s) => on(s, { corruptTransfer: true }),
    window: 'start',
    action: 'none',
    jitterMaxMs: 0,
    expected: rolledBack,
    modes: SC,
  },
  {
    id: 'restore-refused',
    fault: 'restore refused by CRIU on the target',
    phase: 'restore',
    arm: (_s, t) => on(t, { failRestore: true }),
    window: 'start',
    action: 'none',
    jitterMaxMs: 0,
    expected: rolledBack,
    modes: SC,
  },
  {
    id: 'disk-full',
    fault: 'target disk full',
    phase: 'transfer',
    arm: () => ({}),
    window: 'start',
    action: 'disk-full',
    jitterMaxMs: 0,
    expected: rolledBack,
    modes: SC,
  },
  {
    id: 'name-clash',
    fault: 'name clash on the target',
    phase: 'pre-checks',
    arm: () => ({}),
    window: 'start',
    action: 'name-clash',
    jitterMaxMs: 0,
    expected: rolledBack,
    modes: BOTH,
  },
  {
    id: 'abort-running',
    fault: 'abort requested',
    phase: 'running (checkpoint held)',
    arm: (s) => on(s, { delayAfterCheckpointMs: 5000 }),
    window: 'running',
    action: 'abort-accepted',
    jitterMaxMs: 2000,
    expected: (s) => ({ status: 'cancelled', host: s }),
    modes: SC,
  },
  {
    id: 'abort-late',
    fault: 'abort requested',
    phase: 'post-migrating (restore held)',
    arm: (_s, t) => on(t, { delayBeforeRestoreMs: 4000 }),
    window: 'restoring',
    action: 'abort-refused',
    jitterMaxMs: 1500,
    expected: completed,
    modes: SC,
  },
];

export function faultById(id: string): FaultKind {
  const f = id === NO_FAULT.id ? NO_FAULT : FAULTS.find((x) => x.id === id);
  if (!f) throw new Error(`unknown fault ${id}`);
  return f;
}

export interface Step {
  /** 1-based. */
  n: number;
  workload: WorkloadKind;
  mode: Mode;
  fault: FaultKind;
  /** The wait after the window opened, ms. */
  jitterMs: number;
}

export interface PlanOptions {
  migrations: number;
  seed: number;
  /** Share of migrations that get a fault, 0..1. */
  faultRate: number;
  /** Whether both hosts offer post-copy (else every migration is stop-and-copy). */
  postCopy: boolean;
  workloads?: readonly WorkloadKind[];
  /** Only these faults (ids); default all. */
  faults?: readonly string[];
}

/** The whole run's choices, from the seed alone (so `--seed` replays them). */
export function planSoak(o: PlanOptions, rng: Rng): Step[] {
  const kinds = o.workloads ?? WORKLOAD_KINDS;
  const pool = o.faults ? o.faults.map(faultById).filter((f) => f !== NO_FAULT) : FAULTS;
  const steps: Step[] = [];
  for (let n = 1; n <= o.migrations; n++) {
    const workload = rng.pick(kinds);
    // A third post-copy: the table pins most faults for stop-and-copy only.
    const mode: Mode = o.postCopy && rng.next() < 1 / 3 ? 'post-copy' : 'stop-and-copy';
    const faulted = rng.next() < o.faultRate;
    const fits = pool.filter((f) => f.modes.includes(mode));
    const fault = faulted && fits.length > 0 ? rng.pick(fits) : NO_FAULT;
    const jitterMs = fault.jitterMaxMs > 0 ? rng.int(0, fault.jitterMaxMs) : 0;
    steps.push({ n, workload, mode, fault, jitterMs });
  }
  return steps;
}
