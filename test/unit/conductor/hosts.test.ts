import { describe, expect, it } from '@jest/globals';
import { HostDisabled, NoValidHost } from '../../../src/common/errors.js';
import { byLoad, chooseTarget } from '../../../src/conductor/hosts.js';
import { canTransition } from '../../../src/conductor/statemachine.js';
import type { ComputeHost } from '../../../src/objects/host.js';

const h = (name: string, over: Partial<ComputeHost> = {}): ComputeHost => ({
  name, state: 'up', status: 'enabled', disabled_reason: null, docker_version: '20.10', criu_version: '4.2.1', criu_ok: true, architecture: 'x86_64',
  migration_address: null, containers: 0, memory_used_bytes: null, updated_at: null, ...over,
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
  it('spreads by container count first, then by memory in use', () => {
    const hosts = [h('a'), h('b', { containers: 2, memory_used_bytes: 100 }), h('c', { containers: 2, memory_used_bytes: 50 }), h('d', { containers: 3, memory_used_bytes: 1 })];
    expect(chooseTarget(hosts, 'a', null)).toBe('c');
    // fewer containers wins even with more memory
    expect(chooseTarget([...hosts, h('e', { containers: 1, memory_used_bytes: 10_000 })], 'a', null)).toBe('e');
  });
  it('ignores memory when a host does not report it (then by name)', () => {
    expect(chooseTarget([h('a'), h('c', { memory_used_bytes: 10 }), h('b')], 'a', null)).toBe('b');
    expect(byLoad(h('x', { memory_used_bytes: null }), h('y', { memory_used_bytes: 1 }))).toBeLessThan(0);
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
