/**
 * The soak on the development cloud: the seeded plan (catalogue.ts) carried out migration by
 * migration through the REST API — arm the faults, start the migration, wait for its window and a
 * random moment in it, break something, wait for the end — and the invariant judged after each
 * (verdict.ts), one row per migration.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../common/sleep.js';
import { loadCloud } from '../bench/cloud.js';
import { run as runCmd } from '../devcloud/proc.js';
import { startKeystone, stopKeystone } from '../devcloud/keystone.js';
import { rabbitctl, startRabbit, stopRabbit } from '../devcloud/rabbit.js';
import type { ComputeHost } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import { planSoak, type FaultKind, type Mode, type PlanOptions, type Step, type WorkloadKind } from './catalogue.js';
import { copyState, ensureImage, killService, leftoversOf, useFaults } from './cloud.js';
import { engineOf, removeQuietly } from './docker.js';
import { mulberry32 } from './prng.js';
import { newSubject, type SoakEnv, type Subject } from './subjects.js';
import { classify, HOSTS, onlyRunning, otherHost, unmet, type HostName, type Outcome, type Verdict } from './verdict.js';

export interface Row {
  n: number;
  workload: WorkloadKind;
  mode: Mode;
  fault: string;
  phase: string;
  jitter_ms: number;
  from: HostName;
  to: HostName;
  expected: string;
  status: string;
  /** Where it runs after: a host, or what each host holds. */
  runs_on: string;
  outcome: Outcome | 'error';
  /** The final status and host are the pinned ones, and nothing was left behind. */
  as_pinned: boolean;
  problems: string[];
  ms: number;
  migration: string | null;
}

export interface Counts {
  migrations: number;
  faults: number;
  lost: number;
  duplicated: number;
  /** Ended otherwise than the table pins (status, host, leftovers), though nothing was lost. */
  unexpected: number;
  /** The soak itself could not carry the step out (a migration refused, a window never reached...). */
  errors: number;
}

export function countRows(rows: readonly Row[]): Counts {
  return {
    migrations: rows.length,
    faults: rows.filter((r) => r.fault !== 'none').length,
    lost: rows.filter((r) => r.outcome === 'lost').length,
    duplicated: rows.filter((r) => r.outcome === 'duplicated').length,
    unexpected: rows.filter((r) => r.outcome === 'ok' && !r.as_pinned).length,
    errors: rows.filter((r) => r.outcome === 'error').length,
  };
}

/** Non-zero when anything was lost or duplicated, ended otherwise than pinned, or could not be run. */
export function exitCode(c: Counts): number {
  return c.lost + c.duplicated + c.unexpected + c.errors > 0 ? 1 : 0;
}

/** A migration's row from what it left (pure: the unit tests feed it fakes). */
export function judge(
  step: Step,
  from: HostName,
  m: Pick<Migration, 'uuid' | 'status' | 'source_host' | 'dest_host'>,
  v: Verdict,
  extra: string[],
  ms: number,
): Row {
  const to = otherHost(from);
  const expected = step.fault.expected(from, to);
  const statuses = Array.isArray(expected.status) ? expected.status : [expected.status];
  const problems = [...unmet(m, v, expected), ...extra];
  return {
    ...rowHead(step, from),
    expected: `${statuses.join(' or ')}${expected.host ? ` on ${expected.host}` : ''}`,
    status: `${v.status}${v.phase ? ` (${v.phase})` : ''}`,
    runs_on: v.where ?? `none single (compute1 ${v.copies.compute1}, compute2 ${v.copies.compute2})`,
    outcome: classify(v),
    as_pinned: problems.length === 0,
    problems,
    ms,
    migration: m.uuid,
  };
}

function rowHead(step: Step, from: HostName) {
  return {
    n: step.n,
    workload: step.workload,
    mode: step.mode,
    fault: step.fault.id,
    phase: step.fault.phase,
    jitter_ms: step.jitterMs,
    from,
    to: otherHost(from),
  };
}

