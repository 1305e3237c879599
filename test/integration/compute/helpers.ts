/** Shared pieces of the compute integration tests: agents on the dev cloud's real engines. */
import { afterAll, beforeAll } from '@jest/globals';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { MigrationAgent } from '../../../src/compute/agent.js';
import { InProcessConductor, type InProcessOutcome } from '../../../src/conductor/inprocess.js';
import type { Migration } from '../../../src/objects/migration.js';
import { DockerDriver } from '../../../src/compute/docker/driver.js';
import { loadTlsMaterial } from '../../../src/compute/datachannel/tls.js';
import { FaultInjection, type Faults } from '../../../src/compute/faults.js';
import type { PrecopyOptions } from '../../../src/compute/disksync/precopy.js';
import { ensureHostCert, pkiDir } from '../../../src/devcloud/certs.js';
import { DOCKER_CLI } from '../../../src/devcloud/layout.js';
import { cloud, host } from '../../helpers/cloud.js';
import { sleep } from '../../../src/common/sleep.js';

const pexec = promisify(execFile);

export function workDir(hostName: string): string {
  return path.join(cloud().state_dir, 'ferry', `test-${hostName}`);
}

export function makeDriver(hostName: string, extra: { fastCheckpoint?: boolean; sharedStoragePaths?: string[]; criuBinary?: string } = {}): DockerDriver {
  const h = host(hostName);
  return new DockerDriver({
    host: hostName,
    dockerUrl: h.docker_host,
    dockerRoot: h.data_root,
    workDir: workDir(hostName),
    criuBinary: extra.criuBinary ?? cloud().criu.binary,
    criuMinVersion: '4.2',
    sharedStoragePaths: extra.sharedStoragePaths ?? [],
    fabricNetworks: [cloud().fabric.network],
    fastCheckpoint: extra.fastCheckpoint ?? false,
    containerdAddress: path.join(h.exec_root, 'containerd', 'containerd.sock'),
    // Each dev-cloud engine runs in its own network namespace (post-copy's page server listens there).
    engineNetns: `/run/netns/${h.netns}`,
  });
}

/** A test agent: its faults (none at first, or `faults`) can be changed while it runs. */
export type TestAgent = MigrationAgent & { setFaults(f: Faults): void };

export async function makeAgent(
  hostName: string,
  extra: {
    fastCheckpoint?: boolean;
    sharedStoragePaths?: string[];
    faults?: Faults;
    maxTransferBytes?: number;
    criuBinary?: string;
    tokenTtlMs?: number;
    insecure?: boolean;
    diskPrecopy?: PrecopyOptions;
  } = {},
): Promise<TestAgent> {
  const faults = new FaultInjection(extra.faults);
  const options = faults.install({
    driver: makeDriver(hostName, extra),
    workDir: workDir(hostName),
    bindHost: '127.0.0.1',
    port: 0,
    maxTransferBytes: extra.maxTransferBytes ?? 64 * 1024 ** 3,
    // The data channel as the services run it: mutual TLS with the dev cloud's certificates.
    channel: { tls: extra.insecure ? null : loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), hostName)), tokenTtlMs: extra.tokenTtlMs },
    diskPrecopy: extra.diskPrecopy,
  });
  const agent = Object.assign(new MigrationAgent(options), { setFaults: (f: Faults) => faults.set(f) });
  await agent.start();
  return agent;
}

/** A migration's record with the step results beside it (what the tests look at). */
export type MigrationRun = Migration & Omit<InProcessOutcome, 'migration'>;

/** Move a container from one test agent to another through the conductor's own flow, in this process. */
export async function migrate(source: MigrationAgent, dest: MigrationAgent, container: string): Promise<MigrationRun> {
  const conductor = new InProcessConductor([source, dest], { deadlineMs: 20_000, backoffMs: 500 });
  const { migration, ...steps } = await conductor.migrate(container, source.host, dest.host);
  return { ...migration, ...steps };
}

/** `docker` (20.10 CLI) against one dev-cloud engine. */
/**
 * compute1's and compute2's agents for one test file: made before its tests, stopped after
 * them, once the named containers and volumes are removed from both hosts.
 */
