/**
 * The allow-list a target builds the create body and volume options from (issue 20, hole 1):
 * every field that reaches beyond the container is refused with the field named and what to
 * change; unknown fields at any depth are refused by name; the specs Ferry's own demo, tests and
 * bench make pass and come out equal in meaning, as new objects; host paths may not leave shared
 * storage through ".." or links.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import {
  allowedCreateBody,
  allowedVolumeBody,
  checkCreateBody,
  checkVolume,
  realPathProblems,
  realPathRefusals,
  specProblems,
  specRefusals,
  taggableRef,
  type SpecProblem,
} from '../../../src/compute/docker/allowlist.js';
import { captureSpec, type DockerInspect } from '../../../src/compute/docker/config.js';
import type { DockerDriver } from '../../../src/compute/docker/driver.js';
import { dockerDriverOn } from './docker-driver.js';
import { containerRefusals, decideSource } from '../../../src/compute/docker/prechecks.js';
import { hostFacts } from './host-facts.js';
import type { ContainerSpec, VolumeSpec } from '../../../src/compute/driver.js';
import { ContainerSpecRefused, FerryError } from '../../../src/common/errors.js';
import { PROJECT_LABEL } from '../../../src/objects/host.js';

const SHARED = ['/srv/shared'];
const ID = '0123456789abcdef'.repeat(4);

/** `docker inspect` of a container made with `docker run -d [opts] image` on Docker 20.10: its defaults included. */
function inspect(
  config: Partial<DockerInspect['Config']>,
  hostConfig: Partial<DockerInspect['HostConfig']>,
  extra: Partial<DockerInspect> = {},
): DockerInspect {
  return {
    Id: ID,
    Name: '/demo',
    Image: `sha256:${'e'.repeat(64)}`,
    State: { Status: 'running', Running: true, Pid: 42 },
    Config: {
      Hostname: ID.slice(0, 12),
      Domainname: '',
      User: '',
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/counter'],
      Image: 'ferry/counter:latest',
      Volumes: null,
      WorkingDir: '',
      Entrypoint: null,
      Labels: {},
      ...config,
    },
    HostConfig: {
      Binds: null,
      ContainerIDFile: '',
      LogConfig: { Type: 'json-file', Config: {} },
      NetworkMode: 'default',
      PortBindings: {},
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      VolumeDriver: '',
      VolumesFrom: null,
      CapAdd: null,
      CapDrop: null,
      CgroupnsMode: 'host', // cgroup v1's default (not carried)
      Dns: [],
      DnsOptions: [],
      DnsSearch: [],
      ExtraHosts: null,
      GroupAdd: null,
      IpcMode: 'private',
      Cgroup: '',
      Links: null,
      OomScoreAdj: 0,
      PidMode: '',
      Privileged: false,
      PublishAllPorts: false,
      ReadonlyRootfs: false,
      SecurityOpt: null,
      UTSMode: '',
      UsernsMode: '',
      ShmSize: 67108864,
      Runtime: 'runc',
      Isolation: '',
      CpuShares: 0,
      Memory: 0,
      NanoCpus: 0,
      CgroupParent: '',
      BlkioWeight: 0,
      CpuPeriod: 0,
      CpuQuota: 0,
      CpuRealtimePeriod: 0,
      CpuRealtimeRuntime: 0,
      CpusetCpus: '',
      CpusetMems: '',
      Devices: [],
      DeviceCgroupRules: null,
      DeviceRequests: null,
      KernelMemory: 0,
      MemoryReservation: 0,
      MemorySwap: 0,
      MemorySwappiness: null,
      OomKillDisable: false,
      PidsLimit: null,
      Ulimits: null,
      MaskedPaths: ['/proc/asound', '/proc/acpi'],
      ReadonlyPaths: ['/proc/bus', '/proc/fs'],
      ...hostConfig,
    },
    Mounts: [],
    NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2', MacAddress: '02:42:ac:11:00:02', Aliases: null } } },
    ...extra,
  };
}

const volumes = { 'ferry-state-vol': { driver: 'local', labels: { owner: 'test' }, options: {} } };

