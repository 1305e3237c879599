/**
 * Method: Ferry's post-copy at the engine level — the DockerDriver's post-copy steps called in the
 * order an agent calls them (no agents, conductor or data channel: the images and the writable
 * layer, a megabyte or two, are copied with `cp -a`). Before the freeze: the image and the shell
 * on compute2. Then: lazy checkpoint on compute1 (images without memory, page server waiting),
 * copy, lazy restore on compute2, gratuitous ARP; memory follows on demand and in the background.
 * "tool freeze" is the freeze until the restored process runs; "total" is until the last page
 * arrived (and the source exited).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadTlsMaterial } from '../../compute/datachannel/tls.js';
import { DockerDriver } from '../../compute/docker/driver.js';
import { newPageToken } from '../../compute/pagetunnel.js';
import { ensureHostCert, pkiDir } from '../../devcloud/certs.js';
import type { CloudHost } from '../../devcloud/status.js';
import type { BenchCloud } from '../cloud.js';
import { sh } from '../cloud.js';
import type { RunResult, Workload } from '../types.js';
import type { Method, MigrationOutcome, RunContext } from './common.js';
import { containerRun, type ContainerSubject } from './container.js';

function driverFor(cloud: BenchCloud, h: CloudHost): DockerDriver {
  return new DockerDriver({
    host: h.name,
    dockerUrl: h.docker_host,
    dockerRoot: h.data_root,
    workDir: path.join(cloud.status.state_dir, 'ferry', `bench-postcopy-${h.name}`),
    criuBinary: cloud.status.criu.binary,
    criuMinVersion: '4.2',
    sharedStoragePaths: [],
    fabricNetworks: [cloud.status.fabric.network],
    fastCheckpoint: true,
    containerdAddress: path.join(h.exec_root, 'containerd', 'containerd.sock'),
    engineNetns: `/run/netns/${h.netns}`,
  });
}

async function migratePostCopy(cloud: BenchCloud, s: ContainerSubject): Promise<MigrationOutcome> {
  const src = driverFor(cloud, cloud.source);
  const dst = driverFor(cloud, cloud.target);
  const support = await src.lazyPages.postCopySupport();
  if (!support.ok) throw new Error(`post-copy unsupported on ${cloud.source.name}: ${support.reason}`);
  const spec = await src.describeContainer(s.id);
  await src.holdRestarts(spec);
  if (!(await dst.hasImage(spec.image.id))) await dst.importImage(spec.image, await src.exportImage(spec.image));
  const migrationId = `bench-${s.name}`;
  const shell = await dst.createShell(spec, migrationId);
  const ckName = src.checkpointName(migrationId);
  const staging = path.join(await dst.stagingRoot(), migrationId);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    const t0 = Date.now();
    // The pages go through the page tunnel with the hosts' certificates, as the agents run it.
    const tlsOf = (h: CloudHost) => loadTlsMaterial(ensureHostCert(pkiDir(cloud.status.state_dir), h.name));
    const token = newPageToken();
    const ck = await src.lazyPages.checkpointLazy(spec.id, ckName, {
      pageServerPort: 0,
      bindAddress: '127.0.0.1',
      tunnel: { tls: tlsOf(cloud.source), token, peerHost: cloud.target.name },
    });
    const t1 = Date.now();
    let moved = 0;
    for (const p of await src.partsToMove(spec.id, ck, spec)) {
      const to = path.join(staging, p.part.replace(/\//g, '_'));
      await sh('cp', ['-a', p.dir, to]);
      moved += (await sh('du', ['-sb', to])).stdout.split(/\s/).map(Number)[0] || 0;
      if (p.kind === 'checkpoint') await dst.placeCheckpoint(shell, ckName, to);
      if (p.kind === 'rootfs') await dst.applyRootfs(shell, to);
    }
    const t2 = Date.now();
    const r = await dst.lazyPages.restoreLazy(shell, ckName, {
      sourceAddress: '127.0.0.1',
      port: ck.page_server.port,
      tunnel: { tls: tlsOf(cloud.target), token, peerHost: cloud.source.name },
      completionTimeoutMs: 600_000,
    });
    const t3 = Date.now();
    await dst.announce(shell, spec);
    await dst.lazyPages.waitPostCopy(ckName);
    const t4 = Date.now();
    await src.lazyPages.waitPageServer(ckName);
    return {
      tool_freeze_ms: t3 - t0,
      total_ms: t4 - t0,
      checkpoint_ms: t1 - t0,
      transfer_ms: t2 - t1,
      restore_ms: t3 - t2,
      // The memory the pages came from (the image column of the other methods); only `moved` crossed before the restore.
      memory_bytes: spec.memory_bytes_estimate,
      transferred_bytes: moved,
      detail: { lazy_images_bytes: ck.bytes, daemon_ms: r.daemon_ms, start_ms: r.restore_ms, all_pages_after_restore_ms: t4 - t3, all_pages_ms: t4 - t0 },
    };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

export const ferryPostCopy: Method = {
  name: 'ferry-postcopy',
  label: 'Ferry engine, post-copy (lazy pages; total = until all pages arrived)',
  supports: () => true,
  run: (w: Workload, ctx: RunContext): Promise<RunResult> => containerRun('ferry-postcopy', w, ctx, (s) => migratePostCopy(ctx.cloud, s)),
};
