/** A compute host's heartbeat state as the conductor's unit tests report it: a healthy Docker + CRIU host. */
import type { HostModes, HostState } from '../../src/objects/host.js';

export function hostState(containers: HostState['containers'] = [], modes?: HostModes | null): HostState {
  return {
    docker_version: '20.10',
    api_version: '1.41',
    criu_version: '4.2.1',
    criu_ok: true,
    architecture: 'x86_64',
    migration_address: 'x:1',
    containers,
    ...(modes === undefined ? {} : { modes }),
  } as HostState;
}
