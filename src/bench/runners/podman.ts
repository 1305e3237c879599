/**
 * Method: Podman, the peer a user would pick instead (Debian 12's podman with runc: Debian's crun
 * has no CRIU support). The workload's image is loaded into Podman from compute1's engine
 * (`docker save | podman load`, once); the container runs with `--network host` on a port of
 * 127.0.0.1 of its own and the explicit ulimits root needs here (no CAP_SYS_RESOURCE; see
 * docs/platform-facts.md). The move is Podman's documented one, on the same host:
 *   podman container checkpoint --export F --tcp-established NAME; podman rm NAME;
 *   podman container restore --import F --tcp-established
 * runc hands CRIU /etc/criu/runc.conf here too, so both calls hold the machine's runc.conf lock shared.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { withRuncConfShared } from '../../compute/docker/runcconf.js';
import { DOCKER_CLI } from '../../devcloud/layout.js';
import type { BenchCloud } from '../cloud.js';
import { sh, waitUntil } from '../cloud.js';
import type { RunResult, Workload } from '../types.js';
import { clientMigration, serviceClient } from '../service-clients.js';
import { applyFailure, logLinesSince } from '../verdict.js';
import { emptyResult, errMessage, judgedMigration, type Method, type MigrationOutcome, type RunContext, type StateAccess } from './common.js';
import { originalGone, procStart, redisCli } from './raw-criu.js';

const BASE_PORT = 16560; // 127.0.0.1, slot-dependent
const PODMAN = ['podman', '--runtime', 'runc'];
const ULIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096'];

function podman(args: string[], timeoutMs = 600_000) {
  return sh(PODMAN[0], [...PODMAN.slice(1), ...args], { allowFail: true, timeoutMs });
}

const loaded = new Set<string>();

/** The workload's image in Podman's storage, from compute1's engine. */
async function ensureImage(cloud: BenchCloud, image: string): Promise<void> {
  if (loaded.has(image)) return;
  if ((await podman(['image', 'exists', image])).code !== 0) {
    await new Promise<void>((resolve, reject) => {
      const save = spawn(DOCKER_CLI, ['-H', cloud.source.docker_host, 'save', image], { stdio: ['ignore', 'pipe', 'pipe'] });
      const load = spawn('podman', ['load'], { stdio: ['pipe', 'pipe', 'pipe'] });
      save.stdout.pipe(load.stdin);
      let err = '';
      load.stderr.on('data', (d: Buffer) => (err += d.toString()));
      load.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`podman load of ${image} failed: ${err.trim().slice(-300)}`))));
    });
  }
  loaded.add(image);
}

/** The command the container runs: the workload's, on a port of 127.0.0.1 of its own (host network). */
function command(w: Workload, port: number): string[] {
  if (w.client === 'pgbench') return ['/bin/postgres-start', '-p', String(port), '-c', 'listen_addresses=127.0.0.1'];
  if (w.cmd) return w.cmd.map((a) => a.replace(/\bPORT\b/g, String(port)));
  if (w.probe === 'redis')
    return ['/usr/bin/redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local'];
  const interval = w.env.COUNTER_INTERVAL ?? '1';
  return [
    'sh',
    '-c',
    `mkdir -p /www; httpd -p 127.0.0.1:${port} -h /www; i=0; while :; do i=$((i+1)); echo "$i" > /www/.next && mv /www/.next /www/index.html; echo "$i"; sleep ${interval}; done`,
  ];
}

