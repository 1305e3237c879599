/** The heartbeat's content: the host's facts, its containers, and their memory when the driver can tell. */
import { describe, expect, it } from '@jest/globals';
import { hostState } from '../../../src/compute/manager.js';
import { agentWith, fakeDriver } from './fake-driver.js';
import { hostFacts } from './host-facts.js';

const containers = [{ id: 'a'.repeat(64), name: 'web', image: 'nginx', status: 'running' }];
const base = { hostFacts: async () => hostFacts({ host: 'c2' }), listContainers: async () => containers };

describe('heartbeat (report_state) content', () => {
  it('carries the memory the containers use and the host total', async () => {
    const agent = agentWith(fakeDriver(new Map(), [], { ...base, memoryUse: async () => ({ used_bytes: 3 * 2 ** 30, total_bytes: 16 * 2 ** 30 }) }));
    const s = await hostState(agent);
    expect(s.containers).toEqual(containers);
    expect(s.criu_ok).toBe(true);
    expect([s.memory_used_bytes, s.memory_total_bytes]).toEqual([3 * 2 ** 30, 16 * 2 ** 30]);
  });
  it('reports memory as unknown when the driver cannot tell or fails, never failing the heartbeat', async () => {
    // fakeDriver rejects every call it was not given: here memoryUse.
    const failing = await hostState(agentWith(fakeDriver(new Map(), [], base)));
    expect([failing.memory_used_bytes, failing.memory_total_bytes]).toEqual([null, null]);
    expect(failing.containers).toHaveLength(1);
    const partial = await hostState(agentWith(fakeDriver(new Map(), [], { ...base, memoryUse: async () => ({ used_bytes: null, total_bytes: 8 }) })));
    expect([partial.memory_used_bytes, partial.memory_total_bytes]).toEqual([null, 8]);
  });
});
