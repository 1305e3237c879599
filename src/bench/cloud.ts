/**
 * What the benchmark needs of the development cloud: its description, the 20.10 Docker CLI
 * against one engine, the Ferry REST API (FerryClient), bench container addresses.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { status } from '../devcloud/cloud.js';
import { FerryClient } from '../devcloud/ferry-client.js';
import { DOCKER_CLI } from '../devcloud/layout.js';
import type { CloudHost, CloudStatus } from '../devcloud/status.js';
import type { Workload } from './types.js';
import { sleep } from '../common/sleep.js';

const pexec = promisify(execFile);

export interface BenchCloud {
  status: CloudStatus;
  source: CloudHost;
  target: CloudHost;
  /** Ferry's REST API as the admin user. */
  ferry: FerryClient;
  workDir: string; // scratch under the dev cloud's state dir
}

export async function loadCloud(): Promise<BenchCloud> {
  const st = await status();
  const source = st.hosts.find((h) => h.name === 'compute1');
  const target = st.hosts.find((h) => h.name === 'compute2');
  if (!source || !target) throw new Error('the development cloud has no compute1/compute2');
  if (source.state !== 'up' || target.state !== 'up') throw new Error('compute engines are down: run `node dist/cmd/devcloud.js up`');
  const workDir = path.join(st.state_dir, 'bench');
  fs.mkdirSync(workDir, { recursive: true });
  const apiRoot = (st.api?.url ?? 'http://127.0.0.1:9517/v1').replace(/\/v1$/, '');
  return { status: st, source, target, ferry: new FerryClient(apiRoot, st.keystone.auth_url, st.keystone.admin), workDir };
}

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a command; throws with its stderr unless allowFail. */
export async function sh(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<CmdResult> {
  const t0 = Date.now();
  try {
    const r = await pexec(cmd, args, { maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs ?? 600_000 });
    return { code: 0, stdout: r.stdout.trim(), stderr: r.stderr.trim(), ms: Date.now() - t0 };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
    const res = {
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: (err.stdout ?? '').trim(),
      stderr: (err.stderr ?? err.message).trim(),
      ms: Date.now() - t0,
    };
    if (opts.allowFail) return res;
    throw new Error(`${cmd} ${args.join(' ')}: ${res.stderr.split('\n').slice(-3).join(' | ')}`);
  }
}

export function dk(h: CloudHost, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<CmdResult> {
  return sh(DOCKER_CLI, ['-H', h.docker_host, ...args], opts);
}

/** Bench containers live at 10.250.0.200-219 on ferry-fabric, with MACs of their own. */
export function benchAddress(slot: number): { ip: string; mac: string } {
  const last = 200 + (slot % 20);
  return { ip: `10.250.0.${last}`, mac: `02:be:0c:fa:00:${last.toString(16).padStart(2, '0')}` };
}

let nameSeq = 0;
export function benchName(w: Workload, method: string): string {
  nameSeq++;
  return `bench-${w.name}-${method}-${process.pid.toString(36)}${nameSeq}`;
}

/** docker run the workload on `h` at a fixed fabric address; returns the full container id. */
export async function runWorkloadContainer(cloud: BenchCloud, h: CloudHost, w: Workload, name: string, addr: { ip: string; mac: string }): Promise<string> {
  const r = await dk(h, ['run', '-d', ...workloadCreateArgs(cloud, w, name, addr)]);
  return r.stdout.split('\n').pop() ?? '';
}

/** The named local volume of a workload's container (workloads with `volume`). */
export function volumeName(containerName: string): string {
  return `${containerName}-vol`;
}

/** `docker run`/`docker create` arguments of the workload's container: name, address, env, volume, image, command. */
export function workloadCreateArgs(cloud: BenchCloud, w: Workload, name: string, addr: { ip: string; mac: string }): string[] {
  const env = Object.entries(w.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const vol = w.volume ? ['-v', `${volumeName(name)}:${w.volume}`] : [];
  const cmd = (w.cmd ?? []).map((a) => a.replace(/\bPORT\b/g, String(w.port)));
  return ['--name', name, '--network', cloud.status.fabric.network, '--ip', addr.ip, '--mac-address', addr.mac, ...env, ...vol, w.image, ...cmd];
}

export async function removeContainer(h: CloudHost, name: string): Promise<void> {
  await dk(h, ['rm', '-f', '-v', name], { allowFail: true });
  await dk(h, ['volume', 'rm', '-f', volumeName(name)], { allowFail: true });
}

export async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Load the workload's data into a containerised Redis and check it. */
export async function fillContainerRedis(h: CloudHost, name: string, keys: number): Promise<void> {
  await waitUntil(`redis in ${name}`, async () => (await dk(h, ['exec', name, 'redis-cli', 'PING'], { allowFail: true })).stdout === 'PONG');
  if (keys <= 0) return;
  await dk(h, ['exec', name, 'redis-cli', 'DEBUG', 'POPULATE', String(keys)], { timeoutMs: 300_000 });
  const n = (await dk(h, ['exec', name, 'redis-cli', 'DBSIZE'])).stdout;
  if (n !== String(keys)) throw new Error(`${name} holds ${n} keys, not ${keys}`);
}

export { treeBytes } from '../compute/docker/tree.js';