export interface SoakOptions extends Omit<PlanOptions, 'postCopy'> {
  /** false: stop-and-copy only, even where the hosts offer post-copy. */
  postCopy?: boolean;
  /** Start no migration after this many minutes (the run reports how many it did). */
  maxMinutes?: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  seed: number;
  options: Omit<SoakOptions, 'log'>;
  post_copy: { used: boolean; reason: string | null };
  rows: Row[];
  counts: Counts;
  started_at: string;
  ms: number;
}

const FINAL = ['completed', 'failed', 'cancelled', 'error'];
const quiet = () => undefined;

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? quiet;
  const t0 = Date.now();
  const cloud = await loadCloud();
  const st = cloud.status;
  const ferry = cloud.ferry;
  const hostOf = (n: HostName) => {
    const h = st.hosts.find((x) => x.name === n);
    if (!h) throw new Error(`no ${n} in the development cloud`);
    return h;
  };
  const engines = { compute1: engineOf(hostOf('compute1')), compute2: engineOf(hostOf('compute2')) };
  const env: SoakEnv = {
    engines,
    fabric: st.fabric.network,
    clientNetns: st.fabric.client_netns,
    tag: `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`,
  };

  // Post-copy only where both hosts report it works (kernel userfaultfd, CRIU lazy pages).
  const hosts = (await ferry.request<{ hosts: ComputeHost[] }>('GET', '/v1/hosts')).body.hosts ?? [];
  const pcReason = HOSTS.map((n) => {
    const pc = hosts.find((h) => h.name === n)?.modes?.post_copy;
    return pc?.ok ? null : `${n}: ${pc?.reason ?? 'does not report post-copy'}`;
  }).filter((x) => x !== null);
  const usePostCopy = o.postCopy !== false && pcReason.length === 0;
  const postCopy = { used: usePostCopy, reason: o.postCopy === false ? 'turned off (--no-post-copy)' : pcReason.join('; ') || null };
  log(`post-copy: ${usePostCopy ? 'used' : `not used (${postCopy.reason})`}`);

  const plan = planSoak({ ...o, postCopy: usePostCopy }, mulberry32(o.seed));
  for (const image of ['ferry/counter:latest', 'ferry/redis:latest', 'ferry/stream:latest']) await ensureImage(engines.compute1, engines.compute2, image);
  await useFaults({});

  const subjects = new Map<WorkloadKind, Subject>();
  let seq = 0;
  const rows: Row[] = [];
  try {
    for (const step of plan) {
      if (o.maxMinutes && Date.now() - t0 > o.maxMinutes * 60_000) {
        log(`time budget of ${o.maxMinutes} min spent: stopping after ${rows.length} of ${plan.length} migrations`);
        break;
      }
      let s = subjects.get(step.workload);
      const t = Date.now();
      try {
        if (!s) {
          s = await newSubject(env, step.workload, ++seq);
          subjects.set(step.workload, s);
        }
        const row = await migrateOnce(step, s);
        rows.push(row);
        if (row.outcome !== 'ok' || row.runs_on.startsWith('none')) {
          // Broken: a fresh one next time, so one loss is counted once.
          await s.remove();
          subjects.delete(step.workload);
        }
      } catch (e) {
        const from = s?.host ?? 'compute1';
        rows.push({
          ...rowHead(step, from),
          expected: '-',
          status: '-',
          runs_on: '-',
          outcome: 'error',
          as_pinned: false,
          problems: [(e as Error).message],
          ms: Date.now() - t,
          migration: null,
        });
        if (s) await s.remove();
        subjects.delete(step.workload);
        await useFaults({}).catch(() => undefined);
      }
      const r = rows[rows.length - 1];
      log(
        `${String(r.n).padStart(4)} ${r.workload.padEnd(7)} ${r.mode.padEnd(13)} ${`${r.fault}+${r.jitter_ms}ms`.padEnd(28)} ${r.from}->${r.to} ${r.status.padEnd(24)} ${r.outcome}${r.as_pinned ? '' : ` NOT AS PINNED: ${r.problems.join('; ')}`} (${(r.ms / 1000).toFixed(1)} s)`,
      );
    }
  } finally {
    await useFaults({}).catch(() => undefined);
    for (const s of subjects.values()) await s.remove();
  }
  return {
    seed: o.seed,
    options: { ...o, log: undefined } as Omit<SoakOptions, 'log'>,
    post_copy: postCopy,
    rows,
    counts: countRows(rows),
    started_at: new Date(t0).toISOString(),
    ms: Date.now() - t0,
  };

  async function migrateOnce(step: Step, s: Subject): Promise<Row> {
    const from = s.host;
    const to = otherHost(from);
    const f = step.fault;
    // A host whose agent was just killed or lost its broker reports again within seconds; until
    // then it is down, and the API rightly refuses to move its containers.
    await hostsUp();
    await ferry.waitKnown(s.name, from, 60_000);
    await s.snapshot();
    await useFaults(f.arm(from, to));
    const extra: string[] = [];
    const undo: (() => Promise<unknown>)[] = [];
    const t = Date.now();
    let end: Migration;
    try {
      await before(f, to, s, undo);
      const m0 = await ferry.migrate(s.name, to, { post_copy: step.mode === 'post-copy' });
      const reached = await windowOpens(f, m0.uuid, s.name, to);
      if (!reached) extra.push(`the window (${f.window}) never opened`);
      if (step.jitterMs) await sleep(step.jitterMs);
      await act(f, m0.uuid, from, to, extra, undo);
      end = await ferry.waitMigration(m0.uuid, { timeoutMs: 300_000, everyMs: 200 });
    } finally {
      for (const u of undo.reverse()) await u().catch(() => undefined);
    }
    const ms = Date.now() - t;
    const states = await Promise.all(HOSTS.map((h) => copyState(engines[h], s.name)));
    const copies = { compute1: states[0], compute2: states[1] };
    const where = onlyRunning(copies);
    const v: Verdict = {
      status: end.status,
      phase: end.phase ?? null,
      where,
      copies,
      state_kept: where ? await s.stateKept(where) : false,
      leftovers: leftoversOf(st, end.uuid),
    };
    if (where) s.host = where;
    return judge(step, from, end, v, extra, ms);
  }

  async function hostsUp(): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await ferry.request<{ hosts: ComputeHost[] }>('GET', '/v1/hosts').catch(() => null);
      const up = HOSTS.every((n) => r?.body.hosts?.find((h) => h.name === n)?.state === 'up');
      if (up) return;
      if (Date.now() > deadline) throw new Error('compute1 and compute2 were not both up within 120 s');
      await sleep(500);
    }
  }

  /** What a fault needs in place before the migration starts. */
  async function before(f: FaultKind, to: HostName, s: Subject, undo: (() => Promise<unknown>)[]): Promise<void> {
    if (f.action === 'name-clash') {
      // A stopped container of the same name on the target: refused before the freeze.
      await engines[to].createContainer({ Image: 'ferry/counter:latest', name: s.name });
      undo.push(() => removeQuietly(engines[to], s.name));
    }
    if (f.action === 'disk-full') {
      // The target's staging folder becomes a 256 KiB file system: the checkpoint does not fit.
      const staging = path.join(hostOf(to).data_root, 'ferry-staging', to);
      fs.mkdirSync(staging, { recursive: true });
      await runCmd('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'ferry-soak-full', staging]);
      undo.push(() => runCmd('umount', [staging]));
    }
  }

  /** Wait until the migration reaches the fault's window (false: it ended, or never got there). */
  async function windowOpens(f: FaultKind, uuid: string, name: string, to: HostName): Promise<boolean> {
    if (f.window === 'start') return true;
    const final = (m: Migration) => FINAL.includes(m.status);
    const wait = (p: (m: Migration) => boolean, ms = 60_000) => ferry.waitMigration(uuid, { until: (m) => p(m) || final(m), timeoutMs: ms, everyMs: 50 });
    if (f.window === 'preparing') return !final(await wait((m) => m.status === 'pre-migrating' && m.phase === 'prepare'));
    if (f.window === 'running') return !final(await wait((m) => m.status === 'running'));
    if (f.window === 'restoring' || f.window === 'running-on-target') {
      if (final(await wait((m) => m.status === 'post-migrating', 120_000))) return false;
      if (f.window === 'restoring') return true;
      for (let i = 0; i < 300; i++) {
        if ((await copyState(engines[to], name)) === 'running') return true;
        await sleep(50);
      }
      return false;
    }
    // bytes: the target stages the migration's first bytes.
    if (final(await wait((m) => m.status !== 'accepted' && m.status !== 'pre-migrating', 120_000))) return false;
    const staged = path.join(hostOf(to).data_root, 'ferry-staging', to, uuid);
    for (let i = 0; i < 800; i++) {
      if (fs.existsSync(staged)) return true;
      await sleep(25);
    }
    return false;
  }

  async function act(f: FaultKind, uuid: string, from: HostName, to: HostName, extra: string[], undo: (() => Promise<unknown>)[]): Promise<void> {
    switch (f.action) {
      case 'kill-source-agent':
        return killService(`ferry-compute-${from}`);
      case 'kill-target-agent':
        return killService(`ferry-compute-${to}`);
      case 'kill-conductor':
        return killService('ferry-conductor');
      case 'close-amqp':
        await rabbitctl(['close_all_connections', '--global', 'soak']);
        return;
      case 'restart-rabbit':
        await stopRabbit();
        await sleep(1500);
        await startRabbit(quiet);
        return;
      case 'keystone-down':
        await stopKeystone();
        undo.push(() => startKeystone(quiet));
        return;
      case 'abort-accepted':
      case 'abort-refused': {
        const want = f.action === 'abort-accepted' ? 202 : 409;
        const r = await ferry.request('DELETE', `/v1/migrations/${uuid}`);
        if (r.status !== want) extra.push(`abort answered ${r.status}, expected ${want}`);
        return;
      }
      default:
        return;
    }
  }
}