/** The containers Ferry's demo (src/devcloud/demo.ts), integration tests and bench run, as the source captures them. */
const demoSpecs: Record<string, ContainerSpec> = {
  counter: captureSpec(inspect({ Env: ['COUNTER_INTERVAL=0.2', 'PATH=/bin'] }, {}), { fabric: ['ferry-fabric'], imageRef: 'ferry/counter:latest' }),
  redis: captureSpec(
    inspect(
      { Cmd: ['redis-server'], Entrypoint: ['docker-entrypoint.sh'], ExposedPorts: { '6379/tcp': {} }, WorkingDir: '/data', Volumes: { '/data': {} } },
      {},
      {
        Mounts: [{ Type: 'volume', Name: 'f'.repeat(64), Source: '/var/lib/docker/volumes/x/_data', Destination: '/data', Driver: 'local', RW: true }],
      },
    ),
    { fabric: ['ferry-fabric'], imageRef: 'ferry/redis:latest' },
  ),
  // test/integration/compute/state.test.ts: named volume, env, label, workdir, memory, restart policy, published port
  state: captureSpec(
    inspect(
      { Env: ['COUNTER_INTERVAL=0.5', 'EXTRA=yes please'], Labels: { 'ferry.test': 'state' }, WorkingDir: '/tmp', ExposedPorts: { '8080/tcp': {} } },
      {
        Binds: ['ferry-state-vol:/vol'],
        Memory: 67108864,
        MemorySwap: 134217728,
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
        PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: '18080' }] },
      },
      {
        Mounts: [
          { Type: 'volume', Name: 'ferry-state-vol', Source: '/var/lib/docker/volumes/ferry-state-vol/_data', Destination: '/vol', Driver: 'local', RW: true },
        ],
      },
    ),
    { fabric: ['ferry-fabric'], imageRef: 'ferry/counter:latest', volumes },
  ),
  // demo.ts / stream.test.ts / bench: the shared tenant network with a fixed address and MAC
  stream: captureSpec(
    inspect(
      { Env: ['STREAM_INTERVAL_US=50000'], MacAddress: '02:42:0a:fa:00:28' },
      { NetworkMode: 'ferry-fabric' },
      {
        NetworkSettings: {
          Networks: {
            'ferry-fabric': {
              IPAddress: '10.250.0.40',
              MacAddress: '02:42:0a:fa:00:28',
              Aliases: ['demo-stream', ID.slice(0, 12)],
              IPAMConfig: { IPv4Address: '10.250.0.40' },
            },
          },
        },
      },
    ),
    { fabric: ['ferry-fabric'], imageRef: 'ferry/stream:latest' },
  ),
  // prechecks.test.ts: a bind mount on shared storage
  sharedBind: captureSpec(
    inspect({}, { Binds: ['/srv/shared/data:/shared'] }, { Mounts: [{ Type: 'bind', Source: '/srv/shared/data', Destination: '/shared', RW: true }] }),
    { fabric: [], imageRef: 'ferry/counter:latest' },
  ),
  // memory.test.ts: another entrypoint; and the usual knobs a user sets
  knobs: captureSpec(
    inspect(
      {
        Entrypoint: ['sh'],
        Cmd: ['-c', 'sleep 600'],
        User: '1000:1000',
        StopSignal: 'SIGINT',
        StopTimeout: 20,
        Healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000, Retries: 3 },
      },
      {
        Tmpfs: { '/run': 'size=64m,mode=1777,noexec' },
        Init: true,
        CapAdd: ['NET_BIND_SERVICE', 'CAP_CHOWN'],
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shmmax': '1000000' },
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 4096 }],
        PidsLimit: 100,
        NanoCpus: 500_000_000,
        CpusetCpus: '0-1',
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
        Mounts: [
          { Type: 'volume', Source: 'ferry-state-vol', Target: '/m' },
          { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024 } } as { Type: string },
        ],
        Dns: ['10.0.0.2'],
        ExtraHosts: ['db:10.0.0.3'],
        ReadonlyRootfs: true,
      },
    ),
    { fabric: [], imageRef: 'ferry/counter:latest', volumes },
  ),
};

function objectsIn(v: unknown, into = new Set<object>()): Set<object> {
  if (typeof v === 'object' && v !== null) {
    into.add(v);
    for (const x of Object.values(v)) objectsIn(x, into);
  }
  return into;
}

test.each(Object.keys(demoSpecs))('the %s container Ferry runs is accepted and rebuilt equal in meaning, as new objects', (which) => {
  const spec = demoSpecs[which];
  const { body, problems } = checkCreateBody(spec.create, SHARED);
  expect(problems).toEqual([]);
  expect(specProblems(spec, SHARED)).toEqual([]);
  expect(containerRefusals(spec, SHARED)).toEqual([]);
  expect(body).toEqual(spec.create);
  const input = objectsIn(spec.create);
  for (const o of objectsIn(body)) expect(input.has(o)).toBe(false);
});

