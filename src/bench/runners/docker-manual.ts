/**
 * Method 2: the manual procedure with the Docker 20.10 CLI (docs/platform-facts.md): checkpoint into a
 * directory on compute1, `docker create` the same container (network, --ip, --mac-address) on
 * compute2, copy the checkpoint into its checkpoints folder (for the services, their writable layer
 * and volume too), `docker start --checkpoint`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { withRuncConfShared } from '../../compute/docker/runcconf.js';
import type { CloudHost } from '../../devcloud/status.js';
import { dk, sh, treeBytes, volumeName, workloadCreateArgs } from '../cloud.js';
import type { RunResult, Workload } from '../types.js';
import type { Method, MigrationOutcome, RunContext } from './common.js';
import { containerRun, type ContainerSubject } from './container.js';

/** Copy the container's writable layer (overlay2's upper dir) and its volume to the new container; the bytes copied. */
async function copyDiskState(ctx: RunContext, w: Workload, name: string, targetId: string): Promise<number> {
  const { source, target } = ctx.cloud;
  const upper = async (h: CloudHost, ref: string) => (await dk(h, ['inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', ref])).stdout;
  const pairs: [string, string][] = [[await upper(source, name), await upper(target, targetId)]];
  if (w.volume) {
    const mount = async (h: CloudHost) => (await dk(h, ['volume', 'inspect', '-f', '{{.Mountpoint}}', volumeName(name)])).stdout;
    pairs.push([await mount(source), await mount(target)]);
  }
  let bytes = 0;
  for (const [from, to] of pairs) {
    await sh('cp', ['-a', `${from}/.`, `${to}/`]);
    bytes += treeBytes(from);
  }
  return bytes;
}

async function migrateManual(ctx: RunContext, w: Workload, s: ContainerSubject): Promise<MigrationOutcome> {
  const { cloud } = ctx;
  const ck = 'bench-ck';
  const dir = path.join(cloud.workDir, `manual-${s.name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    const t0 = Date.now();
    // Every CRIU run through runc reads /etc/criu/runc.conf: held shared, as Ferry's driver does.
    const c = await withRuncConfShared(() => dk(cloud.source, ['checkpoint', 'create', '--checkpoint-dir', dir, s.name, ck], { timeoutMs: 600_000 }));
    const t1 = Date.now();
    const created = await dk(cloud.target, ['create', ...workloadCreateArgs(cloud, w, s.name, s)]);
    const id = created.stdout.split('\n').pop() ?? '';
    const t2 = Date.now();
    const dest = path.join(cloud.target.data_root, 'containers', id, 'checkpoints');
    fs.mkdirSync(dest, { recursive: true });
    await sh('cp', ['-a', path.join(dir, ck), path.join(dest, ck)]);
    // Services keep their state in files: the writable layer and the volume are copied by hand too
    // (the checkpoint holds neither; CRIU refuses to restore open files that are not there).
    const disk = w.client ? await copyDiskState(ctx, w, s.name, id) : 0;
    const t3 = Date.now();
    await withRuncConfShared(() => dk(cloud.target, ['start', '--checkpoint', ck, s.name], { timeoutMs: 600_000 }));
    const t4 = Date.now();
    const bytes = treeBytes(path.join(dir, ck)) + disk;
    return {
      tool_freeze_ms: t4 - t0,
      total_ms: t4 - t0,
      checkpoint_ms: t1 - t0,
      transfer_ms: t3 - t2,
      restore_ms: t4 - t3,
      memory_bytes: bytes,
      transferred_bytes: bytes,
      detail: { create_ms: t2 - t1, checkpoint_cli_ms: c.ms },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const dockerManual: Method = {
  name: 'docker-manual',
  label: 'manual Docker CLI procedure',
  supports: () => true,
  run: (w: Workload, ctx: RunContext): Promise<RunResult> => containerRun('docker-manual', w, ctx, (s) => migrateManual(ctx, w, s)),
};