/** The run as tables: every migration, then per fault, then the counts and the seed to replay. */
export function renderSoak(r: SoakResult): string {
  const lines: string[] = [];
  lines.push('| # | workload | mode | fault | phase | at +ms | move | expected | status | runs on | verdict | as pinned | s |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const x of r.rows) {
    lines.push(
      `| ${x.n} | ${x.workload} | ${x.mode} | ${x.fault} | ${x.phase} | ${x.jitter_ms} | ${x.from} -> ${x.to} | ${x.expected} | ${x.status} | ${x.runs_on} | ${x.outcome} | ${x.as_pinned ? 'yes' : `no: ${x.problems.join('; ')}`} | ${(x.ms / 1000).toFixed(1)} |`,
    );
  }
  lines.push('');
  lines.push('| fault | migrations | ok | lost | duplicated | not as pinned | errors |');
  lines.push('|---|---|---|---|---|---|---|');
  const ids = [...new Set(r.rows.map((x) => x.fault))].sort();
  for (const id of ids) {
    const c = countRows(r.rows.filter((x) => x.fault === id));
    const ok = r.rows.filter((x) => x.fault === id && x.outcome === 'ok' && x.as_pinned).length;
    lines.push(`| ${id} | ${c.migrations} | ${ok} | ${c.lost} | ${c.duplicated} | ${c.unexpected} | ${c.errors} |`);
  }
  lines.push('');
  if (r.rows.length < r.options.migrations)
    lines.push(`stopped at the time budget (${r.options.maxMinutes} min): ${r.rows.length} of ${r.options.migrations} planned migrations`);
  lines.push(`post-copy: ${r.post_copy.used ? 'used' : `not used (${r.post_copy.reason})`}; took ${(r.ms / 60_000).toFixed(1)} min`);
  lines.push(
    `replay: npm run soak -- --migrations ${r.options.migrations} --seed ${r.seed} --fault-rate ${r.options.faultRate}${r.options.postCopy === false ? ' --no-post-copy' : ''}${r.options.workloads ? ` --workloads ${r.options.workloads.join(',')}` : ''}${r.options.faults ? ` --faults ${r.options.faults.join(',')}` : ''}`,
  );
  lines.push(summaryLine(r));
  return lines.join('\n');
}

export function summaryLine(r: Pick<SoakResult, 'seed' | 'counts'>): string {
  const c = r.counts;
  return `soak seed ${r.seed}: migrations ${c.migrations}, faults ${c.faults}, lost ${c.lost}, duplicated ${c.duplicated}, not as pinned ${c.unexpected}, errors ${c.errors}`;
}
