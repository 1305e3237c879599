import { describe, expect, it } from '@jest/globals';
import { HostDisabled, NoValidHost } from '../../../src/common/errors.js';
import { byLoad, chooseTarget, loadScores, memoryFraction, toComputeHost } from '../../../src/conductor/hosts.js';
import { canTransition } from '../../../src/conductor/statemachine.js';
import type { ComputeHost } from '../../../src/objects/host.js';

const GiB = 2 ** 30;
const h = (name: string, over: Partial<ComputeHost> = {}): ComputeHost => ({
  name,
  state: 'up',
  status: 'enabled',
  disabled_reason: null,
  docker_version: '20.10',
  criu_version: '4.2.1',
  criu_ok: true,
  architecture: 'x86_64',
  migration_address: null,
  containers: 0,
  memory_used_bytes: null,
  memory_total_bytes: null,
  modes: null,
  updated_at: null,
  ...over,
});

describe('scheduler', () => {
  it('picks the up host with working CRIU and the fewest containers, never the source', () => {
    const hosts = [h('a', { containers: 1 }), h('b', { containers: 5 }), h('c', { containers: 2 }), h('d', { state: 'down' }), h('e', { criu_ok: false })];
    expect(chooseTarget(hosts, 'a', null)).toBe('c');
    expect(chooseTarget(hosts, 'c', null)).toBe('a');
  });
  it('skips another architecture', () => {
    expect(chooseTarget([h('a'), h('b', { architecture: 'aarch64' }), h('c', { containers: 9 })], 'a', null)).toBe('c');
  });
  it('checks a requested host', () => {
    const hosts = [h('a'), h('b', { state: 'down' }), h('c', { criu_ok: false })];
    expect(() => chooseTarget(hosts, 'a', 'b')).toThrow(/down/);
    expect(() => chooseTarget(hosts, 'a', 'c')).toThrow(/no working CRIU/);
    expect(() => chooseTarget(hosts, 'a', 'zz')).toThrow(/not known/);
    expect(() => chooseTarget([h('a')], 'a', null)).toThrow(/nowhere to migrate/);
  });
});