test('the demo specs keep what matters: ports, restart policy, memory, network address', () => {
  const state = allowedCreateBody(demoSpecs.state, SHARED) as { HostConfig: Record<string, unknown>; Env: string[] };
  expect(state.HostConfig.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '', HostPort: '18080' }] });
  expect(state.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 3 });
  expect(state.HostConfig.Memory).toBe(67108864);
  expect(state.HostConfig.Binds).toEqual(['ferry-state-vol:/vol']);
  expect(state.Env).toContain('EXTRA=yes please');
  const stream = allowedCreateBody(demoSpecs.stream, SHARED) as { MacAddress: string; NetworkingConfig: unknown };
  expect(stream.MacAddress).toBe('02:42:0a:fa:00:28');
  expect(stream.NetworkingConfig).toEqual({ EndpointsConfig: { 'ferry-fabric': { IPAMConfig: { IPv4Address: '10.250.0.40' }, Aliases: ['demo-stream'] } } });
});

/** A clean spec whose create body gets `hostConfig` (or top-level `top`) merged in. */
function crafted(hostConfig: Record<string, unknown>, top: Record<string, unknown> = {}): ContainerSpec {
  const base = demoSpecs.counter;
  return { ...base, create: { ...base.create, ...top, HostConfig: { ...(base.create.HostConfig as object), ...hostConfig } } };
}

test("the container's project label moves with it (project-scoped callers find it on the target too)", () => {
  const spec = crafted({}, { Labels: { [PROJECT_LABEL]: 'p-demo', other: 'x' } });
  expect(specProblems(spec, SHARED)).toEqual([]);
  expect(allowedCreateBody(spec, SHARED).Labels).toEqual({ [PROJECT_LABEL]: 'p-demo', other: 'x' });
});

const onlyProblem = (problems: SpecProblem[]): SpecProblem => {
  expect(problems).toHaveLength(1);
  return problems[0];
};

