/**
 * Post-copy (lazy pages) through Docker on the dev cloud's real engines, driven through the
 * DockerDriver's post-copy methods in the order an agent would call them (compute1 -> compute2):
 * describe, hold restarts, image and shell on the target, lazy checkpoint (images without memory,
 * page server waiting), copy of the images and the writable layer, lazy restore, gratuitous ARP,
 * then every page fetched in the background.
 * - Redis with 1M keys (DEBUG POPULATE) and a live writer in the client namespace over
 *   ferry-fabric: the writer is answered again soon after the restore, no acknowledged write is
 *   lost, DBSIZE and a sentinel are intact, every page arrives, the source container exits.
 * - Killing the source's page server mid post-copy makes the "all pages" promise reject within a
 *   bounded time (and stops the target's container, whose memory is incomplete).
 * - A lazy checkpoint that no target ran rolls back on the source: the page server ends and the
 *   frozen container runs on with every key.
 * - Pages travel only through the page tunnel (mutual TLS with the hosts' certificates and the
 *   migration's token): a stray local process that connects to every new listener on the source
 *   (CRIU's in the engine's namespace, the tunnel's here) and holds on gets nothing and changes
 *   nothing; a peer with the right certificate and token that takes the tunnel and never asks for
 *   pages leaves the target's lazy restore bounded and the source whole; a target that goes away
 *   mid post-copy leaves the source frozen and whole (`peer-lost`), not killed.
 * After each test /etc/criu/runc.conf holds exactly what it held before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, expect, jest, test } from '@jest/globals';
import { PostCopyFailed } from '../../../src/common/errors.js';
import { sleep } from '../../../src/common/sleep.js';
import { clientTlsOptions, loadTlsMaterial, type TlsMaterial } from '../../../src/compute/datachannel/tls.js';
import { processesUsing } from '../../../src/compute/docker/lazy.js';
import { newPageToken, PAGE_TUNNEL_HELLO, type PageTunnelSecurity } from '../../../src/compute/pagetunnel.js';
import { ensureHostCert, pkiDir } from '../../../src/devcloud/certs.js';
import type { DockerDriver } from '../../../src/compute/docker/driver.js';
import type { ContainerSpec } from '../../../src/compute/driver.js';
import { RUNC_CONF, runcConfText } from '../../../src/compute/docker/runcconf.js';
import { cloud, host } from '../../helpers/cloud.js';
import { startWriter, stopWriters } from '../../helpers/redis-writer.js';
import { dk, makeDriver, redisCli, removeEverywhere, sh, uniqueName, waitFor, workDir } from './helpers.js';

jest.setTimeout(300_000);

const names = [
  uniqueName('postcopy'),
  uniqueName('postcopy-kill'),
  uniqueName('postcopy-back'),
  uniqueName('pc-stray'),
  uniqueName('pc-hung'),
  uniqueName('pc-gone'),
];
const IPS = ['10.250.0.171', '10.250.0.172', '10.250.0.173', '10.250.0.174', '10.250.0.175', '10.250.0.176'];
const MACS = ['02:42:0a:fa:00:ab', '02:42:0a:fa:00:ac', '02:42:0a:fa:00:ad', '02:42:0a:fa:00:ae', '02:42:0a:fa:00:af', '02:42:0a:fa:00:b0'];
let d1: DockerDriver;
let d2: DockerDriver;
let confBefore = '';
let tls1: TlsMaterial;
let tls2: TlsMaterial;
/** Processes a test started (ended by PID after each test). */
const started: ChildProcess[] = [];

beforeAll(() => {
  d1 = makeDriver('compute1');
  d2 = makeDriver('compute2');
  confBefore = runcConfText();
  tls1 = loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), 'compute1'));
  tls2 = loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), 'compute2'));
});

/** Checkpoints a test made: whatever it left (a failed assertion) is ended after it. */
const checkpoints: string[] = [];

afterEach(async () => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  for (const ck of checkpoints.splice(0)) {
    await d2.lazyPages.abortPostCopy(ck).catch(() => undefined);
    await d1.lazyPages.abortPageServer(ck).catch(() => undefined);
  }
});