describe('scheduler: host maintenance and load', () => {
  it('never picks a disabled host, however lightly loaded', () => {
    const hosts = [h('a'), h('b', { status: 'disabled', disabled_reason: 'kernel upgrade' }), h('c', { containers: 7 })];
    expect(chooseTarget(hosts, 'a', null)).toBe('c');
  });
  it('refuses a named disabled host with its reason (409 HostDisabled)', () => {
    const hosts = [h('a'), h('b', { status: 'disabled', disabled_reason: 'kernel upgrade' })];
    const e = (() => {
      try {
        chooseTarget(hosts, 'a', 'b');
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(HostDisabled);
    expect((e as Error).message).toMatch(/"b" is disabled \(kernel upgrade\)/);
    expect((e as InstanceType<typeof HostDisabled>).kind).toBe('conflict');
  });
  it('with every other host disabled or down, says why for each (409 NoValidHost)', () => {
    const hosts = [h('a'), h('b', { status: 'disabled', disabled_reason: 'maintenance' }), h('c', { state: 'down' }), h('d', { criu_ok: false })];
    expect(() => chooseTarget(hosts, 'a', null)).toThrow(NoValidHost);
    expect(() => chooseTarget(hosts, 'a', null)).toThrow(/b is disabled \(maintenance\); c is down .*; d has no working CRIU/);
  });
  it('a disabled source may still send its containers away', () => {
    expect(chooseTarget([h('a', { status: 'disabled' }), h('b')], 'a', null)).toBe('b');
  });
  it('with no memory reported, spreads by container count, then by name', () => {
    expect(chooseTarget([h('a'), h('c', { containers: 2 }), h('b', { containers: 2 }), h('d', { containers: 3 })], 'a', null)).toBe('b');
    expect(chooseTarget([h('a'), h('c', { containers: 2 }), h('b', { containers: 3 })], 'a', null)).toBe('c');
  });
  it('with equal container counts, prefers the host whose containers use the smaller share of its memory', () => {
    // b uses less memory in bytes, but of a smaller host: 50% against c's 25%
    const hosts = [
      h('a'),
      h('b', { containers: 4, memory_used_bytes: 8 * GiB, memory_total_bytes: 16 * GiB }),
      h('c', { containers: 4, memory_used_bytes: 16 * GiB, memory_total_bytes: 64 * GiB }),
    ];
    expect(chooseTarget(hosts, 'a', null)).toBe('c');
  });
  it('weighs memory against containers: a much emptier host wins over one with slightly fewer containers, and the reverse', () => {
    const busyMemory = { memory_used_bytes: 28 * GiB, memory_total_bytes: 32 * GiB };
    const idleMemory = { memory_used_bytes: 4 * GiB, memory_total_bytes: 32 * GiB };
    // 40 containers at 88% memory vs 42 at 12%: memory decides
    expect(chooseTarget([h('a'), h('b', { containers: 40, ...busyMemory }), h('c', { containers: 42, ...idleMemory })], 'a', null)).toBe('c');
    // 5 containers at 88% vs 40 at 12%: containers decide (0.88 + 5/40 < 0.12 + 40/40)
    expect(chooseTarget([h('a'), h('b', { containers: 5, ...busyMemory }), h('c', { containers: 40, ...idleMemory })], 'a', null)).toBe('b');
  });
  it('spreads a burst: counting each accepted migration, the emptier host takes more, but not all', () => {
    const hosts = [
      h('a'),
      h('b', { containers: 10, memory_used_bytes: 2 * GiB, memory_total_bytes: 16 * GiB }),
      h('c', { containers: 10, memory_used_bytes: 10 * GiB, memory_total_bytes: 16 * GiB }),
    ];
    const got = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const t = chooseTarget(hosts, 'a', null);
      got.set(t, (got.get(t) ?? 0) + 1);
      const th = hosts.find((x) => x.name === t) as ComputeHost;
      th.containers += 1; // as the conductor counts migrations on their way
    }
    expect(got.get('b')).toBeGreaterThan(got.get('c') ?? 0);
    expect(got.get('c')).toBeGreaterThan(0);
  });
  it('a host that does not report memory counts as the mean: neither favoured nor avoided', () => {
    const hosts = [
      h('a'),
      h('b', { containers: 3, memory_used_bytes: 1 * GiB, memory_total_bytes: 10 * GiB }),
      h('c', { containers: 3, memory_used_bytes: 5 * GiB, memory_total_bytes: 10 * GiB }),
      h('d', { containers: 3 }),
    ];
    const s = loadScores(hosts.slice(1));
    expect(s.get('d')).toBeCloseTo(0.3 + 1);
    expect(chooseTarget(hosts, 'a', null)).toBe('b');
    expect((s.get('b') as number) < (s.get('d') as number) && (s.get('d') as number) < (s.get('c') as number)).toBe(true);
  });
  it('memory alone (used without a total) only breaks ties; a weight of 0 leaves a criterion out', () => {
    expect(chooseTarget([h('a'), h('c', { memory_used_bytes: 10 }), h('b', { memory_used_bytes: 20 })], 'a', null)).toBe('c');
    expect(chooseTarget([h('a'), h('c', { memory_used_bytes: 10 }), h('b')], 'a', null)).toBe('b');
    expect(byLoad(h('x', { memory_used_bytes: null }), h('y', { memory_used_bytes: 1 }))).toBeLessThan(0);
    const hosts = [
      h('a'),
      h('b', { containers: 1, memory_used_bytes: 9, memory_total_bytes: 10 }),
      h('c', { containers: 2, memory_used_bytes: 1, memory_total_bytes: 10 }),
    ];
    expect(chooseTarget(hosts, 'a', null)).toBe('c');
    expect(chooseTarget(hosts, 'a', null, { memory: 0, containers: 1 })).toBe('b');
  });
  it('memory share is bounded and needs both figures', () => {
    expect(memoryFraction(h('x', { memory_used_bytes: 3, memory_total_bytes: 2 }))).toBe(1);
    expect(memoryFraction(h('x', { memory_used_bytes: 3, memory_total_bytes: 0 }))).toBeNull();
    expect(memoryFraction(h('x', { memory_used_bytes: 3 }))).toBeNull();
  });
  it('takes memory from the heartbeat, dropping what is not a byte count', () => {
    const rec = (facts: Record<string, unknown>) => ({
      name: 'x',
      facts: { criu_ok: true, ...facts } as never,
      containers: 0,
      updated_at: new Date().toISOString(),
      status: 'enabled' as const,
      disabled_reason: null,
    });
    const got = toComputeHost(rec({ memory_used_bytes: 5, memory_total_bytes: 10 }), Date.now(), 30);
    expect([got.memory_used_bytes, got.memory_total_bytes]).toEqual([5, 10]);
    const bad = toComputeHost(rec({ memory_used_bytes: -1, memory_total_bytes: 'lots' }), Date.now(), 30);
    expect([bad.memory_used_bytes, bad.memory_total_bytes]).toEqual([null, null]);
    const old = toComputeHost(rec({}), Date.now(), 30);
    expect([old.memory_used_bytes, old.memory_total_bytes]).toEqual([null, null]);
  });
});

describe('state machine', () => {
  it('allows the flow and forbids leaving a final status', () => {
    expect(canTransition('accepted', 'pre-migrating')).toBe(true);
    expect(canTransition('running', 'post-migrating')).toBe(true);
    expect(canTransition('completed', 'failed')).toBe(false);
    expect(canTransition('accepted', 'completed')).toBe(false);
  });
});
