/**
 * Method 1b: Ferry's engine alone — two MigrationAgents in this process, driven by the
 * conductor's own MigrationFlow in this process too (no API, conductor service or bus), on data-channel ports 9600+ (the dev cloud's
 * ferry-compute services use 9518/9519). A second source agent with [compute] fast_checkpoint
 * shows the containerd fast path (ctr-style checkpoint with an image path).
 */
import path from 'node:path';
import { MigrationAgent } from '../../compute/agent.js';
import { DockerDriver } from '../../compute/docker/driver.js';
import { InProcessConductor } from '../../conductor/embedded.js';
import type { CloudHost } from '../../devcloud/status.js';
import type { BenchCloud } from '../cloud.js';
import type { MethodName, RunResult, Workload } from '../types.js';
import type { Method, MigrationOutcome, RunContext } from './common.js';
import { containerRun, type ContainerSubject } from './container.js';

const PORTS = { source: 9600, target: 9601, sourceFast: 9602 };

function makeAgent(cloud: BenchCloud, h: CloudHost, port: number, fast: boolean): MigrationAgent {
  const workDir = path.join(cloud.status.state_dir, 'ferry', `bench-${h.name}${fast ? '-fast' : ''}`);
  const driver = new DockerDriver({
    host: h.name,
    dockerUrl: h.docker_host,
    dockerRoot: h.data_root,
    workDir,
    criuBinary: cloud.status.criu.binary,
    criuMinVersion: '4.2',
    sharedStoragePaths: [],
    fabricNetworks: [cloud.status.fabric.network],
    fastCheckpoint: fast,
    containerdAddress: path.join(h.exec_root, 'containerd', 'containerd.sock'),
  });
  return new MigrationAgent({ driver, workDir, bindHost: '127.0.0.1', port, maxTransferBytes: 64 * 1024 ** 3 });
}

function engineMethod(name: MethodName, label: string, fast: boolean): Method {
  let agents: { source: MigrationAgent; target: MigrationAgent } | null = null;
  const ensure = async (cloud: BenchCloud) => {
    if (agents) return agents;
    const source = makeAgent(cloud, cloud.source, fast ? PORTS.sourceFast : PORTS.source, fast);
    // Each engine method has its own target agent (and port): two agents on one port would clash.
    const target = makeAgent(cloud, cloud.target, fast ? PORTS.target + 2 : PORTS.target, false);
    await source.start();
    await target.start();
    agents = { source, target };
    return agents;
  };
  const migrate = async (cloud: BenchCloud, s: ContainerSubject): Promise<MigrationOutcome> => {
    const a = await ensure(cloud);
    const { migration: r, pre, post } = await new InProcessConductor([a.source, a.target]).migrate(s.name, a.source.host, a.target.host);
    if (r.status !== 'completed' || r.error) throw new Error(`engine migration ${r.status}: ${r.error}`);
    return {
      tool_freeze_ms: r.freeze_ms,
      total_ms: r.total_ms,
      checkpoint_ms: r.checkpoint_ms,
      transfer_ms: r.transfer_ms,
      restore_ms: r.restore_ms,
      memory_bytes: r.memory_bytes,
      transferred_bytes: r.transferred_bytes,
      detail: { image_ms: pre?.image_ms ?? 0, create_ms: pre?.create_ms ?? 0, place_ms: post?.place_ms ?? 0, start_ms: post?.restore_ms ?? 0 },
    };
  };
  return {
    name,
    label,
    supports: () => true,
    run: (w: Workload, ctx: RunContext): Promise<RunResult> => containerRun(name, w, ctx, (s) => migrate(ctx.cloud, s)),
    async close() {
      if (agents) {
        await agents.source.stop();
        await agents.target.stop();
      }
      agents = null;
    },
  };
}

export const ferryEngine = engineMethod('ferry-engine', 'Ferry engine alone (in-process flow)', false);
export const ferryEngineFast = engineMethod('ferry-engine-fast', 'Ferry engine, containerd fast checkpoint', true);