export function useAgents(names: string[], volumes: string[] = []): { a1: TestAgent; a2: TestAgent } {
  const pair = {} as { a1: TestAgent; a2: TestAgent };
  beforeAll(async () => {
    pair.a1 = await makeAgent('compute1');
    pair.a2 = await makeAgent('compute2');
  });
  afterAll(async () => {
    await removeEverywhere(names, volumes);
    await pair.a1?.stop();
    await pair.a2?.stop();
  });
  return pair;
}

export async function dk(hostName: string, args: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  try {
    const r = await pexec(DOCKER_CLI, ['-H', host(hostName).docker_host, ...args], { maxBuffer: 64 * 1024 * 1024 });
    return r.stdout.trim();
  } catch (e) {
    if (opts.allowFail) return '';
    const err = e as { stderr?: string; message: string };
    throw new Error(`docker ${args.join(' ')} on ${hostName}: ${err.stderr ?? err.message}`);
  }
}

export async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await pexec(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
  return r.stdout.trim();
}

export function uniqueName(prefix: string): string {
  return `ferry-t-${prefix}-${crypto.randomBytes(3).toString('hex')}`;
}

export async function removeEverywhere(names: string[], volumes: string[] = []): Promise<void> {
  for (const h of ['compute1', 'compute2']) {
    for (const n of names) await dk(h, ['rm', '-f', n], { allowFail: true });
    for (const v of volumes) await dk(h, ['volume', 'rm', '-f', v], { allowFail: true });
  }
}

export async function isRunning(hostName: string, name: string): Promise<boolean> {
  return (await dk(hostName, ['inspect', '-f', '{{.State.Running}}', name], { allowFail: true })) === 'true';
}

export async function exists(hostName: string, name: string): Promise<boolean> {
  return (await dk(hostName, ['inspect', '-f', '{{.Id}}', name], { allowFail: true })) !== '';
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The counter's latest value (its last line of output). */
export async function lastCount(hostName: string, name: string): Promise<number> {
  const out = await dk(hostName, ['logs', '--tail', '1', name]);
  return Number(out.split('\n').pop());
}

/** Nothing of the migration is left on the target: no container of that name, no staging. */
export async function targetLeftovers(hostName: string, name: string, volumes: string[] = []): Promise<string[]> {
  const left: string[] = [];
  if (await exists(hostName, name)) left.push(`container ${name}`);
  for (const v of volumes) if ((await dk(hostName, ['volume', 'inspect', v], { allowFail: true })) !== '') left.push(`volume ${v}`);
  return left;
}

export function logTimings(label: string, r: object): void {
  const pick = (k: string) => (r as Record<string, unknown>)[k];
  const line = [
    'freeze_ms',
    'checkpoint_ms',
    'transfer_ms',
    'restore_ms',
    'total_ms',
    'memory_bytes',
    'rootfs_bytes',
    'volume_bytes',
    'image_bytes',
    'transferred_bytes',
  ]
    .map((k) => `${k}=${String(pick(k))}`)
    .join(' ');
  const post = pick('post') as { place_ms?: number; restore_ms?: number } | undefined;
  process.stdout.write(`[timings] ${label}: ${line} place_ms=${String(post?.place_ms)} start_ms=${String(post?.restore_ms)}\n`);
}

/** Load `n` keys (key:1..key:n = val:1..val:n) into a redis container through redis-cli --pipe. */
export async function fillRedis(hostName: string, name: string, n: number): Promise<void> {
  const { spawn } = await import('node:child_process');
  const child = spawn(DOCKER_CLI, ['-H', host(hostName).docker_host, 'exec', '-i', name, 'redis-cli', '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (out += String(d)));
  const done = new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  const batch = 10_000;
  for (let i = 1; i <= n; i += batch) {
    let s = '';
    for (let k = i; k < Math.min(i + batch, n + 1); k++) s += `SET key:${k} val:${k}\r\n`;
    if (!child.stdin.write(s)) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  const code = await done;
  if (code !== 0 || !/errors: 0/.test(out)) throw new Error(`redis-cli --pipe failed: ${out}`);
}

export async function redisCli(hostName: string, name: string, args: string[]): Promise<string> {
  return dk(hostName, ['exec', name, 'redis-cli', ...args]);
}
