/** A compute host's facts as the pre-checks read them, for unit tests; `over` changes what a test is about. */
import type { HostFacts } from '../../../src/compute/driver.js';

export function hostFacts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    host: 'compute1',
    architecture: 'x86_64',
    kernel: '6',
    engine: 'docker',
    engine_version: '20.10',
    api_version: '1.41',
    experimental: true,
    criu_version: '4.2.1',
    criu_ok: true,
    criu_error: null,
    fast_checkpoint: false,
    migration_address: '',
    free_disk_bytes: 1e12,
    ...over,
  };
}