/** The two ends of one migration's page tunnel, as the agents set them up. */
function tunnelPair(): { source: PageTunnelSecurity; target: PageTunnelSecurity; token: string } {
  const token = newPageToken();
  return { token, source: { tls: tls1, token, peerHost: 'compute2' }, target: { tls: tls2, token, peerHost: 'compute1' } };
}

/** TCP ports listening in a network namespace (null = this process's). */
async function listeningPorts(netns: string | null): Promise<Set<number>> {
  const out = netns ? await sh('nsenter', [`--net=${netns}`, 'ss', '-Hltn']) : await sh('ss', ['-Hltn']);
  const ports = new Set<number>();
  for (const line of out.split('\n')) {
    const local = line.trim().split(/\s+/)[3]; // State Recv-Q Send-Q Local Peer
    if (local) ports.add(Number(local.slice(local.lastIndexOf(':') + 1)));
  }
  return ports;
}

/** A local process (socat) connected to 127.0.0.1:port in a namespace, holding on; what it received is counted. */
function strayConnection(port: number, netns: string | null): { child: ChildProcess; received: () => number } {
  const args = ['STDIO', `TCP:127.0.0.1:${port}`];
  const child = netns
    ? spawn('nsenter', [`--net=${netns}`, 'socat', ...args], { stdio: ['pipe', 'pipe', 'ignore'] })
    : spawn('socat', args, { stdio: ['pipe', 'pipe', 'ignore'] });
  started.push(child);
  let n = 0;
  child.stdout?.on('data', (d: Buffer) => (n += d.length));
  child.stdin?.on('error', () => undefined);
  return { child, received: () => n };
}

/** CRIU processes on this machine (restore, lazy-pages, page server). */
async function criuProcesses(): Promise<string[]> {
  const out = await sh('ps', ['-eo', 'pid=,args=']);
  return out.split('\n').filter((l) => /\bcriu\b/.test(l) && !/\bps\b/.test(l));
}

afterEach(() => {
  // Whatever a test did, the machine-wide CRIU config is back to its normal content.
  expect(runcConfText()).toBe(confBefore);
  expect(runcConfText()).not.toMatch(/lazy-pages|work-dir|^port /m);
});

