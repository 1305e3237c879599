import { describe, expect, test } from '@jest/globals';
import { markdown, summarize, terminalTable, type ReportInput } from '../../../src/bench/report.js';
import { emptyResult, judgedMigration, stateAfterMove, stateBeforeFreeze, type StateAccess } from '../../../src/bench/runners/common.js';
import type { RunResult, Workload } from '../../../src/bench/types.js';
import {
  allTries,
  applyFailure,
  applyVerdict,
  emptyEvidence,
  judgeEvidence,
  logLinesSince,
  mayRetry,
  numbersIn,
  verdictOf,
  type StateEvidence,
} from '../../../src/bench/verdict.js';
import { findWorkloads } from '../../../src/bench/workloads.js';

const [counter, redis] = findWorkloads(['counter', 'redis-100k']);

function ev(over: Partial<StateEvidence>): StateEvidence {
  return { ...emptyEvidence(), source_gone: true, ...over };
}

function judged(w: Workload, e: StateEvidence, downtime: number | null = 120): RunResult {
  const r = emptyResult('ferry-rest', w, 1);
  r.downtime_ms = downtime;
  applyVerdict(r, w, e);
  return r;
}

describe('counter: read from the process, strictly greater after the move', () => {
  test('went on: the first count after is above the last before', () => {
    expect(judgeEvidence(counter, ev({ counter_before: 41, counter_after: [43, 44, 45] }))).toEqual({ verified: true, reason: null });
  });

  test('stood still (the same value, as a file carried with the layer would show) is lost state', () => {
    const r = judged(counter, ev({ counter_before: 41, counter_after: [41] }));
    expect(r.verified).toBe(false);
    expect(r.ok).toBe(false);
    expect(verdictOf(r)).toBe('lost state');
  });

  test('a process that started again (counts from 1) is lost state even when it has counted past the old value since', () => {
    const r = judged(counter, ev({ counter_before: 41, counter_after: [1, 2, 60] }));
    expect(r.verified).toBe(false);
    expect(r.error).toMatch(/^lost state: counter restarted/);
  });

  test('no count read before the freeze, or none printed after: not verified', () => {
    expect(judgeEvidence(counter, ev({ counter_before: null, counter_after: [5] })).verified).toBe(false);
    expect(judgeEvidence(counter, ev({ counter_before: 4, counter_after: [] })).verified).toBe(false);
    expect(judgeEvidence(counter, ev({ counter_before: 4, counter_after: null })).verified).toBe(false);
  });
});

describe('Redis: the marker written before the freeze and DBSIZE', () => {
  test('marker read back and keys + marker: ok', () => {
    const r = judged(redis, ev({ marker_before: 'm1', marker_after: 'm1', dbsize_after: 100_001 }));
    expect(r.ok).toBe(true);
    expect(verdictOf(r)).toBe('ok');
  });

  test('the right DBSIZE without the marker (an older copy of the data) is lost state', () => {
    const r = judged(redis, ev({ marker_before: 'm1', marker_after: '', dbsize_after: 100_001 }));
    expect(r.verified).toBe(false);
    expect(verdictOf(r)).toBe('lost state');
  });

  test('the marker without every key is lost state', () => {
    expect(judgeEvidence(redis, ev({ marker_before: 'm1', marker_after: 'm1', dbsize_after: 100_000 })).verified).toBe(false);
  });
});

describe('the source copy and the downtime', () => {
  test('a source copy still running fails the run though the state went on', () => {
    const r = judged(redis, ev({ marker_before: 'm', marker_after: 'm', dbsize_after: 100_001, source_gone: false }));
    expect(r.verified).toBe(true);
    expect(r.ok).toBe(false);
    expect(verdictOf(r)).toBe('source still running');
  });

  test('not checked is not gone', () => {
    expect(judged(counter, ev({ counter_before: 1, counter_after: [3], source_gone: null })).ok).toBe(false);
  });

  test('no downtime measured: failed, saying whether the probe was there', () => {
    const r = judged(counter, ev({ counter_before: 1, counter_after: [3] }), null);
    expect(verdictOf(r)).toBe('failed: no client-observed downtime (probe)');
  });
});

