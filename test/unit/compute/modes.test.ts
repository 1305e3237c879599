/**
 * The agent's memory modes (src/compute/modes/): what a host reports it offers, and that pre-copy,
 * which no driver can do, is refused with its reason when a conductor of an earlier release asks
 * for it (it could, in principle: its scheduler picked pre-copy where both hosts said they can).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { MigrationAgent } from '../../../src/compute/agent.js';
import { InvalidMigrationState } from '../../../src/common/errors.js';
import type { EngineDriver, LazyPagesCapability } from '../../../src/compute/driver.js';
import { fakeDriver, spec } from './fake-driver.js';

const tracking = async () => ({ ok: true, reason: null, pre_copy: { ok: true, reason: null } });

function agent(extra: Partial<EngineDriver>, permitPostCopy: boolean): MigrationAgent {
  return new MigrationAgent({
    driver: fakeDriver(new Map(), [], extra),
    workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-agent-')),
    bindHost: '127.0.0.1',
    port: 0,
    maxTransferBytes: 1e6,
    permitPostCopy,
  });
}

const lazyPages = (postCopySupport: LazyPagesCapability['postCopySupport']) => ({ lazyPages: { postCopySupport } as LazyPagesCapability });

describe("a host's modes as its agent reports them", () => {
  it('post-copy only where the deployment permits it; pre-copy never, even where the kernel tracks dirty memory', async () => {
    const forbidden = await agent(lazyPages(tracking), false).modes();
    expect(forbidden.post_copy).toEqual({ ok: false, reason: 'post-copy is not permitted on c2 ([compute] permit_post_copy = false)' });
    expect(forbidden.pre_copy?.ok).toBe(false);
    expect(forbidden.pre_copy?.reason).toMatch(/cannot pre-dump/);
    const permitted = await agent(lazyPages(tracking), true).modes();
    expect(permitted.post_copy).toEqual({ ok: true, reason: null });
    expect(permitted.pre_copy).toEqual({ ok: false, reason: "the c2 engine driver cannot pre-dump (Docker's checkpoint API has no pre-dump)" });
  });

  it("reports the kernel's reason for pre-copy where it lacks dirty tracking", async () => {
    const support = async () => ({ ok: true, reason: null, pre_copy: { ok: false, reason: 'no memory dirty tracking (mem_dirty_track)' } });
    expect((await agent(lazyPages(support), true).modes()).pre_copy).toEqual({ ok: false, reason: 'no memory dirty tracking (mem_dirty_track)' });
  });

  it('an engine without lazy pages offers neither, saying so', async () => {
    const none = await agent({}, true).modes();
    expect(none.post_copy).toEqual({ ok: false, reason: 'the c2 engine driver has no lazy-pages support' });
    expect(none.pre_copy).toEqual({ ok: false, reason: 'the c2 engine driver has no lazy-pages support' });
  });

  it('a failing support check is reported as the reason, not thrown', async () => {
    const broken = await agent(
      lazyPages(async () => Promise.reject(new Error('criu check hung'))),
      true,
    ).modes();
    expect(broken.post_copy).toEqual({ ok: false, reason: 'criu check hung' });
  });
});

describe('live_migration in a mode this agent does not offer', () => {
  it('pre-copy (from a conductor of an earlier release) is refused with the reason, before anything is frozen', async () => {
    const calls: string[] = [];
    const state = new Map([['cid', { exists: true, running: true, status: 'running', name: 'web' }]]);
    const a = new MigrationAgent({
      driver: fakeDriver(state, calls, {
        ...lazyPages(tracking),
        describeContainer: async () => spec,
        sourceRefusals: async () => [],
        hostFacts: async () => ({}) as never,
        cpuInfo: async () => null,
      }),
      workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-agent-')),
      bindHost: '127.0.0.1',
      port: 0,
      maxTransferBytes: 1e6,
    });
    const r = a.records.create('m-pre', 'source', 'c3');
    r.spec = spec;
    r.container_id = spec.id;
    a.records.save(r);
    const refused = a.liveMigration({ migration_id: 'm-pre', upload: { address: '127.0.0.1:1', token: 't' }, mode: 'pre-copy' });
    await expect(refused).rejects.toBeInstanceOf(InvalidMigrationState);
    await expect(refused).rejects.toThrow("pre-copy is not possible on c2: the c2 engine driver cannot pre-dump (Docker's checkpoint API has no pre-dump)");
    expect(a.load('m-pre')?.stage).toBe('checked');
    expect(calls).toEqual([]);
  });
});
