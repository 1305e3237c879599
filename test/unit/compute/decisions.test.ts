import { expect, test } from '@jest/globals';
import { buildCreateBody, captureSpec, connectionsPreserved, type DockerInspect } from '../../../src/compute/docker/config.js';
import { judgeCriu, parseCriuVersion, versionAtLeast } from '../../../src/compute/docker/criu.js';
import { interfaceFor } from '../../../src/compute/docker/network.js';
import { containerRefusals, decideDestination, decideSource, underShared, type TargetState } from '../../../src/compute/docker/prechecks.js';
import { hostFacts } from './host-facts.js';

const ID = 'abcdef0123456789'.repeat(4);
const IMG = `sha256:${'e'.repeat(64)}`;

function inspect(over: Partial<DockerInspect> = {}): DockerInspect {
  return {
    Id: ID,
    Name: '/web',
    Image: IMG,
    State: { Status: 'running', Running: true, Pid: 42 },
    Config: {
      Hostname: 'abcdef012345',
      Env: ['A=1'],
      Cmd: ['/bin/counter'],
      Entrypoint: null,
      Labels: { l: 'v' },
      WorkingDir: '/data',
      User: '1000',
      ExposedPorts: { '8080/tcp': {} },
      Image: 'ferry/counter',
    },
    HostConfig: {
      NetworkMode: 'ferry-fabric',
      Binds: ['named:/data'],
      PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: '18080' }] },
      RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
      Memory: 67108864,
      NanoCpus: 500000000,
      Privileged: false,
    },
    Mounts: [
      { Type: 'volume', Name: 'named', Source: '/var/lib/docker/volumes/named/_data', Destination: '/data', Driver: 'local', RW: true },
      { Type: 'volume', Name: 'f00', Source: '/x', Destination: '/anon', Driver: 'local', RW: true },
    ],
    NetworkSettings: { Networks: { 'ferry-fabric': { IPAddress: '10.250.0.20', MacAddress: '02:42:0a:fa:00:14', Aliases: ['web', 'abcdef012345'] } } },
    ...over,
  };
}

test('config capture and recreate: fabric IP+MAC, env, limits, volumes bound by name', () => {
  const spec = captureSpec(inspect(), { fabric: ['ferry-fabric'], imageRef: 'ferry/counter:latest' });
  expect(spec.name).toBe('web');
  expect(spec.networks).toEqual([{ name: 'ferry-fabric', shared: true, ip: '10.250.0.20', mac: '02:42:0a:fa:00:14', aliases: ['web'] }]);
  expect(spec.ports).toEqual([{ container_port: '8080/tcp', host_ip: '', host_port: '18080' }]);
  expect(spec.volumes.map((v) => v.name)).toEqual(['named', 'f00']);
  expect(connectionsPreserved(spec)).toBe(true);
  const body = buildCreateBody(spec, 'ferry/counter:latest', 'mig-1');
  expect(body).toMatchObject({
    name: 'web',
    Image: 'ferry/counter:latest',
    Hostname: 'abcdef012345',
    Env: ['A=1'],
    Cmd: ['/bin/counter'],
    WorkingDir: '/data',
    User: '1000',
    Labels: { l: 'v' },
    MacAddress: '02:42:0a:fa:00:14',
    HostConfig: {
      NetworkMode: 'ferry-fabric',
      Memory: 67108864,
      NanoCpus: 500000000,
      RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
      PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: '18080' }] },
      Binds: ['named:/data', 'f00:/anon'], // the anonymous volume keeps its name on the target
    },
    NetworkingConfig: { EndpointsConfig: { 'ferry-fabric': { IPAMConfig: { IPv4Address: '10.250.0.20' }, Aliases: ['web'] } } },
  });
  expect(body).not.toHaveProperty('Entrypoint'); // null: the image's own
});

test('default bridge: no fixed IP/MAC, connections not preserved', () => {
  const spec = captureSpec(
    inspect({
      HostConfig: { NetworkMode: 'default' },
      NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2', MacAddress: '02:42:ac:11:00:02' } } },
    }),
    { fabric: ['ferry-fabric'], imageRef: null },
  );
  expect(connectionsPreserved(spec)).toBe(false);
  const body = buildCreateBody(spec, IMG, 'mig-1');
  expect(body.MacAddress).toBeUndefined();
  expect(body.NetworkingConfig).toEqual({ EndpointsConfig: {} });
});

test('CRIU judgement', () => {
  expect(parseCriuVersion('Version: 4.2.1\n')).toBe('4.2.1');
  expect(versionAtLeast('4.2.1', '4.2')).toBe(true);
  expect(versionAtLeast('4.10', '4.2')).toBe(true);
  expect(versionAtLeast('4.1.1', '4.2')).toBe(false);
  expect(judgeCriu('criu', '4.2', null, null).error).toMatch(/not found.*install CRIU 4.2/);
  expect(judgeCriu('criu', '4.2', { code: 0, text: 'Version: 3.17.1' }, null).error).toMatch(/3.17.1 is older than 4.2/);
  expect(judgeCriu('criu', '4.2', { code: 0, text: 'Version: 4.2.1' }, { code: 1, text: 'vdso: Unexpected rt vDSO area bounds' }).error).toMatch(
    /criu check.*vDSO/,
  );
  expect(judgeCriu('criu', '4.2', { code: 0, text: 'Version: 4.2.1' }, { code: 0, text: 'Looks good.' })).toEqual({
    version: '4.2.1',
    ok: true,
    error: null,
    readsLimitsFromProc: false,
  });
});