describe("collecting the evidence through a runner's access", () => {
  function fakeAccess(log: string[], over: Partial<StateAccess> = {}): StateAccess {
    const db = new Map<string, string>();
    const cli = async (args: string[]) => {
      log.push(args.join(' '));
      if (args[0] === 'SET') {
        db.set(args[1], args[2]);
        return 'OK';
      }
      if (args[0] === 'GET') return db.get(args[1]) ?? '';
      return String(100_000 + db.size);
    };
    return {
      redisBefore: cli,
      redisAfter: cli,
      counterBefore: async () => '38\n39\n40\n',
      counterAfter: async () => '41\n42\n',
      sourceGone: async () => true,
      ...over,
    };
  }

  test('Redis: a fresh marker is written before and read after; DBSIZE', async () => {
    const log: string[] = [];
    const e = emptyEvidence();
    const a = fakeAccess(log);
    await stateBeforeFreeze(redis, a, e);
    await stateAfterMove(redis, a, e, 0);
    expect(e.marker_before).toMatch(/^before-freeze-/);
    expect(e.marker_after).toBe(e.marker_before);
    expect(e.dbsize_after).toBe(100_001);
    expect(judgeEvidence(redis, e).verified).toBe(true);
  });

  test('counter: the last printed before, every count printed after', async () => {
    const e = emptyEvidence();
    const a = fakeAccess([]);
    await stateBeforeFreeze(counter, a, e);
    await stateAfterMove(counter, a, e, 0);
    expect(e).toMatchObject({ counter_before: 40, counter_after: [41, 42], source_gone: true });
  });

  test('a read that throws after the move leaves the evidence empty (not verified), not the bench broken', async () => {
    const e = emptyEvidence();
    const a = fakeAccess([], {
      counterAfter: () => Promise.reject(new Error('no such container')),
      sourceGone: () => Promise.reject(new Error('engine down')),
    });
    await stateBeforeFreeze(counter, a, e);
    await stateAfterMove(counter, a, e, 0);
    expect(e.counter_after).toBeNull();
    expect(e.source_gone).toBeNull();
    expect(judgeEvidence(counter, e).verified).toBe(false);
  });

  test('judgedMigration: a failing migration throws before any verdict', async () => {
    const r = emptyResult('ferry-rest', counter, 1);
    await expect(
      judgedMigration(
        r,
        counter,
        { kind: 'http', host: '127.0.0.1', port: 1, netns: null },
        fakeAccess([]),
        () => Promise.reject(new Error('x')),
        () => undefined,
      ),
    ).rejects.toThrow();
    expect(r.detail.verdict).toBeUndefined();
  }, 30_000);
});

describe('logs', () => {
  test('numbersIn keeps the counts only', () => {
    expect(numbersIn('1\n2\nhttpd: bind\n 3 \n')).toEqual([1, 2, 3]);
  });

  test('logLinesSince keeps the lines stamped at or after the time (nanosecond stamps)', () => {
    const since = Date.parse('2026-12-07T01:00:00.500Z');
    const text = ['2026-12-07T01:00:00.400123456Z 40', '2026-12-07T01:00:00.500000001Z 41', '2026-12-07T01:00:01.000000000Z 42', 'garbage'].join('\n');
    expect(logLinesSince(text, since)).toBe('41\n42');
    expect(logLinesSince('2026-12-07T02:00:00+01:00 7', since)).toBe('');
  });
});

describe('retries and the report', () => {
  function lost(): RunResult {
    return judged(counter, ev({ counter_before: 41, counter_after: [1] }));
  }
  function failed(why: string): RunResult {
    const r = emptyResult('ferry-rest', counter, 1);
    applyFailure(r, why);
    return r;
  }
  function good(): RunResult {
    return judged(counter, ev({ counter_before: 41, counter_after: [42] }));
  }

  test('a tooling failure may be retried; lost state and a running source may not', () => {
    expect(mayRetry(failed('migration m1 error: agent gone'))).toBe(true);
    expect(mayRetry(lost())).toBe(false);
    expect(mayRetry(judged(counter, ev({ counter_before: 1, counter_after: [2], source_gone: false })))).toBe(false);
    expect(mayRetry(good())).toBe(false);
  });

  test('allTries: the failed first try is a row of its own before the retry', () => {
    const retry = good();
    retry.attempt = 2;
    retry.earlier_tries = [failed('service restarted')];
    const rows = allTries(retry);
    expect(rows.map((r) => [r.attempt, r.ok])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(rows[1].earlier_tries).toBeUndefined();
  });

  test('the summary counts the failed try and the lost state; one lost run makes the verdict no', () => {
    const retry = good();
    retry.attempt = 2;
    retry.earlier_tries = [failed('service restarted')];
    const results = [...allTries(retry), lost(), good()];
    const [s] = summarize(results, [counter], ['ferry-rest']);
    expect(s).toMatchObject({ runs: 4, failed: 2, lost_state: 1, verified: false });
    expect(s.errors).toEqual(['failed: service restarted', 'lost state']);
    expect(terminalTable([s])).toMatch(/ferry-rest\s+2\/4\s+1\s/);
  });

  test('a method measured without the probe is labelled so in every table', () => {
    const r = judged(redis, ev({ marker_before: 'm', marker_after: 'm', dbsize_after: 100_001 }));
    r.method = 'raw-criu-lazy';
    r.probed = false;
    const summaries = summarize([r], [redis], ['raw-criu-lazy']);
    expect(terminalTable(summaries)).toContain('raw-criu-lazy (no probe)');
    const input = {
      started: 's',
      finished: 'f',
      argv: [],
      machine: {},
      workloads: [redis],
      methods: ['raw-criu-lazy'],
      methodLabels: { 'raw-criu-lazy': 'raw lazy' },
      results: [r],
      summaries,
      ratios: [],
      memory: { peak_rss: {}, hwm: {} },
      analysis: null,
      chartFile: 'c.svg',
    } as unknown as ReportInput;
    const md = markdown(input);
    expect(md).toContain('| raw-criu-lazy (no probe) | 1 | 1 | ok |');
    expect(md).toContain('| no probe |');
  });
});
