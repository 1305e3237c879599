/** The frame of the three container methods: the workload runs on compute1, ends on compute2. */
import type { CloudHost } from '../../devcloud/status.js';
import { benchAddress, benchName, dk, fillContainerRedis, removeContainer, runWorkloadContainer, waitUntil } from '../cloud.js';
import { clientMigration, serviceClient } from '../service-clients.js';
import type { MethodName, RunResult, Workload } from '../types.js';
import { applyFailure, logLinesSince } from '../verdict.js';
import { emptyResult, errMessage, judgedMigration, type MigrationOutcome, type RunContext, type StateAccess } from './common.js';

export interface ContainerSubject {
  name: string;
  id: string;
  ip: string;
  mac: string;
}

/** No running container of that name on `h` (a stopped one may stay, as `docker checkpoint create` leaves it). */
export async function notRunning(h: CloudHost, name: string): Promise<boolean> {
  const r = await dk(h, ['ps', '-q', '--filter', `name=^/${name}$`], { allowFail: true });
  if (r.code !== 0) throw new Error(`docker ps on ${h.name}: ${r.stderr.trim()}`);
  return r.stdout.trim() === '';
}

/** The state of a container on the source before the move and on the target after it. */
export function containerAccess(source: CloudHost, target: CloudHost, name: string): StateAccess {
  const cli = async (h: CloudHost, args: string[]) =>
    (await dk(h, ['exec', name, 'redis-cli', ...args], { allowFail: true, timeoutMs: 300_000 })).stdout.trim();
  return {
    redisBefore: (args) => cli(source, args),
    redisAfter: (args) => cli(target, args),
    // The counter prints each count on stdout: the engine's log of the process itself.
    counterBefore: async () => (await dk(source, ['logs', '--tail', '5', name])).stdout,
    counterAfter: async (since) => logLinesSince((await dk(target, ['logs', '-t', name])).stdout, since),
    async sourceGone() {
      // The engine may report the checkpointed container as running for a moment after the move.
      await waitUntil(`${name} no longer running on ${source.name}`, () => notRunning(source, name), 10_000, 200).catch(() => undefined);
      return notRunning(source, name);
    },
  };
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
    const netns = cloud.status.fabric.client_netns;
    const access = containerAccess(cloud.source, cloud.target, name);
    if (w.client) {
      const exec = (h: CloudHost) => async (args: string[]) => (await dk(h, ['exec', name, ...args], { timeoutMs: 600_000 })).stdout;
      const service = { host: addr.ip, port: w.port, netns, execAfter: exec(cloud.target), sourceGone: access.sourceGone };
      await clientMigration(result, serviceClient(w, service, exec(cloud.source)), service, () => migrate(subject), ctx.log);
    } else {
      const target = { kind: w.probe, host: addr.ip, port: w.port, netns };
      await judgedMigration(result, w, target, access, () => migrate(subject), ctx.log);
    }
  } catch (e) {
    applyFailure(result, errMessage(e));
  } finally {
    await removeContainer(cloud.source, name);
    await removeContainer(cloud.target, name);
  }
  return result;
}
