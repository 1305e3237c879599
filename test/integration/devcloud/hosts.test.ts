/**
 * The two compute hosts are separate Docker engines that can really migrate: a counter is
 * checkpointed on compute1 through the Engine API, its checkpoint moved to compute2, and
 * started there from the checkpoint; the count goes on. And the tenant network reaches a
 * container from the client namespace.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { cloud, host } from '../../helpers/cloud.js';
import { engine, lastNumber, logs, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { sleep } from '../../../src/common/sleep.js';

const pexec = promisify(execFile);

const c1 = engine('compute1');
const c2 = engine('compute2');

async function waitForCount(d: Docker, id: string, atLeast: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const n = await lastNumber(d, id);
    if (n >= atLeast) return n;
    if (Date.now() > deadline) throw new Error(`count stuck at ${n}`);
    await sleep(200);
  }
}

describe('compute engines', () => {
  it('each answers /version over its own socket, experimental on', async () => {
    for (const d of [c1, c2]) {
      const v = await d.version();
      expect(v.ApiVersion).toBeTruthy();
      const info = (await d.info()) as { ExperimentalBuild: boolean; DockerRootDir: string };
      expect(info.ExperimentalBuild).toBe(true);
    }
    const roots = await Promise.all([c1, c2].map(async (d) => ((await d.info()) as { DockerRootDir: string }).DockerRootDir));
    expect(roots[0]).not.toBe(roots[1]);
    expect(roots).toEqual([host('compute1').data_root, host('compute2').data_root]);
  });

  it('have separate containers and images', async () => {
    const name = uniqueName('sep');
    const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name });
    try {
      const on1 = await c1.listContainers({ all: true, filters: { name: [name] } });
      const on2 = await c2.listContainers({ all: true, filters: { name: [name] } });
      expect(on1).toHaveLength(1);
      expect(on2).toHaveLength(0);
    } finally {
      await ct.remove({ force: true });
    }
    const images1 = (await c1.listImages()).flatMap((i) => i.RepoTags ?? []);
    expect(images1).toEqual(expect.arrayContaining(['ferry/counter:latest', 'ferry/redis:latest', 'ferry/stream:latest']));
  });
});

describe('checkpoint on compute1, restore on compute2', () => {
  const name = uniqueName('counter');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ckpt-'));
  let hadImageOn2 = true;

  afterAll(async () => {
    await removeQuietly(c1, name);
    await removeQuietly(c2, name);
    if (!hadImageOn2)
      await c2
        .getImage('ferry/counter:latest')
        .remove({ force: true })
        .catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('the count goes on from where it was, not from 0', async () => {
    const src = await c1.createContainer({ Image: 'ferry/counter:latest', name, Env: ['COUNTER_INTERVAL=0.2'] });
    await src.start();
    const before = await waitForCount(c1, src.id, 5);

    // The target engine needs the image; no registry, so docker save | docker load.
    hadImageOn2 = await c2
      .getImage('ferry/counter:latest')
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (!hadImageOn2) {
      const tar = await c1.getImage('ferry/counter:latest').get();
      await c2.loadImage(tar);
    }

    // dockerode has the call, its typings do not.
    await (src as unknown as { createCheckpoint(o: object): Promise<unknown> }).createCheckpoint({ CheckpointID: 'm1', CheckpointDir: workDir, Exit: true });
    const frozenAt = await lastNumber(c1, src.id);
    expect(frozenAt).toBeGreaterThanOrEqual(before);
    expect((await src.inspect()).State.Running).toBe(false);

    const dst = await c2.createContainer({ Image: 'ferry/counter:latest', name, Env: ['COUNTER_INTERVAL=0.2'] });
    const target = path.join(host('compute2').data_root, 'containers', dst.id, 'checkpoints', 'm1');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    await pexec('cp', ['-a', path.join(workDir, 'm1'), target]);
    // POST /containers/{id}/start?checkpoint=m1 with an empty body (docker-modem's _query/_body).
    await dst.start({ _query: { checkpoint: 'm1' }, _body: {} } as object);

    await waitForCount(c2, dst.id, frozenAt + 2);
    const out = (await logs(c2, dst.id)).trim().split('\n').map(Number);
    // The restored process continues the sequence: its first line follows the last one printed on compute1.
    expect(out[0]).toBeGreaterThanOrEqual(frozenAt);
    expect(out[0]).toBeLessThanOrEqual(frozenAt + 1);
    expect(out).not.toContain(1);
  });
});

describe('the ferry-fabric tenant network', () => {
  const name = uniqueName('stream');
  afterAll(() => removeQuietly(c1, name));

  it('reaches a container with a fixed IP and MAC from the client namespace', async () => {
    const ip = '10.250.0.30';
    const mac = '02:42:0a:fa:00:1e';
    const ct = await c1.createContainer({
      Image: 'ferry/stream:latest',
      name,
      MacAddress: mac,
      NetworkingConfig: { EndpointsConfig: { 'ferry-fabric': { IPAMConfig: { IPv4Address: ip } } } },
      HostConfig: { NetworkMode: 'ferry-fabric' },
    } as Docker.ContainerCreateOptions);
    await ct.start();
    const net = (await ct.inspect()).NetworkSettings.Networks['ferry-fabric'];
    expect(net.IPAddress).toBe(ip);
    expect(net.MacAddress).toBe(mac);
    // The client reads the first lines of the stream over the fabric.
    let out = '';
    for (let attempt = 0; attempt < 20 && !/^1\n2\n3\n/.test(out); attempt++) {
      const r = await pexec('ip', ['netns', 'exec', cloud().fabric.client_netns, 'timeout', '1', 'busybox', 'nc', ip, '9000']).catch(
        (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
      );
      out = r.stdout;
      if (!out) await sleep(200);
    }
    expect(out).toMatch(/^1\n2\n3\n/);
  });
});
