/**
 * One schema per conductor RPC message: what the fault matrix's bus cases send is refused by the
 * schema alone (InvalidInput, before the service runs), each refusal naming what is wrong.
 */
import { describe, expect, it } from '@jest/globals';
import { InvalidInput } from '../../../src/common/errors.js';
import { CONDUCTOR_METHODS, type ConductorMethod } from '../../../src/conductor/methods.js';

/** The first issue's message, as ConductorManager.dispatch puts it in its InvalidInput. */
function refusal(method: ConductorMethod, args: unknown): string | null {
  const r = CONDUCTOR_METHODS[method].args.safeParse(args);
  return r.success ? null : (r.error.issues[0]?.message ?? '');
}

const state = {
  docker_version: '20.10',
  api_version: '1.41',
  criu_version: '4.2.1',
  criu_ok: true,
  architecture: 'x86_64',
  migration_address: 'x:1',
  containers: [],
};
const now = new Date().toISOString();

describe('conductor message schemas', () => {
  it('refuse what the bus fault cases send, with the messages they expect', () => {
    expect(refusal('report_state', { host: 'compute1', state: 'up' })).toBe('argument "state" must be an object');
    expect(refusal('report_state', { host: 'compute1', state: { docker_version: '20.10.24', containers: [null, 7] } })).toBe(
      'report_state: containers[0] must be an object with string id, name, image and status',
    );
    expect(refusal('report_state', { host: 'h'.repeat(1024), state: { containers: [] } })).toBe('argument "host" must be at most 255 characters');
    expect(refusal('container_event', { host: 'compute1', event: { kind: 'explode', id: 'a'.repeat(64), at: now } })).toBe(
      'container_event: unknown kind "explode"',
    );
    expect(refusal('container_event', { host: 'compute1', event: { kind: 'die', id: '../../x', at: now } })).toBe(
      'container_event: "id" must be a container ID (hex)',
    );
  });

  it('refuse empty and blank names the service used to refuse itself', () => {
    expect(refusal('report_state', { host: '', state })).toBe('argument "host" must not be empty');
    expect(refusal('container_event', { host: '', event: { kind: 'die', id: 'a'.repeat(64), at: now } })).toBe('argument "host" must not be empty');
    expect(refusal('migrate_container', { container: '' })).toMatch(/argument "container" must be a container ID or name/);
    expect(refusal('migrate_container', { container: 'web', host: '  ' })).toMatch(/argument "host" must be a compute host name/);
    expect(refusal('evacuate_host', { host: ' ' })).toMatch(/argument "host" must be a compute host name/);
  });

  it('type what they pass: an event without name, image or status gets nulls; times in toISOString form', () => {
    const r = CONDUCTOR_METHODS.container_event.args.parse({ host: 'compute1', event: { kind: 'die', id: 'a'.repeat(64), at: '2026-01-02T03:04:05Z' } });
    expect(r.event).toEqual({ kind: 'die', id: 'a'.repeat(64), name: null, image: null, status: null, project_id: null, at: '2026-01-02T03:04:05.000Z' });
    const s = CONDUCTOR_METHODS.report_state.args.parse({ host: 'compute1', state, taken_at: '2026-01-02T03:04:05Z' });
    expect(s.taken_at).toBe('2026-01-02T03:04:05.000Z');
    expect(s.state).toEqual(state);
  });

  it('accept a heartbeat whose mode has no reason and that names no CRIU version (JSON drops undefined values)', () => {
    const { criu_version: _dropped, ...noCriu } = state;
    const modes = { post_copy: { ok: false }, pre_copy: { ok: false, reason: null } };
    expect(refusal('report_state', { host: 'compute1', state: { ...noCriu, modes } })).toBeNull();
  });

  it('the manager turns a refusal into InvalidInput', async () => {
    const { ConductorManager } = await import('../../../src/conductor/manager.js');
    const mgr = new ConductorManager({} as never);
    expect(() => mgr.dispatch({} as never, 'report_state', { host: 'compute1', state: 'up' })).toThrow(InvalidInput);
  });
});
