/** The frame of the three container methods: the workload runs on compute1, ends on compute2. */
import { benchAddress, benchName, containerDbsize, fillContainerRedis, removeContainer, runWorkloadContainer } from '../cloud.js';
import type { MethodName, RunResult, Workload } from '../types.js';
import { emptyResult, errMessage, judgeState, probedMigration, type MigrationOutcome, type RunContext } from './common.js';

export interface ContainerSubject {
  name: string;
  id: string;
  ip: string;
  mac: string;
}

export async function containerRun(
  method: MethodName,
  w: Workload,
  ctx: RunContext,
  migrate: (s: ContainerSubject) => Promise<MigrationOutcome>,
  prepare?: (s: ContainerSubject) => Promise<void>,
): Promise<RunResult> {
  const { cloud } = ctx;
  const result = emptyResult(method, w, ctx.run);
  const name = benchName(w, method);
  const addr = benchAddress(ctx.slot);
  result.detail.container = name;
  result.detail.ip = addr.ip;
  try {
    const id = await runWorkloadContainer(cloud, cloud.source, w, name, addr);
    const subject = { name, id, ...addr };
    if (w.probe === 'redis') await fillContainerRedis(cloud.source, name, w.keys);
    if (prepare) await prepare(subject);
    await probedMigration(result, { kind: w.probe, host: addr.ip, port: w.port, netns: cloud.status.fabric.client_netns }, () => migrate(subject), ctx.log);
    await judgeState(result, w, () => containerDbsize(cloud.target, name));
  } catch (e) {
    result.error = errMessage(e);
  } finally {
    await removeContainer(cloud.source, name);
    await removeContainer(cloud.target, name);
  }
  return result;
}
