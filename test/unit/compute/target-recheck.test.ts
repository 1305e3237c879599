/**
 * The target re-checks the container spec the source sent with the source's own rules
 * (containerRefusals), judged with the target's shared storage: a spec the source let through
 * (a modified or lying source) is still refused at pre_migration.
 */
import { expect, test } from '@jest/globals';
import { containerRefusals, decideDestination, type TargetState } from '../../../src/compute/docker/prechecks.js';
import type { ContainerSpec } from '../../../src/compute/driver.js';
import { hostFacts } from './host-facts.js';

const IMG = `sha256:${'e'.repeat(64)}`;
const dest = hostFacts({ host: 'compute2' });

const spec: ContainerSpec = {
  id: 'a'.repeat(64),
  name: 'web',
  image: { id: IMG, ref: null },
  running: true,
  tty: false,
  privileged: false,
  auto_remove: false,
  network_mode: 'bridge',
  networks: [],
  volumes: [],
  binds: [],
  ports: [],
  devices: [],
  restart_policy: 'no',
  memory_bytes_estimate: null,
  create: {},
};

const state: TargetState = { names: [], usedHostPorts: [], networkIps: {}, networks: ['bridge'], volumes: [], imagePresent: true };

function target(s: Partial<ContainerSpec>, sharedStorage?: string[]): string[] {
  return decideDestination({ dest, source: null, sourceHost: 'compute1', spec: { ...spec, ...s }, state, sharedStorage }).map((r) => r.reason);
}

test('privileged, host devices, host bind mounts, TTY, --rm and a foreign network namespace are refused by the target too', () => {
  expect(target({})).toEqual([]);
  expect(target({ privileged: true })).toEqual(['privileged']);
  expect(target({ devices: ['/dev/sda:/dev/sda:rwm'] })).toEqual(['host_devices']);
  expect(target({ binds: [{ source: '/etc', destination: '/host-etc', read_only: false }] })).toEqual(['host_bind_mount']);
  expect(target({ tty: true })).toEqual(['tty_attached']);
  expect(target({ auto_remove: true })).toEqual(['auto_remove']);
  expect(target({ network_mode: 'host' })).toEqual(['network_mode']);
  expect(target({ network_mode: 'container:other' })).toEqual(['network_mode']);
});

test("bind mounts are judged by the target's own shared storage, not the source's", () => {
  const bind = { binds: [{ source: '/srv/nfs/data', destination: '/d', read_only: false }] };
  expect(target(bind)).toEqual(['host_bind_mount']);
  expect(target(bind, ['/srv/nfs'])).toEqual([]);
  expect(target(bind, ['/srv/other'])).toEqual(['host_bind_mount']);
});

test('the same rule function as the source: every container refusal appears on the target', () => {
  const bad = { ...spec, privileged: true, tty: true, devices: ['/dev/kvm'], binds: [{ source: '/', destination: '/host', read_only: true }] };
  const sourceSays = containerRefusals(bad, []).map((r) => r.reason);
  const targetSays = decideDestination({ dest, source: null, sourceHost: 'compute1', spec: bad, state: null }).map((r) => r.reason);
  expect(sourceSays.length).toBeGreaterThan(3);
  for (const reason of sourceSays) expect(targetSays).toContain(reason);
});

test('a clean summary does not hide the create body: Privileged and a bind of / in it are refused by the target', () => {
  const crafted = { ...spec, create: { Image: IMG, HostConfig: { Privileged: true, Binds: ['/:/hostfs'] } } };
  const refusals = decideDestination({ dest, source: null, sourceHost: 'compute1', spec: crafted, state, sharedStorage: ['/srv/nfs'] });
  expect(refusals.map((r) => r.reason)).toEqual(['container_spec', 'container_spec']);
  expect(refusals[0].message).toMatch(/create\.HostConfig\.Privileged is true: .*without --privileged/);
  expect(refusals[1].message).toMatch(/create\.HostConfig\.Binds\[0\] host path \/ is not on shared storage/);
  // not even a target that shares "/" takes it: the root is never shared storage
  expect(target({ create: { HostConfig: { Binds: ['/:/hostfs'] } } }, ['/'])).toEqual(['container_spec']);
});
