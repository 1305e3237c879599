/** The agent's record stages (src/compute/records.ts): which may follow which, and the typed refusal. */
import { describe, expect, it } from '@jest/globals';
import { InvalidStageTransition } from '../../../src/common/errors.js';
import { advance, canAdvance, type AgentRecord, type Stage } from '../../../src/compute/records.js';

const record = (stage: Stage, role: AgentRecord['role'] = 'source'): AgentRecord =>
  ({
    migration_id: 'm1',
    role,
    stage,
    peer_host: null,
    container_id: null,
    container_name: null,
    spec: null,
    checkpoint_name: null,
    created_volumes: [],
    image_loaded: false,
    updated_at: '',
  }) as AgentRecord;

describe('agent record stages', () => {
  it('a source goes checked -> frozen -> sent, and back to checked when it was never frozen after all', () => {
    const r = record('checked');
    advance(r, 'frozen');
    advance(r, 'checked');
    advance(r, 'frozen');
    advance(r, 'sent');
    expect(r.stage).toBe('sent');
  });

  it('a target goes checked -> prepared -> received -> restored', () => {
    const r = record('checked', 'target');
    for (const s of ['prepared', 'received', 'restored'] as const) advance(r, s);
    expect(r.stage).toBe('restored');
  });

  it('any unsettled stage may be rolled back; a stage may be set again (steps repeat)', () => {
    for (const s of ['checked', 'prepared', 'frozen', 'sent', 'received'] as const) expect(canAdvance(s, 'rolled_back')).toBe(true);
    for (const s of ['checked', 'prepared', 'frozen', 'sent', 'received', 'restored', 'rolled_back'] as const) expect(canAdvance(s, s)).toBe(true);
  });

  it('refuses what cannot follow, with a typed error, and leaves the record as it was', () => {
    const cases: [Stage, Stage][] = [
      ['restored', 'rolled_back'],
      ['rolled_back', 'frozen'],
      ['sent', 'frozen'],
      ['checked', 'restored'],
      ['prepared', 'restored'],
      ['received', 'sent'],
    ];
    for (const [from, to] of cases) {
      const r = record(from);
      expect(() => advance(r, to)).toThrow(InvalidStageTransition);
      expect(() => advance(r, to)).toThrow(`migration m1 cannot go from ${from} to ${to}`);
      expect(r.stage).toBe(from);
    }
  });
});
