/**
 * The soak's pure parts, with fakes: the seeded plan replays from its seed and respects the
 * modes, and the judging turns what a migration left into lost / duplicated / ok and an exit
 * code that is non-zero as soon as one container was lost or duplicated.
 */
import { describe, expect, it } from '@jest/globals';
import { InvalidInput } from '../../../src/common/errors.js';
import type { MigrationStatus } from '../../../src/objects/migration.js';
import { parseSoakArgs } from '../../../src/soak/args.js';
import { FAULTS, NO_FAULT, faultById, planSoak, type Step } from '../../../src/soak/catalogue.js';
import { mulberry32 } from '../../../src/soak/prng.js';
import { countRows, exitCode, judge, renderSoak, type SoakResult } from '../../../src/soak/run.js';
import { classify, unmet, type CopyState, type Verdict } from '../../../src/soak/verdict.js';

describe('mulberry32', () => {
  it('replays the same numbers from the same seed, others from another', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 50 }, () => a.next());
    expect(Array.from({ length: 50 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 50 }, () => mulberry32(43).next())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('int stays within its bounds and reaches both ends', () => {
    const r = mulberry32(7);
    const seen = new Set(Array.from({ length: 500 }, () => r.int(2, 5)));
    expect([...seen].sort()).toEqual([2, 3, 4, 5]);
  });
});

describe('planSoak', () => {
  const opts = { migrations: 300, seed: 1234, faultRate: 0.5, postCopy: true };

  it('is the same plan for the same seed', () => {
    const ids = (s: Step[]) => s.map((x) => `${x.workload}/${x.mode}/${x.fault.id}/${x.jitterMs}`);
    expect(ids(planSoak(opts, mulberry32(1234)))).toEqual(ids(planSoak(opts, mulberry32(1234))));
    expect(ids(planSoak(opts, mulberry32(1235)))).not.toEqual(ids(planSoak(opts, mulberry32(1234))));
  });

  it('uses every workload, both modes and every fault; post-copy gets only the faults before the freeze', () => {
    const plan = planSoak(opts, mulberry32(1234));
    expect(new Set(plan.map((s) => s.workload))).toEqual(new Set(['counter', 'redis', 'stream']));
    expect(new Set(plan.map((s) => s.mode))).toEqual(new Set(['stop-and-copy', 'post-copy']));
    expect(new Set(plan.map((s) => s.fault.id))).toEqual(new Set([NO_FAULT.id, ...FAULTS.map((f) => f.id)]));
    for (const s of plan.filter((x) => x.mode === 'post-copy')) expect(['none', 'conductor-pre', 'name-clash']).toContain(s.fault.id);
    for (const s of plan) expect(s.jitterMs).toBeLessThanOrEqual(s.fault.jitterMaxMs);
  });

  it('without post-copy every migration is stop-and-copy; the fault rate and the fault list hold', () => {
    expect(planSoak({ ...opts, postCopy: false }, mulberry32(1)).every((s) => s.mode === 'stop-and-copy')).toBe(true);
    expect(planSoak({ ...opts, faultRate: 0 }, mulberry32(1)).every((s) => s.fault === NO_FAULT)).toBe(true);
    const only = planSoak({ ...opts, postCopy: false, faultRate: 1, faults: ['truncated', 'amqp-restore'] }, mulberry32(1));
    expect(new Set(only.map((s) => s.fault.id))).toEqual(new Set(['truncated', 'amqp-restore']));
  });

  it("pins the table's outcomes, source and target swapped for a move back", () => {
    expect(faultById('truncated').expected('compute2', 'compute1')).toEqual({ status: 'failed', host: 'compute2' });
    expect(faultById('conductor-post').expected('compute2', 'compute1')).toEqual({ status: 'completed', host: 'compute1' });
    expect(faultById('src-kill-checkpoint').arm('compute2', 'compute1')).toEqual({ compute2: { delayBeforeCheckpointMs: 4000 } });
    expect(() => faultById('nope')).toThrow(/unknown fault/);
  });
});

function verdict(status: MigrationStatus, c1: CopyState, c2: CopyState, stateKept = true, leftovers: string[] = []): Verdict {
  const copies = { compute1: c1, compute2: c2 };
  const running = (['compute1', 'compute2'] as const).filter((h) => copies[h] === 'running');
  return { status, phase: null, where: running.length === 1 ? running[0] : null, copies, state_kept: stateKept, leftovers };
}

const m = { uuid: 'u-1', status: 'completed' as MigrationStatus, source_host: 'compute1', dest_host: 'compute2' };
const step = (faultId: string): Step => ({ n: 1, workload: 'redis', mode: 'stop-and-copy', fault: faultById(faultId), jitterMs: 0 });