test('source decisions: each refusal says what to change', () => {
  const spec = captureSpec(inspect(), { fabric: ['ferry-fabric'], imageRef: null });
  const reasons = (f: Parameters<typeof decideSource>[0]) => decideSource(f).map((r) => r.reason);
  expect(reasons({ source: hostFacts(), dest: hostFacts({ host: 'compute2' }), destHost: 'compute2', spec, sharedStorage: [] })).toEqual([]);
  expect(reasons({ source: hostFacts(), dest: null, destHost: 'compute1', spec, sharedStorage: [] })).toEqual(['same_host']);
  const off = decideSource({ source: hostFacts({ experimental: false }), dest: null, destHost: 'compute2', spec, sharedStorage: [] });
  expect(off[0].message).toMatch(/"experimental": true/);
  const arch = decideSource({ source: hostFacts(), dest: hostFacts({ host: 'c2', architecture: 'aarch64' }), destHost: 'c2', spec, sharedStorage: [] });
  expect(arch.map((r) => r.reason)).toEqual(['architecture_mismatch']);
  expect(arch[0].message).toMatch(/choose a target with x86_64/);
  expect(
    reasons({ source: hostFacts({ criu_ok: false, criu_error: 'CRIU 4.1.1 is older than 4.2' }), dest: null, destHost: 'c2', spec, sharedStorage: [] }),
  ).toEqual(['criu_unusable']);
});

test('container refusals', () => {
  const base = captureSpec(inspect(), { fabric: ['ferry-fabric'], imageRef: null });
  expect(containerRefusals({ ...base, tty: true, privileged: true, auto_remove: true, running: false }, []).map((r) => r.reason)).toEqual([
    'not_running',
    'tty_attached',
    'privileged',
    'auto_remove',
  ]);
  expect(containerRefusals({ ...base, network_mode: 'host' }, []).map((r) => r.reason)).toEqual(['network_mode']);
  const bind = { ...base, binds: [{ source: '/srv/nfs/data', destination: '/d', read_only: false }] };
  expect(containerRefusals(bind, []).map((r) => r.reason)).toEqual(['host_bind_mount']);
  expect(containerRefusals(bind, ['/srv/nfs'])).toEqual([]);
  expect(underShared('/srv/nfsother', ['/srv/nfs'])).toBe(false);
  expect(underShared('/srv/nfs', ['/srv/nfs/'])).toBe(true);
});

test('destination decisions: name, port, IP, network, volume, disk', () => {
  const spec = captureSpec(inspect(), { fabric: ['ferry-fabric'], imageRef: null });
  const state: TargetState = {
    names: [],
    usedHostPorts: [],
    networkIps: { 'ferry-fabric': [] },
    networks: ['bridge', 'ferry-fabric'],
    volumes: [],
    imagePresent: true,
  };
  const d = (s: Partial<TargetState>, extra: Partial<Parameters<typeof decideDestination>[0]> = {}) =>
    decideDestination({ dest: hostFacts({ host: 'compute2' }), source: hostFacts(), sourceHost: 'compute1', spec, state: { ...state, ...s }, ...extra }).map(
      (r) => r.reason,
    );
  expect(d({})).toEqual([]);
  expect(d({ names: ['web'] })).toEqual(['name_taken']);
  expect(d({ usedHostPorts: [{ host_ip: '0.0.0.0', host_port: '18080', proto: 'tcp' }] })).toEqual(['port_in_use']);
  expect(d({ usedHostPorts: [{ host_ip: '0.0.0.0', host_port: '18080', proto: 'udp' }] })).toEqual([]);
  expect(d({ networkIps: { 'ferry-fabric': ['10.250.0.20'] } })).toEqual(['ip_in_use']);
  expect(d({ networks: ['bridge'] })).toEqual(['network_missing']);
  expect(d({ volumes: ['named'] })).toEqual(['volume_exists']);
  expect(d({}, { freeBytesNeeded: 2e12 })).toEqual(['disk_full']);
  expect(d({}, { sourceHost: 'compute2' })).toEqual(['same_host']);
});

test('the interface holding an address, from `ip -o -4 addr`', () => {
  const out = '1: lo    inet 127.0.0.1/8 scope host lo\n7: eth0@if9    inet 10.250.0.21/24 brd 10.250.0.255 scope global eth0\n';
  expect(interfaceFor(out, '10.250.0.21')).toBe('eth0');
  expect(interfaceFor(out, '10.250.0.22')).toBeNull();
});