export const podmanPeer: Method = {
  name: 'podman',
  label: 'Podman 4.3 + runc, checkpoint --export / restore --import (same host)',
  supports: () => true,
  async run(w: Workload, ctx: RunContext): Promise<RunResult> {
    const { cloud } = ctx;
    const result = emptyResult('podman', w, ctx.run);
    const port = BASE_PORT + (ctx.slot % 20);
    const name = `bench-podman-${w.name}-${process.pid.toString(36)}-${ctx.slot}`;
    const archive = path.join(cloud.workDir, `${name}.tar`);
    try {
      await ensureImage(cloud, w.image);
      const env = Object.entries(w.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
      const vol = w.volume ? ['-v', `${name}-vol:${w.volume}`] : [];
      const r = await podman(['run', '-d', '--name', name, '--network', 'host', ...ULIMITS, ...env, ...vol, w.image, ...command(w, port)]);
      if (r.code !== 0) throw new Error(`podman run failed: ${r.stderr.trim()}`);
      if (w.probe === 'redis') {
        await waitUntil(`redis in ${name}`, async () => (await redisCli(port, ['PING'])).stdout === 'PONG', 15_000);
        await redisCli(port, ['DEBUG', 'POPULATE', String(w.keys)]);
        const n = (await redisCli(port, ['DBSIZE'])).stdout;
        if (n !== String(w.keys)) throw new Error(`${name} holds ${n} keys, not ${w.keys}`);
      }
      // The source copy is the original container's process: gone once the restored one runs.
      const pid = Number((await podman(['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim()) || 0;
      const start = pid ? procStart(pid) : null;
      const cli = async (args: string[]) => (await redisCli(port, args)).stdout.trim();
      const access: StateAccess = {
        redisBefore: cli,
        redisAfter: cli,
        counterBefore: async () => (await podman(['logs', '--tail', '5', name])).stdout,
        counterAfter: async (since) => logLinesSince((await podman(['logs', '-t', name])).stdout, since),
        async sourceGone() {
          const running = (await podman(['ps', '-q', '--filter', `name=^${name}$`])).stdout.split('\n').filter(Boolean).length;
          return pid > 0 && originalGone(pid, start) && running <= 1;
        },
      };
      const migrate = async (): Promise<MigrationOutcome> => {
        const t0 = Date.now();
        const c = await withRuncConfShared(() => podman(['container', 'checkpoint', '--export', archive, '--tcp-established', name]));
        if (c.code !== 0) throw new Error(`podman container checkpoint failed: ${c.stderr.trim().slice(-500)}`);
        const t1 = Date.now();
        await podman(['rm', '-f', name]);
        // The import creates the volumes it carries and refuses ones that exist (as on another host they would not).
        if (w.volume) await podman(['volume', 'rm', '-f', `${name}-vol`]);
        const t2 = Date.now();
        const s = await withRuncConfShared(() => podman(['container', 'restore', '--import', archive, '--tcp-established']));
        if (s.code !== 0) throw new Error(`podman container restore failed: ${s.stderr.trim().slice(-500)}`);
        const t3 = Date.now();
        const bytes = fs.statSync(archive).size;
        return {
          tool_freeze_ms: t3 - t0,
          total_ms: t3 - t0,
          checkpoint_ms: t1 - t0,
          transfer_ms: 0,
          restore_ms: t3 - t2,
          memory_bytes: null,
          transferred_bytes: bytes,
          detail: { rm_ms: t2 - t1, archive_bytes: bytes, archive: 'podman default compression' },
        };
      };
      if (w.client) {
        // The archive carries the writable layer and, by default, the volumes too.
        const exec = async (args: string[]) => {
          const x = await podman(['exec', name, ...args]);
          if (x.code !== 0) throw new Error(`podman exec ${args.join(' ')}: ${x.stderr.trim().slice(-300)}`);
          return x.stdout;
        };
        const service = { host: '127.0.0.1', port, netns: null, execAfter: exec, sourceGone: access.sourceGone };
        await clientMigration(result, serviceClient(w, service, exec), service, migrate, ctx.log);
      } else {
        await judgedMigration(result, w, { kind: w.probe, host: '127.0.0.1', port, netns: null }, access, migrate, ctx.log);
      }
    } catch (e) {
      applyFailure(result, errMessage(e));
    } finally {
      await podman(['rm', '-f', name]);
      if (w.volume) await podman(['volume', 'rm', '-f', `${name}-vol`]);
      fs.rmSync(archive, { force: true });
    }
    return result;
  },
};