/** This process's children that carry pages (the page carrier to CRIU's page server, the tests' socat strays): none may outlive the tests. */
function pageCarriers(): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (Number(fields[1]) !== process.pid) continue;
      const carrier = comm === 'node' && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('pagecarrier.js');
      if (carrier || ['socat', 'nsenter'].includes(comm)) out.push(`${d} ${comm}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

afterAll(async () => {
  stopWriters();
  await removeEverywhere(names);
  // A connection to a page server whose CRIU is gone ends within 10 s (lazy.ts); one left after that
  // would keep jest (and an agent) holding a stuck carrier for good.
  for (let i = 0; i < 60 && pageCarriers().length > 0; i++) await sleep(250);
  const left = pageCarriers();
  for (const c of left) process.kill(Number(c.split(' ')[0]), 'SIGKILL');
  expect(left).toEqual([]);
}, 60_000);

interface Moved {
  id: string;
  spec: ContainerSpec;
  shell: string;
  ckName: string;
  /** The freeze began (checkpoint call). */
  t0: number;
  /** The lazy restore returned with the process running. */
  tRestored: number;
  checkpointMs: number;
  imageBytes: number;
  port: number;
  pid: number | null;
}

/** Redis on ferry-fabric on compute1 with `keys` keys and a sentinel. */
async function startRedis(name: string, ip: string, mac: string, keys: number): Promise<void> {
  await dk('compute1', ['run', '-d', '--name', name, '--network', cloud().fabric.network, '--ip', ip, '--mac-address', mac, 'ferry/redis']);
  await waitFor('redis to answer', async () => (await redisCli('compute1', name, ['PING'])) === 'PONG');
  expect(await redisCli('compute1', name, ['DEBUG', 'POPULATE', String(keys)])).toBe('OK');
  expect(await redisCli('compute1', name, ['SET', 'sentinel', `before-${name}`])).toBe('OK');
}

/** The agent's steps up to the lazy checkpoint and the copy (by `cp -a` instead of the data channel). */
async function checkpointAndCopy(name: string, tunnel: PageTunnelSecurity): Promise<Omit<Moved, 'tRestored'>> {
  const spec = await d1.describeContainer(name);
  await d1.holdRestarts(spec);
  if (!(await d2.hasImage(spec.image.id))) await d2.importImage(spec.image, await d1.exportImage(spec.image));
  const migrationId = `pc-${name}`;
  const shell = await d2.createShell(spec, migrationId);
  const ckName = d1.checkpointName(migrationId);
  checkpoints.push(ckName);

  const t0 = Date.now();
  const ck = await d1.lazyPages.checkpointLazy(spec.id, ckName, { pageServerPort: 0, bindAddress: '127.0.0.1', tunnel });
  const parts = await d1.partsToMove(spec.id, ck, spec);
  const staging = path.join(await d2.stagingRoot(), migrationId);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  for (const p of parts) {
    const to = path.join(staging, p.part.replace(/\//g, '_'));
    await sh('cp', ['-a', p.dir, to]);
    if (p.kind === 'checkpoint') await d2.placeCheckpoint(shell, ckName, to);
    if (p.kind === 'rootfs') await d2.applyRootfs(shell, to);
  }
  fs.rmSync(staging, { recursive: true, force: true });
  return { id: spec.id, spec, shell, ckName, t0, checkpointMs: ck.checkpoint_ms, imageBytes: ck.bytes, port: ck.page_server.port, pid: ck.page_server.pid };
}

/** The lazy restore on compute2 through the tunnel, then the gratuitous ARP. */
async function restoreLazily(
  c: Omit<Moved, 'tRestored'>,
  tunnel: PageTunnelSecurity,
  restoreTimeoutMs = 45_000,
): Promise<Moved & { daemonPid: number | null }> {
  const r = await d2.lazyPages.restoreLazy(c.shell, c.ckName, {
    sourceAddress: '127.0.0.1',
    port: c.port,
    tunnel,
    completionTimeoutMs: 120_000,
    restoreTimeoutMs,
  });
  const tRestored = Date.now();
  await d2.announce(c.shell, c.spec);
  expect(r.pid).toBeGreaterThan(0);
  return { ...c, tRestored, daemonPid: r.daemon_pid ?? null };
}

/** The agent's steps up to the lazy restore. */
async function moveLazily(name: string): Promise<Moved & { daemonPid: number | null }> {
  const t = tunnelPair();
  return restoreLazily(await checkpointAndCopy(name, t.source), t.target);
}

test('the host reports post-copy supported and pre-copy not (no memory dirty tracking on this kernel)', async () => {
  const s = await d1.lazyPages.postCopySupport();
  expect(s).toMatchObject({ ok: true, reason: null });
  expect(s.pre_copy.ok).toBe(false);
  expect(s.pre_copy.reason).toMatch(/mem_dirty_track/);
  expect(Number(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'))).toBeGreaterThanOrEqual(4 * 1024 * 1024);
});

test('Redis with 1M keys and a live writer moves with post-copy: answered soon, nothing lost, every page arrives', async () => {
  const [name, ip, mac] = [names[0], IPS[0], MACS[0]];
  await startRedis(name, ip, mac, 1_000_000);
  const writer = startWriter(ip);
  await waitFor('the writer to be answered', async () => writer.acks.length >= 50);

  const m = await moveLazily(name);
  // Only the non-memory images moved (1M keys are ~90 MB of pages).
  expect(m.imageBytes).toBeLessThan(10_000_000);
  const lastBefore = writer.acks.filter((a) => a.t <= m.t0).pop();
  const firstAfter = await waitFor('an answer after the restore', async () => writer.acks.find((a) => a.t >= m.tRestored), 30_000, 5);
  process.stdout.write(
    `[postcopy] checkpoint_ms=${m.checkpointMs} images=${m.imageBytes} freeze_until_restored_ms=${m.tRestored - m.t0} ` +
      `first_answer_after_restore_ms=${firstAfter.t - m.tRestored} client_gap_ms=${firstAfter.t - (lastBefore?.t ?? m.t0)}\n`,
  );
  expect(firstAfter.t - m.tRestored).toBeLessThan(2000);

  const done = await d2.lazyPages.waitPostCopy(m.ckName);
  expect(done.state).toBe('complete');
  process.stdout.write(
    `[postcopy] all_pages_after_restore_ms=${(done.completed_at ?? 0) - m.tRestored} all_pages_after_freeze_ms=${(done.completed_at ?? 0) - m.t0}\n`,
  );
  expect(await d1.lazyPages.waitPageServer(m.ckName)).toMatchObject({ state: 'done' });

  await waitFor('more writes after the move', async () => writer.acks.length > 0 && writer.acks[writer.acks.length - 1].v > firstAfter.v + 20, 20_000);
  const lastAck = writer.acks[writer.acks.length - 1].v;
  expect(Number(await redisCli('compute2', name, ['GET', 'writes']))).toBeGreaterThanOrEqual(lastAck);
  expect(await redisCli('compute2', name, ['DBSIZE'])).toBe('1000002'); // key:0..key:999999, sentinel, writes
  expect(await redisCli('compute2', name, ['GET', 'sentinel'])).toBe(`before-${name}`);
  expect(await redisCli('compute2', name, ['GET', 'key:999999'])).toBe('value:999999');
  expect(await redisCli('compute2', name, ['GET', 'key:0'])).toBe('value:0');
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Running}}', name])).toBe('false');
  expect(await dk('compute2', ['inspect', '-f', '{{.State.Running}}', name])).toBe('true');
  expect(d2.lazyPages.postCopyStatus(m.ckName).state).toBe('complete');
});

test('killing the source page server mid post-copy rejects the "all pages" promise, not a silent hang', async () => {
  const [name, ip, mac] = [names[1], IPS[1], MACS[1]];
  await startRedis(name, ip, mac, 2_000_000);
  const m = await moveLazily(name);
  expect(m.pid).toBeGreaterThan(0);
  expect(d2.lazyPages.postCopyStatus(m.ckName).state).toBe('fetching');
  const tKill = Date.now();
  process.kill(m.pid as number, 'SIGKILL'); // CRIU's page server on compute1, started by this test's checkpoint
  const failure = await d2.lazyPages.waitPostCopy(m.ckName).then(
    () => null,
    (e: unknown) => e,
  );
  const ms = Date.now() - tKill;
  process.stdout.write(`[postcopy] page server killed: the target gave up after ${ms} ms: ${(failure as Error | null)?.message}\n`);
  expect(failure).toBeInstanceOf(PostCopyFailed);
  expect(ms).toBeLessThan(30_000);
  expect(d2.lazyPages.postCopyStatus(m.ckName).state).toBe('failed');
  await expect(d1.lazyPages.waitPageServer(m.ckName)).rejects.toBeInstanceOf(PostCopyFailed);
  // The target's copy, whose memory is incomplete, does not run on.
  await waitFor('the target container to stop', async () => (await dk('compute2', ['inspect', '-f', '{{.State.Running}}', name])) === 'false', 20_000);
  expect(fs.existsSync(RUNC_CONF)).toBe(true);
});

test('a lazy checkpoint no target ran rolls back: the source runs on with every key', async () => {
  const [name, ip, mac] = [names[2], IPS[2], MACS[2]];
  await startRedis(name, ip, mac, 100_000);
  const spec = await d1.describeContainer(name);
  const ck = await d1.lazyPages.checkpointLazy(spec.id, 'ferry-pc-rollback', { pageServerPort: 0, bindAddress: '127.0.0.1', tunnel: tunnelPair().source });
  expect(d1.lazyPages.pageServerStatus('ferry-pc-rollback').state).toBe('serving');
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Status}}', name])).toBe('paused'); // frozen while serving
  await d1.lazyPages.rollbackLazyCheckpoint(spec.id, ck.name);
  expect(d1.lazyPages.pageServerStatus('ferry-pc-rollback').state).toBe('failed');
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Status}}', name])).toBe('running');
  expect(await redisCli('compute1', name, ['DBSIZE'])).toBe('100001');
  expect(await redisCli('compute1', name, ['GET', 'sentinel'])).toBe(`before-${name}`);
  // Its network is back too (CRIU's lock is gone): the client namespace reaches it over the fabric.
  const r = await sh('ip', ['netns', 'exec', cloud().fabric.client_netns, 'redis-cli', '-h', ip, 'GET', 'sentinel']);
  expect(r).toBe(`before-${name}`);
});

test('a stray local process on every new listener of the source gets no page and changes nothing: the migration completes', async () => {
  const [name, ip, mac] = [names[3], IPS[3], MACS[3]];
  await startRedis(name, ip, mac, 200_000);
  const engineNs = `/run/netns/${host('compute1').netns}`;
  const [engineBefore, hereBefore] = [await listeningPorts(engineNs), await listeningPorts(null)];
  const t = tunnelPair();
  const c = await checkpointAndCopy(name, t.source);
  // Whatever listens now and did not before: CRIU's page server (engine namespace), the tunnel (here).
  const engineNew = [...(await listeningPorts(engineNs))].filter((p) => !engineBefore.has(p));
  const hereNew = [...(await listeningPorts(null))].filter((p) => !hereBefore.has(p));
  expect(hereNew).toContain(c.port);
  const strays = [...engineNew.map((p) => strayConnection(p, engineNs)), ...hereNew.map((p) => strayConnection(p, null))];
  const onTunnel = strays[engineNew.length + hereNew.indexOf(c.port)];
  process.stdout.write(`[postcopy] stray connections to engine ports ${engineNew.join(',') || '-'} and here ${hereNew.join(',')}\n`);
  await new Promise((r) => setTimeout(r, 6000)); // longer than the tunnel's hello timeout
  expect(d1.lazyPages.pageServerStatus(c.ckName).state).toBe('serving');
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Status}}', name])).toBe('paused');
  expect(onTunnel.child.exitCode ?? onTunnel.child.signalCode).not.toBeNull(); // the tunnel closed it (no certificate, no hello)
  // They let go; the source must not notice either.
  for (const s of strays) if (s.child.pid && s.child.exitCode === null) process.kill(s.child.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  expect(d1.lazyPages.pageServerStatus(c.ckName).state).toBe('serving');
  const m = await restoreLazily(c, t.target);
  expect((await d2.lazyPages.waitPostCopy(m.ckName)).state).toBe('complete');
  expect(await d1.lazyPages.waitPageServer(m.ckName)).toMatchObject({ state: 'done' });
  expect(strays.map((s) => s.received())).toEqual(strays.map(() => 0)); // not a byte of memory
  expect(await redisCli('compute2', name, ['GET', 'sentinel'])).toBe(`before-${name}`);
  expect(await redisCli('compute2', name, ['DBSIZE'])).toBe('200001');
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Running}}', name])).toBe('false');
  expect(await dk('compute2', ['inspect', '-f', '{{.State.Running}}', name])).toBe('true');
});

test('a peer with the right certificate and token that takes the tunnel and never asks for pages: bounded, source resumed, nothing left', async () => {
  const [name, ip, mac] = [names[4], IPS[4], MACS[4]];
  await startRedis(name, ip, mac, 200_000);
  const criuBefore = await criuProcesses();
  const t = tunnelPair();
  const c = await checkpointAndCopy(name, t.source);
  // The hung peer: compute2's certificate, the token, then silence.
  const hung = tls.connect({ ...clientTlsOptions(tls2, 'compute1'), host: '127.0.0.1', port: c.port });
  hung.on('error', () => undefined);
  await new Promise<void>((resolve) => hung.once('secureConnect', () => resolve()));
  hung.write(`${PAGE_TUNNEL_HELLO} ${t.token}\n`);
  await waitFor(
    'the hung peer to hold the tunnel',
    async () => d1.lazyPages.pageServerStatus(c.ckName).state === 'serving' && (await sh('ss', ['-Htn', `sport = :${c.port}`])).includes('ESTAB'),
  );
  const tRestore = Date.now();
  const restoreTimeoutMs = 15_000;
  const outcome = await d2.lazyPages
    .restoreLazy(c.shell, c.ckName, { sourceAddress: '127.0.0.1', port: c.port, tunnel: t.target, completionTimeoutMs: 20_000, restoreTimeoutMs })
    .then(async () => d2.lazyPages.waitPostCopy(c.ckName))
    .then(
      () => null,
      (e: unknown) => e as Error,
    );
  const ms = Date.now() - tRestore;
  process.stdout.write(`[postcopy] hung peer: the target gave up after ${ms} ms: ${outcome?.message}\n`);
  expect(outcome).toBeInstanceOf(Error); // no page ever came
  expect(ms).toBeLessThan(restoreTimeoutMs + 25_000);
  // The rollback: the target's shell goes, the source runs on whole.
  await d2.lazyPages.abortPostCopy(c.ckName);
  await dk('compute2', ['rm', '-f', c.shell]);
  await d1.lazyPages.rollbackLazyCheckpoint(c.id, c.ckName);
  hung.destroy();
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Status}}', name])).toBe('running');
  expect(await redisCli('compute1', name, ['GET', 'sentinel'])).toBe(`before-${name}`);
  expect(await redisCli('compute1', name, ['DBSIZE'])).toBe('200001');
  expect(await dk('compute2', ['ps', '-aq', '--filter', `name=${name}`])).toBe('');
  await waitFor('no CRIU process left', async () => (await criuProcesses()).length <= criuBefore.length, 15_000);
  const lazyWork = path.join(workDir('compute2'), 'lazy-pages');
  expect(processesUsing([lazyWork])).toEqual([]);
  // Nor the cgroup yard a killed CRIU restore leaves mounted in its work dir.
  expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(lazyWork);
});

test('the target goes away mid post-copy: the source stays frozen and whole (peer-lost), then rolls back with every key', async () => {
  const [name, ip, mac] = [names[5], IPS[5], MACS[5]];
  await startRedis(name, ip, mac, 3_000_000);
  const t = tunnelPair();
  const m = await checkpointAndCopy(name, t.source);
  const r = await d2.lazyPages.restoreLazy(m.shell, m.ckName, {
    sourceAddress: '127.0.0.1',
    port: m.port,
    tunnel: t.target,
    completionTimeoutMs: 120_000,
    restoreTimeoutMs: 45_000,
  });
  expect(r.daemon_pid).toBeGreaterThan(0);
  // At once, before anything else runs: the background fetch of some 300 MB of pages takes seconds
  // (a fetch that finished first would leave no peer to lose; the outcome below shows it did not).
  expect(d2.lazyPages.postCopyStatus(m.ckName).state).toBe('fetching');
  process.kill(r.daemon_pid as number, 'SIGKILL'); // the target's lazy-pages daemon, started by this test's restore
  await expect(d1.lazyPages.waitPageServer(m.ckName)).rejects.toBeInstanceOf(PostCopyFailed);
  expect(d1.lazyPages.pageServerStatus(m.ckName).state).toBe('peer-lost');
  await expect(d2.lazyPages.waitPostCopy(m.ckName)).rejects.toBeInstanceOf(PostCopyFailed);
  // CRIU saw no end of stream: the source's tasks are still there, frozen.
  await new Promise((r) => setTimeout(r, 2000));
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Status}}', name])).toBe('paused');
  await waitFor('the target copy to stop', async () => (await dk('compute2', ['inspect', '-f', '{{.State.Running}}', name])) === 'false', 20_000);
  await d1.lazyPages.rollbackLazyCheckpoint(m.id, m.ckName);
  expect(await dk('compute1', ['inspect', '-f', '{{.State.Status}}', name])).toBe('running');
  expect(await redisCli('compute1', name, ['DBSIZE'])).toBe('3000001');
  expect(await redisCli('compute1', name, ['GET', 'sentinel'])).toBe(`before-${name}`);
});
