import { describe, expect, it } from '@jest/globals';
import { chooseTarget } from '../../../src/conductor/hosts.js';
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

describe('state machine', () => {
  it('allows the flow and forbids leaving a final status', () => {
    expect(canTransition('accepted', 'pre-migrating')).toBe(true);
    expect(canTransition('running', 'post-migrating')).toBe(true);
    expect(canTransition('completed', 'failed')).toBe(false);
    expect(canTransition('accepted', 'completed')).toBe(false);
  });
});
