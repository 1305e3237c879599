/**
 * The source's pre-check (describeContainer, then sourceRefusals) reads the container's init PID
 * from the inspection the spec was captured from: one inspect, not a second one for the
 * credentials check. A spec that did not come from this driver still has its PID looked up.
 * The agent's own capabilities (fixed for its life) are read from /proc once per driver.
 */
import fs from 'node:fs';
import { expect, jest, test } from '@jest/globals';
import type { DockerInspect } from '../../../src/compute/docker/config.js';
import { dockerDriverOn } from './docker-driver.js';

const ID = 'abcdef0123456789'.repeat(4);
const IMG = `sha256:${'e'.repeat(64)}`;

const inspection: DockerInspect = {
  Id: ID,
  Name: '/web',
  Image: IMG,
  // This test's own process: a tree /proc really has.
  State: { Status: 'running', Running: true, Pid: process.pid },
  Config: {
    Hostname: 'abcdef012345',
    Env: [],
    Cmd: ['/bin/counter'],
    Entrypoint: null,
    Labels: {},
    WorkingDir: '/',
    User: '',
    ExposedPorts: {},
    Image: 'ferry/counter',
  },
  HostConfig: { NetworkMode: 'bridge', Binds: [], PortBindings: {}, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, Privileged: false },
  Mounts: [],
  NetworkSettings: { Networks: {} },
};

function driverWithEngine() {
  const inspected: string[] = [];
  const engine = {
    info: () => Promise.resolve({ DockerRootDir: '/nonexistent/docker', Architecture: 'x86_64', KernelVersion: '6.1', ExperimentalBuild: true }),
    version: () => Promise.resolve({ Version: '20.10.24', ApiVersion: '1.41' }),
    getContainer: (id: string) => ({
      inspect: () => {
        inspected.push(id);
        return Promise.resolve(inspection);
      },
      stats: () => Promise.resolve({ memory_stats: { usage: 1 << 20 } }),
    }),
    getImage: () => ({ inspect: () => Promise.resolve({ Id: IMG }) }),
    getVolume: () => ({ inspect: () => Promise.reject(new Error('no volume')) }),
  };
  // A CRIU that is not there: its status is judged without running anything.
  const driver = dockerDriverOn(engine, { host: 'compute1', criuBinary: '/nonexistent/criu' });
  return { driver, inspected };
}

test('describe then pre-check: the container is inspected once', async () => {
  const { driver, inspected } = driverWithEngine();
  const spec = await driver.describeContainer('web');
  expect(spec.running).toBe(true);
  await driver.sourceRefusals(spec, null, 'compute2');
  await driver.sourceRefusals(spec, null, 'compute2');
  expect(inspected).toEqual(['web']);
});

test('a spec not described by this driver (e.g. a copy) has its PID looked up by inspect', async () => {
  const { driver, inspected } = driverWithEngine();
  const spec = { ...(await driver.describeContainer('web')) };
  await driver.sourceRefusals(spec, null, 'compute2');
  expect(inspected).toEqual(['web', ID]);
});

test('a stopped container: no credentials check, no second inspect', async () => {
  const { driver, inspected } = driverWithEngine();
  const spec = { ...(await driver.describeContainer('web')), running: false };
  await driver.sourceRefusals(spec, null, 'compute2');
  expect(inspected).toEqual(['web']);
});

test("the agent's own capabilities are read once, not on every pre-check", async () => {
  const { driver } = driverWithEngine();
  const reads = jest.spyOn(fs, 'readFileSync');
  try {
    const spec = await driver.describeContainer('web');
    for (let i = 0; i < 3; i++) await driver.sourceRefusals(spec, null, 'compute2');
    expect(reads.mock.calls.filter(([p]) => p === '/proc/self/status')).toHaveLength(1);
  } finally {
    reads.mockRestore();
  }
});