describe('judging a migration', () => {
  it('classifies: none running is lost, two running is duplicated, state gone is lost', () => {
    expect(classify(verdict('completed', 'absent', 'running'))).toBe('ok');
    expect(classify(verdict('completed', 'absent', 'absent'))).toBe('lost');
    expect(classify(verdict('completed', 'stopped', 'stopped'))).toBe('lost');
    expect(classify(verdict('completed', 'running', 'running'))).toBe('duplicated');
    expect(classify(verdict('completed', 'absent', 'running', false))).toBe('lost');
  });

  it('unmet names each break of the invariant', () => {
    expect(unmet(m, verdict('completed', 'absent', 'running'), { status: 'completed', host: 'compute2' })).toEqual([]);
    expect(unmet(m, verdict('completed', 'stopped', 'running'), { status: 'completed' })).toEqual(['a stopped copy left on compute1']);
    expect(unmet(m, verdict('completed', 'running', 'absent'), { status: 'completed' })).toEqual(['runs on compute1, the record says compute2']);
    expect(unmet(m, verdict('failed', 'running', 'absent', true, ['/x']), { status: 'completed', host: 'compute2' })).toEqual([
      'status failed, expected completed',
      'runs on compute1, expected compute2',
      'left behind: /x',
    ]);
  });

  it('a lost container makes the run fail; so does a duplicated one or an outcome other than pinned', () => {
    const ok = judge(step('none'), 'compute1', m, verdict('completed', 'absent', 'running'), [], 1000);
    expect(ok).toMatchObject({ outcome: 'ok', as_pinned: true, from: 'compute1', to: 'compute2' });
    expect(exitCode(countRows([ok, ok]))).toBe(0);

    const lost = judge(step('truncated'), 'compute1', { ...m, status: 'failed' }, verdict('failed', 'absent', 'absent'), [], 1000);
    expect(lost.outcome).toBe('lost');
    expect(countRows([ok, lost])).toEqual({ migrations: 2, faults: 1, lost: 1, duplicated: 0, unexpected: 0, errors: 0 });
    expect(exitCode(countRows([ok, lost]))).toBe(1);

    const dup = judge(step('conductor-post'), 'compute1', m, verdict('completed', 'running', 'running'), [], 1000);
    expect(dup.outcome).toBe('duplicated');
    expect(exitCode(countRows([ok, dup]))).toBe(1);

    // State missing on the one running copy is a loss too.
    const amnesia = judge(step('none'), 'compute1', m, verdict('completed', 'absent', 'running', false), [], 1000);
    expect(amnesia.outcome).toBe('lost');

    // Nothing lost, but not what the table pins (rolled back where it should have completed).
    const off = judge(step('amqp-restore'), 'compute1', { ...m, status: 'failed' }, verdict('failed', 'running', 'absent'), [], 1000);
    expect(off).toMatchObject({ outcome: 'ok', as_pinned: false });
    expect(countRows([off]).unexpected).toBe(1);
    expect(exitCode(countRows([off]))).toBe(1);
  });

  it('renders the table, the seed to replay and one line of counts', () => {
    const rows = [judge(step('none'), 'compute1', m, verdict('completed', 'absent', 'running'), [], 1000)];
    const r: SoakResult = {
      seed: 9,
      options: { migrations: 1, seed: 9, faultRate: 0.5 },
      post_copy: { used: false, reason: 'x' },
      rows,
      counts: countRows(rows),
      started_at: '',
      ms: 60_000,
    };
    const out = renderSoak(r);
    expect(out).toContain('replay: npm run soak -- --migrations 1 --seed 9 --fault-rate 0.5');
    expect(out.trim().split('\n').at(-1)).toBe('soak seed 9: migrations 1, faults 0, lost 0, duplicated 0, not as pinned 0, errors 0');
  });
});

describe('the command line', () => {
  it('reads the options and refuses bad ones plainly', () => {
    expect(parseSoakArgs(['--migrations', '200', '--seed', '7', '--no-post-copy'])).toMatchObject({
      migrations: 200,
      seed: 7,
      faultRate: 0.5,
      postCopy: false,
    });
    expect(parseSoakArgs(['--help'])).toBeNull();
    expect(parseSoakArgs([], 123)).toMatchObject({ migrations: 20, seed: 123 });
    expect(() => parseSoakArgs(['--migrations', '0'])).toThrow(InvalidInput);
    expect(() => parseSoakArgs(['--seed', '-1'])).toThrow(/--seed/);
    expect(() => parseSoakArgs(['--fault-rate', '2'])).toThrow(/--fault-rate/);
    expect(() => parseSoakArgs(['--faults', 'truncated,bogus'])).toThrow(/unknown bogus/);
    expect(() => parseSoakArgs(['--frobnicate'])).toThrow(/unknown option --frobnicate/);
  });
});
