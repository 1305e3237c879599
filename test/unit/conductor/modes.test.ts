/** The conductor's memory modes (src/conductor/modes/): the scheduler's choice, and each mode's phase table as the flow walks it. */
import { describe, expect, it } from '@jest/globals';
import { FLOW_MODES, chooseMode, flowModeNamed, flowModeOfRestore } from '../../../src/conductor/modes/index.js';
import { PROGRESS, canTransition } from '../../../src/conductor/statemachine.js';
import type { PostMigrationResult } from '../../../src/compute/steps.js';
import type { MigrationStatus } from '../../../src/objects/migration.js';

describe('the mode of a new migration', () => {
  it('is post-copy when asked for, else stop-and-copy (pre-copy is never chosen: no driver can pre-dump)', () => {
    expect(chooseMode(true)).toBe('post-copy');
    expect(chooseMode(false)).toBe('stop-and-copy');
  });
});

describe("each mode's phases after the send", () => {
  it.each(FLOW_MODES.map((m) => [m.name, m] as const))('%s: one restore first, cleanup last, a settle step only with its settle', (_name, mode) => {
    const steps = mode.phases.map((p) => p.step);
    expect(steps[0]).toBe('restore');
    expect(steps[steps.length - 1]).toBe('cleanup');
    expect(steps.filter((s) => s === 'restore')).toHaveLength(1);
    expect(steps.includes('settle')).toBe(mode.settle !== undefined);
  });

  it.each(FLOW_MODES.map((m) => [m.name, m] as const))(
    '%s: every phase shows progress, and the statuses follow the state machine from running',
    (_name, mode) => {
      let from: MigrationStatus = 'running';
      for (const p of mode.phases) {
        expect(PROGRESS[`${p.status}:${p.phase}`]).toBeDefined();
        expect(canTransition(from, p.status)).toBe(true);
        from = p.status;
      }
    },
  );

  it('the tables as docs/architecture.md describes them', () => {
    expect(flowModeNamed('stop-and-copy').phases.map((p) => `${p.status}/${p.phase}`)).toEqual(['post-migrating/restore', 'post-migrating/cleanup']);
    expect(flowModeNamed('post-copy').phases.map((p) => `${p.status}/${p.phase}`)).toEqual(['running/restore', 'running/post-copy', 'post-migrating/cleanup']);
    // Older conductors saved the settle step under this name: a migration they started resumes.
    expect(flowModeNamed('post-copy').settle?.step).toBe('post_copy_done');
  });

  it('a restore result names its mode; an unknown mode name is stop-and-copy', () => {
    expect(flowModeOfRestore({ post_copy: true } as PostMigrationResult).name).toBe('post-copy');
    expect(flowModeOfRestore({ post_copy: false } as PostMigrationResult).name).toBe('stop-and-copy');
    expect(flowModeNamed('pre-copy').name).toBe('stop-and-copy');
  });
});
