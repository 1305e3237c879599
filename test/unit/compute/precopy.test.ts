import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { MigrationAgent } from '../../../src/compute/agent.js';
import type { EngineDriver, HostModes } from '../../../src/compute/driver.js';
import { chooseMode, nextPreCopyStep, type PreDumpRound } from '../../../src/compute/precopy.js';
import { fakeDriver } from './fake-driver.js';

const MB = 1024 * 1024;
const rounds = (...mb: number[]): PreDumpRound[] => mb.map((b) => ({ bytes: b * MB, ms: 100 }));
const policy = { maxRounds: 5, shrinkRatio: 0.8, settleBytes: 8 * MB };

describe('pre-copy rounds', () => {
  it('starts with a pre-dump and goes on while the dirty set shrinks', () => {
    expect(nextPreCopyStep([], policy)).toEqual({ action: 'pre-dump' });
    expect(nextPreCopyStep(rounds(900), policy)).toEqual({ action: 'pre-dump' });
    expect(nextPreCopyStep(rounds(900, 300), policy)).toEqual({ action: 'pre-dump' });
    expect(nextPreCopyStep(rounds(900, 300, 100), policy)).toEqual({ action: 'pre-dump' });
  });

  it('freezes once the last round is small enough', () => {
    expect(nextPreCopyStep(rounds(900, 300, 6), policy)).toEqual({ action: 'freeze', reason: 'settled' });
    expect(nextPreCopyStep(rounds(4), policy)).toEqual({ action: 'freeze', reason: 'settled' });
  });

  it('freezes when a round copies about as much as the one before (the workload dirties memory as fast as it is copied)', () => {
    expect(nextPreCopyStep(rounds(900, 300, 290), policy)).toEqual({ action: 'freeze', reason: 'not-shrinking' });
    expect(nextPreCopyStep(rounds(500, 600), policy)).toEqual({ action: 'freeze', reason: 'not-shrinking' });
  });

  it('never runs more than maxRounds, and a forced completion freezes at once', () => {
    expect(nextPreCopyStep(rounds(1000, 700, 480, 300, 200), policy)).toEqual({ action: 'freeze', reason: 'max-rounds' });
    expect(nextPreCopyStep([], policy, true)).toEqual({ action: 'freeze', reason: 'forced' });
  });
});

describe('the mode of a migration', () => {
  const can: HostModes = { post_copy: { ok: true, reason: null }, pre_copy: { ok: true, reason: null } };
  const cannot: HostModes = { post_copy: { ok: true, reason: null }, pre_copy: { ok: false, reason: 'no memory dirty tracking' } };
  it('is post-copy when asked, pre-copy when both hosts track dirty memory, else stop-and-copy', () => {
    expect(chooseMode(true, can, can)).toBe('post-copy');
    expect(chooseMode(false, can, can)).toBe('pre-copy');
    expect(chooseMode(false, can, cannot)).toBe('stop-and-copy');
    expect(chooseMode(false, cannot, cannot)).toBe('stop-and-copy'); // this machine: the kernel lacks mem_dirty_track
    expect(chooseMode(false, null, can)).toBe('stop-and-copy'); // an agent that does not report its modes
  });
});

describe("a host's modes as its agent reports them", () => {
  const support = async () => ({ ok: true, reason: null, pre_copy: { ok: true, reason: null } });
  const agent = (extra: Partial<EngineDriver>, permitPostCopy: boolean) =>
    new MigrationAgent({
      driver: fakeDriver(new Map(), [], { postCopySupport: support, ...extra }),
      workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-agent-')),
      bindHost: '127.0.0.1',
      port: 0,
      maxTransferBytes: 1e6,
      permitPostCopy,
    });

  it('post-copy only where the deployment permits it; pre-copy only where the kernel tracks dirty memory and the driver can pre-dump', async () => {
    const docker = await agent({ preDump: undefined }, false).modes();
    expect(docker.post_copy).toEqual({ ok: false, reason: 'post-copy is not permitted on c2 ([compute] permit_post_copy = false)' });
    expect(docker.pre_copy.ok).toBe(false);
    expect(docker.pre_copy.reason).toMatch(/cannot pre-dump/);
    const able = await agent({ preDump: async () => ({ bytes: 1, ms: 1 }) }, true).modes();
    expect(able).toEqual({ post_copy: { ok: true, reason: null }, pre_copy: { ok: true, reason: null } });
  });
});