// Each row: what a crafted body holds, the field named, and the hint that only that rule gives
// (an unknown-field refusal says something else: removing the rule fails its row).
const refusedFields: [string, ContainerSpec, RegExp, RegExp][] = [
  ['Privileged', crafted({ Privileged: true }), /^create\.HostConfig\.Privileged$/, /without --privileged/],
  ['a host bind of /', crafted({ Binds: ['/:/hostfs'] }), /^create\.HostConfig\.Binds\[0\]$/, /host path \/ is not on shared storage/],
  ['a bind with shared propagation', crafted({ Binds: ['/srv/shared/x:/x:rshared'] }), /Binds\[0\]$/, /bind option "rshared" is not allowed/],
  ['host PID namespace', crafted({ PidMode: 'host' }), /\.PidMode$/, /remove --pid/],
  ["another container's PID namespace", crafted({ PidMode: 'container:other' }), /\.PidMode$/, /remove --pid/],
  ['host IPC namespace', crafted({ IpcMode: 'host' }), /\.IpcMode$/, /remove --ipc/],
  ["another container's IPC namespace", crafted({ IpcMode: 'container:other' }), /\.IpcMode$/, /remove --ipc/],
  ['host UTS namespace', crafted({ UTSMode: 'host' }), /\.UTSMode$/, /remove --uts/],
  ['host user namespace', crafted({ UsernsMode: 'host' }), /\.UsernsMode$/, /remove --userns/],
  ['host cgroup namespace', crafted({ CgroupnsMode: 'host' }), /\.CgroupnsMode$/, /remove --cgroupns/],
  ['host network', crafted({ NetworkMode: 'host' }), /\.NetworkMode$/, /another namespace/],
  ["another container's network", crafted({ NetworkMode: 'container:other' }), /\.NetworkMode$/, /another namespace/],
  [
    'the host network as an endpoint',
    crafted({}, { NetworkingConfig: { EndpointsConfig: { host: {} } } }),
    /\.EndpointsConfig\["host"\]$/,
    /is the host's network/,
  ],
  ['CapAdd ALL', crafted({ CapAdd: ['ALL'] }), /\.CapAdd\[0\]$/, /beyond Docker's defaults: recreate the container without --cap-add ALL/],
  ['CapAdd SYS_ADMIN', crafted({ CapAdd: ['CHOWN', 'CAP_SYS_ADMIN'] }), /\.CapAdd\[1\]$/, /--cap-add CAP_SYS_ADMIN/],
  ['unconfined seccomp', crafted({ SecurityOpt: ['seccomp=unconfined'] }), /\.SecurityOpt\[0\]$/, /only no-new-privileges is allowed/],
  ['unconfined AppArmor', crafted({ SecurityOpt: ['apparmor=unconfined'] }), /\.SecurityOpt\[0\]$/, /only no-new-privileges is allowed/],
  ['SELinux labels off', crafted({ SecurityOpt: ['label=disable'] }), /\.SecurityOpt\[0\]$/, /only no-new-privileges is allowed/],
  ['unmasked /proc', crafted({ SecurityOpt: ['systempaths=unconfined'] }), /\.SecurityOpt\[0\]$/, /only no-new-privileges is allowed/],
  ['Devices', crafted({ Devices: [{ PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'rwm' }] }), /\.Devices$/, /remove --device/],
  ['DeviceRequests', crafted({ DeviceRequests: [{ Driver: 'nvidia', Count: -1 }] }), /\.DeviceRequests$/, /remove --gpus/],
  ['DeviceCgroupRules', crafted({ DeviceCgroupRules: ['b *:* rwm'] }), /\.DeviceCgroupRules$/, /remove --device-cgroup-rule/],
  ['CgroupParent', crafted({ CgroupParent: '/' }), /\.CgroupParent$/, /remove --cgroup-parent/],
  ['a host sysctl', crafted({ Sysctls: { 'kernel.core_pattern': '|/tmp/x' } }), /\.Sysctls\["kernel\.core_pattern"\]$/, /is the host's, not the container's/],
  ['a log driver that leaves the host', crafted({ LogConfig: { Type: 'syslog', Config: {} } }), /\.LogConfig\.Type$/, /use json-file or local/],
  [
    'an unknown log option',
    crafted({ LogConfig: { Type: 'json-file', Config: { 'syslog-address': 'tcp://x' } } }),
    /\.LogConfig\.Config\.syslog-address$/,
    /log option/,
  ],
  ['VolumeDriver', crafted({ VolumeDriver: 'rexray' }), /\.VolumeDriver$/, /remove --volume-driver/],
  ['VolumesFrom', crafted({ VolumesFrom: ['other'] }), /\.VolumesFrom$/, /--volumes-from/],
  [
    'a bind Mount of /',
    crafted({ Mounts: [{ Type: 'bind', Source: '/', Target: '/hostfs' }] }),
    /\.Mounts\[0\]\.Source$/,
    /host path \/ is not on shared storage/,
  ],
  [
    'a volume Mount with a driver',
    crafted({
      Mounts: [
        { Type: 'volume', Source: 'v', Target: '/v', VolumeOptions: { DriverConfig: { Name: 'local', Options: { type: 'none', o: 'bind', device: '/' } } } },
      ],
    }),
    /\.VolumeOptions\.DriverConfig$/,
    /may not choose a volume driver/,
  ],
  [
    'a Mount of another type',
    crafted({ Mounts: [{ Type: 'npipe', Source: 'x', Target: '/x' }] }),
    /\.Mounts\[0\]\.Type$/,
    /only volume, bind \(on shared storage\) and tmpfs mounts move/,
  ],
  ['OomKillDisable', crafted({ OomKillDisable: true }), /\.OomKillDisable$/, /remove --oom-kill-disable/],
  ['a negative OomScoreAdj', crafted({ OomScoreAdj: -1000 }), /\.OomScoreAdj$/, /shields the container/],
  ['real-time CPU time', crafted({ CpuRealtimeRuntime: 950000 }), /\.CpuRealtimeRuntime$/, /remove --cpu-rt-runtime/],
  ['another runtime', crafted({ Runtime: 'kata' }), /\.Runtime$/, /only runc restores checkpoints/],
  ['AutoRemove', crafted({ AutoRemove: true }), /\.AutoRemove$/, /without --rm/],
  ['a TTY', crafted({}, { Tty: true }), /^create\.Tty$/, /without -t/],
];

test.each(refusedFields)('%s is refused, the field named, with what to change', (_what, spec, field, hint) => {
  const p = onlyProblem(specProblems(spec, SHARED));
  expect(p.field).toMatch(field);
  expect(p.problem).toMatch(hint);
  expect(() => allowedCreateBody(spec, SHARED)).toThrow(ContainerSpecRefused);
  const refusals = containerRefusals(spec, SHARED).filter((r) => r.reason === 'container_spec');
  expect(refusals).toHaveLength(1);
  expect(refusals[0].message).toContain(p.field);
});

test('unknown fields are refused by name at any depth, not passed through', () => {
  const cases: [ContainerSpec, string][] = [
    [crafted({ Isolation: 'hyperv' }), 'create.HostConfig.Isolation'],
    [crafted({ RestartPolicy: { Name: 'no', MaximumRetryCount: 0, Secret: 1 } }), 'create.HostConfig.RestartPolicy.Secret'],
    [crafted({}, { Volumes: { '/x': {} } }), 'create.Volumes'],
    [
      crafted({}, { NetworkingConfig: { EndpointsConfig: { 'ferry-fabric': { DriverOpts: { 'com.docker.network.x': '1' } } } } }),
      'create.NetworkingConfig.EndpointsConfig["ferry-fabric"].DriverOpts',
    ],
    [
      crafted({ Mounts: [{ Type: 'bind', Source: '/srv/shared/a', Target: '/a', BindOptions: { CreateMountpoint: true } }] }),
      'create.HostConfig.Mounts[0].BindOptions.CreateMountpoint',
    ],
    [crafted({ Ulimits: [{ Name: 'nofile', Soft: 1, Hard: 2, Extra: 3 }] }), 'create.HostConfig.Ulimits[0].Extra'],
    [crafted({}, JSON.parse('{"Labels": {"__proto__": "x"}}') as Record<string, unknown>), 'create.Labels["__proto__"]'],
  ];
  for (const [spec, field] of cases) {
    const p = onlyProblem(specProblems(spec, SHARED));
    expect(p.field).toBe(field);
    expect(p.problem).toMatch(/a field Ferry does not know how to move|is not a key Ferry accepts/);
    // and the rebuilt body leaves it out even where the caller ignores the problems
    expect(JSON.stringify(checkCreateBody(spec.create, SHARED).body)).not.toMatch(/Isolation|Secret|"Volumes"|DriverOpts|CreateMountpoint|Extra/);
  }
});

test('every offending field of one spec is named, in one error with a stable code', () => {
  const spec = crafted({ Privileged: true, Binds: ['/:/hostfs'], PidMode: 'host', CapAdd: ['ALL'] });
  let err: unknown;
  try {
    allowedCreateBody(spec, SHARED);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FerryError);
  expect((err as FerryError).code).toBe('container_spec_refused');
  expect([...((err as FerryError).details.fields as string[])].sort()).toEqual([
    'create.HostConfig.Binds[0]',
    'create.HostConfig.CapAdd[0]',
    'create.HostConfig.PidMode',
    'create.HostConfig.Privileged',
  ]);
  expect(specRefusals(spec, SHARED).map((r) => r.reason)).toEqual(['container_spec', 'container_spec', 'container_spec', 'container_spec']);
  // the source's pre-check applies the same rules
  const source = hostFacts({ host: 'compute1' });
  const bySource = decideSource({ source, dest: null, destHost: 'compute2', spec, sharedStorage: SHARED });
  expect(bySource.filter((r) => r.reason === 'container_spec')).toHaveLength(4);
});

test('a bind that climbs out of shared storage with ".." is refused, also one that would stay inside', () => {
  const out = onlyProblem(specProblems(crafted({ Binds: ['/srv/shared/../../etc:/etc2'] }), SHARED));
  expect(out.problem).toMatch(/holds "\.\."/);
  const inside = onlyProblem(specProblems(crafted({ Binds: ['/srv/shared/a/../b:/b'] }), SHARED));
  expect(inside.problem).toMatch(/holds "\.\."/);
  const mount = onlyProblem(specProblems(crafted({ Mounts: [{ Type: 'bind', Source: '/srv/shared/../../', Target: '/h' }] }), SHARED));
  expect(mount.field).toBe('create.HostConfig.Mounts[0].Source');
  expect(specProblems(crafted({ Binds: ['/srv/shared/a/b:/b:ro'] }), SHARED)).toEqual([]);
  // the prefix alone is not "under": /srv/sharedX is another directory
  expect(onlyProblem(specProblems(crafted({ Binds: ['/srv/sharedX:/x'] }), SHARED)).problem).toMatch(/not on shared storage/);
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-allowlist-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('a link inside shared storage that leads outside is refused once resolved (realpath), a plain directory passes', async () => {
  const shared = path.join(tmp, 'shared');
  const outside = path.join(tmp, 'outside');
  fs.mkdirSync(path.join(shared, 'plain'), { recursive: true });
  fs.mkdirSync(outside);
  fs.symlinkSync(outside, path.join(shared, 'escape'));
  fs.symlinkSync('/', path.join(shared, 'root'));
  const roots = [shared];
  // lexically all three are under shared storage: only resolving the links tells them apart
  for (const p of ['plain', 'escape', 'root']) expect(specProblems(crafted({ Binds: [`${shared}/${p}:/x`] }), roots)).toEqual([]);
  const check = (p: string) => realPathProblems([{ field: 'f', path: p }], roots);
  expect(await check(`${shared}/plain`)).toEqual([]);
  expect(await check(`${shared}/plain/not/made/yet`)).toEqual([]); // Docker creates it, under shared storage
  expect((await check(`${shared}/escape`))[0]?.problem).toMatch(new RegExp(`leads to ${outside} through a link, outside shared storage`));
  expect((await check(`${shared}/escape/not/made/yet`))[0]?.problem).toMatch(/through a link, outside shared storage/);
  expect((await check(`${shared}/root/etc`))[0]?.problem).toMatch(/leads to \/etc through a link/);
  // what the driver's source and target pre-checks add: a container_spec refusal naming the field
  const viaLink = crafted({ Binds: [`${shared}/escape:/x`] });
  expect(await realPathRefusals(viaLink, roots)).toEqual([
    {
      reason: 'container_spec',
      message: expect.stringMatching(/^container demo: create\.HostConfig\.Binds\[0\] host path .* leads to .* through a link/) as unknown as string,
    },
  ]);
  // a dangling link is not taken for a directory Docker would make under shared storage
  fs.symlinkSync(path.join(outside, 'later'), path.join(shared, 'dangling'));
  expect((await check(`${shared}/dangling/x`))[0]?.problem).toMatch(/cannot be resolved .*is a link to a path that does not exist/);
  // a shared root that is itself reached through a link still counts as shared
  fs.symlinkSync(shared, path.join(tmp, 'shared-link'));
  expect(await realPathProblems([{ field: 'f', path: `${tmp}/shared-link/plain` }], [`${tmp}/shared-link`])).toEqual([]);
});

const vol = (over: Partial<VolumeSpec>): VolumeSpec => ({
  name: 'data',
  destination: '/data',
  driver: 'local',
  labels: { owner: 'test' },
  options: {},
  read_only: false,
  ...over,
});

test('volumes: plain local, tmpfs and binds of shared storage are rebuilt; other drivers, types and a bind of / are refused', async () => {
  const plain = vol({});
  const body = await allowedVolumeBody(plain, SHARED);
  expect(body).toEqual({ Name: 'data', Driver: 'local', DriverOpts: {}, Labels: { owner: 'test' } });
  expect(body.Labels).not.toBe(plain.labels);
  expect(body.DriverOpts).not.toBe(plain.options);
  expect(checkVolume(vol({ options: { type: 'tmpfs', device: 'tmpfs', o: 'size=64m,uid=1000' } }), 'v', SHARED).problems).toEqual([]);
  expect(checkVolume(vol({ driver: '' }), 'v', SHARED).body?.Driver).toBe('local');

  const refused: [VolumeSpec, RegExp, RegExp][] = [
    [vol({ options: { type: 'none', o: 'bind', device: '/' } }), /options\.device$/, /host path \/ is not on shared storage/],
    [vol({ options: { type: 'none', o: 'bind', device: '/srv/shared/../../etc' } }), /options\.device$/, /holds "\.\."/],
    [vol({ options: { type: 'none', o: 'bind,shared', device: '/srv/shared/v' } }), /options\.o$/, /bind volume options shared are not allowed/],
    [vol({ options: { type: 'nfs', o: 'addr=10.0.0.1', device: ':/export' } }), /options\.type$/, /mounts storage from elsewhere/],
    [vol({ options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,exec,suid' } }), /options\.o$/, /tmpfs options exec,suid are not allowed/],
    [vol({ driver: 'rexray' }), /\.driver$/, /only local volumes move/],
    [
      vol({ options: { type: 'none', o: 'bind', device: '/srv/shared/v', size: '1' } as Record<string, string> }),
      /options\.size$/,
      /a field Ferry does not know how to move/,
    ],
    [vol({ name: '../etc' }), /\.name$/, /a volume name is a plain name/],
  ];
  for (const [v, field, hint] of refused) {
    const p = onlyProblem(checkVolume(v, 'v', SHARED).problems);
    expect(p.field).toMatch(field);
    expect(p.problem).toMatch(hint);
    await expect(allowedVolumeBody(v, SHARED)).rejects.toThrow(ContainerSpecRefused);
    const spec = { ...demoSpecs.counter, volumes: [v] };
    expect(containerRefusals(spec, SHARED).map((r) => r.reason)).toEqual(['container_spec']);
  }
  expect(checkVolume(vol({ options: { type: 'none', o: 'bind', device: '/srv/shared/v' } }), 'v', SHARED).body?.DriverOpts).toEqual({
    type: 'none',
    o: 'bind',
    device: '/srv/shared/v',
  });
});

test('a bind volume whose device leads out of shared storage through a link is refused when it is created', async () => {
  const shared = path.join(tmp, 'vshared');
  fs.mkdirSync(shared);
  fs.symlinkSync('/etc', path.join(shared, 'etc'));
  await expect(allowedVolumeBody(vol({ options: { type: 'none', o: 'bind', device: `${shared}/etc` } }), [shared])).rejects.toThrow(
    /leads to \/etc through a link/,
  );
});

/** A DockerDriver whose engine is a recorder: what createShell and createVolume would send. */
function recordingDriver(shared: string[]): { driver: DockerDriver; sent: unknown[] } {
  const sent: unknown[] = [];
  const engine = {
    createContainer: (body: unknown) => {
      sent.push(body);
      return Promise.resolve({ id: 'c'.repeat(64) });
    },
    createVolume: (body: unknown) => {
      sent.push(body);
      return Promise.resolve({});
    },
    // every name is free on this engine; a tag is recorded as what it asked for
    getImage: (name: string) => ({
      inspect: () => Promise.reject(Object.assign(new Error(`no such image ${name}`), { statusCode: 404 })),
      tag: (opts: { repo: string; tag: string }) => {
        sent.push({ tagged: name, ...opts });
        return Promise.resolve({});
      },
    }),
  };
  const driver = dockerDriverOn(engine, { workDir: tmp, sharedStoragePaths: shared, fabricNetworks: ['ferry-fabric'] });
  return { driver, sent };
}

test("the one name a target tags is the spec's own image reference, well formed (issue 20 hole 7): others are refused before the engine is asked", async () => {
  const { driver, sent } = recordingDriver(SHARED);
  const id = demoSpecs.state.image.id;
  const bad = [
    'ferry/counter@sha256:' + 'a'.repeat(64),
    'Ferry/UPPER:latest',
    '../etc:latest',
    'ferry/counter',
    'ferry/counter:',
    'a:b:c',
    'ferry/counter:latest --force',
    `${'x'.repeat(250)}:latest`,
  ];
  for (const ref of bad) {
    const spec = { ...demoSpecs.state, image: { id, ref } };
    expect(specProblems(spec, SHARED).map((p) => p.field)).toEqual(['image.ref']);
    await expect(driver.createShell(spec, 'mig-tag')).rejects.toThrow(/image\.ref .* is not an image name the target may tag/);
  }
  expect(specProblems({ ...demoSpecs.state, image: { id: 'sha256:short', ref: null } }, SHARED).map((p) => p.field)).toEqual(['image.id']);
  // a create body naming another image than the spec's is refused too
  const other = { ...demoSpecs.state, create: { ...demoSpecs.state.create, Image: 'nginx:latest' } };
  expect(specProblems(other, SHARED).map((p) => p.field)).toEqual(['create.Image']);
  expect(sent).toEqual([]);

  // the source carries only such a name (with :latest when it has no tag), a digest reference as the ID alone
  expect(taggableRef('ferry/counter')).toBe('ferry/counter:latest');
  expect(taggableRef('localhost:5000/team/app')).toBe('localhost:5000/team/app:latest');
  expect(taggableRef('localhost:5000/team/app:v2')).toBe('localhost:5000/team/app:v2');
  expect(taggableRef('ferry/counter@sha256:' + 'a'.repeat(64))).toBeNull();
  for (const ref of ['ferry/counter:latest', 'registry.example.com:5000/team/app:v1.2_rc-1', 'localhost/x__y:1']) {
    expect(specProblems({ ...demoSpecs.state, image: { id, ref } }, SHARED)).toEqual([]);
  }
  await driver.createShell({ ...demoSpecs.state, image: { id, ref: 'ferry/counter:latest' } }, 'mig-ok');
  expect(sent[0]).toEqual({ tagged: id, repo: 'ferry/counter', tag: 'latest' });
  expect((sent[1] as { Image: string }).Image).toBe('ferry/counter:latest');
  expect(sent).toHaveLength(2);
});

test('the target creates from the allow-list: a spec that changed after the checks is refused and nothing reaches the engine', async () => {
  const { driver, sent } = recordingDriver(SHARED);
  const clean = { ...demoSpecs.state, image: { id: demoSpecs.state.image.id, ref: null } };
  await driver.createShell(clean, 'mig-1');
  expect(sent).toHaveLength(1);
  const body = sent[0] as Record<string, unknown>;
  expect(body).toEqual({ ...clean.create, Labels: { 'ferry.test': 'state', 'org.openstack.ferry.migration': 'mig-1' }, Image: clean.image.id, name: 'demo' });
  for (const o of objectsIn(body)) expect(objectsIn(clean.create).has(o)).toBe(false);

  const changed = { ...clean, create: { ...clean.create, HostConfig: { ...(clean.create.HostConfig as object), Privileged: true, Binds: ['/:/hostfs'] } } };
  await expect(driver.createShell(changed, 'mig-2')).rejects.toThrow(/create\.HostConfig\.Binds\[0\].*create\.HostConfig\.Privileged/);
  await expect(driver.createVolume(vol({ options: { type: 'none', o: 'bind', device: '/' } }))).rejects.toThrow(ContainerSpecRefused);
  expect(sent).toHaveLength(1);
  await driver.createVolume(vol({}));
  expect(sent[1]).toEqual({ Name: 'data', Driver: 'local', DriverOpts: {}, Labels: { owner: 'test' } });
  // built, not passed on: fields the source sent as null (Docker's default) are not in what is sent
  const nulls = { ...clean, create: { ...clean.create, Domainname: null, HostConfig: { ...(clean.create.HostConfig as object), Init: null, Tmpfs: null } } };
  await driver.createShell(nulls, 'mig-4');
  expect(sent[2]).toEqual({ ...body, Labels: { 'ferry.test': 'state', 'org.openstack.ferry.migration': 'mig-4' } });
});

test('at create time a bind through a link out of shared storage is refused before the engine is asked', async () => {
  const shared = path.join(tmp, 'cshared');
  fs.mkdirSync(shared);
  fs.symlinkSync('/', path.join(shared, 'hostfs'));
  const { driver, sent } = recordingDriver([shared]);
  const spec = crafted({ Binds: [`${shared}/hostfs:/hostfs`] });
  expect(specProblems(spec, [shared])).toEqual([]); // lexically fine
  await expect(driver.createShell({ ...spec, image: { id: spec.image.id, ref: null } }, 'mig-3')).rejects.toThrow(/leads to \/ through a link/);
  expect(sent).toEqual([]);
});

test('the source judges what a container really runs with: host namespaces, devices, GPUs, another runtime are refused, not left behind', () => {
  const captured = (hostConfig: Partial<DockerInspect['HostConfig']>) => captureSpec(inspect({}, hostConfig), { fabric: [], imageRef: 'ferry/counter:latest' });
  const cases: [Partial<DockerInspect['HostConfig']>, string][] = [
    [{ PidMode: 'host' }, 'create.HostConfig.PidMode'],
    [{ UsernsMode: 'host' }, 'create.HostConfig.UsernsMode'],
    [{ Privileged: true }, 'create.HostConfig.Privileged'],
    [{ Devices: [{ PathOnHost: '/dev/kvm', PathInContainer: '/dev/kvm' }] }, 'create.HostConfig.Devices'],
    [{ DeviceRequests: [{ Driver: 'nvidia', Count: -1 }] }, 'create.HostConfig.DeviceRequests'],
    [{ DeviceCgroupRules: ['c 10:* rwm'] }, 'create.HostConfig.DeviceCgroupRules'],
    [{ Runtime: 'kata' }, 'create.HostConfig.Runtime'],
    [{ VolumesFrom: ['other'] }, 'create.HostConfig.VolumesFrom'],
  ];
  for (const [hc, field] of cases) {
    expect(specProblems(captured(hc), SHARED).map((p) => p.field)).toEqual([field]);
    expect(containerRefusals(captured(hc), SHARED).map((r) => r.reason)).toContain('container_spec');
  }
});
