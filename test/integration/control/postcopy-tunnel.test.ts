/**
 * Post-copy's page tunnel through the REST API on the dev cloud (Keystone, ferry-api, the
 * conductor over RabbitMQ, both compute agents, CRIU's lazy pages), with a window after the
 * source's lazy checkpoint (fault delayAfterCheckpointMs) in which the tests act:
 * - a stray local process connects to every listener that appeared on the source (CRIU's page
 *   server in the engine's namespace, the agent's tunnel), holds on, then lets go: the migration
 *   still completes, Redis runs on compute2 only with its sentinel;
 * - a peer with compute2's certificate and the migration's token takes the tunnel and never asks
 *   for a page: the target's lazy restore is bounded ([compute] lazy_restore_timeout), the
 *   migration ends rolled back within the deadline, Redis runs on compute1 only with its keys,
 *   and no CRIU process nor shell is left;
 * - the target's lazy-pages daemon dies mid post-copy (the target's end of the tunnel goes away):
 *   the record ends `error` / needs-operator saying so, and the source is left frozen and whole
 *   (CRIU saw no end of stream, so it did not end the source's tasks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type Docker from 'dockerode';
import { sleep } from '../../../src/common/sleep.js';
import { clientTlsOptions, loadTlsMaterial } from '../../../src/compute/datachannel/tls.js';
import { PAGE_TUNNEL_HELLO } from '../../../src/compute/pagetunnel.js';
import { ensureHostCert, pkiDir } from '../../../src/devcloud/certs.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud, host } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { ensureImage, useFaults } from '../faults/harness.js';

jest.setTimeout(300_000);
const pexec = promisify(execFile);

const c1 = engine('compute1');
const c2 = engine('compute2');
const names = { stray: uniqueName('pct-stray'), hung: uniqueName('pct-hung'), gone: uniqueName('pct-gone') };
const started: ChildProcess[] = [];

function redisCli(d: Docker, name: string, args: string[]): Promise<string> {
  return execOut(d, name, ['redis-cli', ...args]);
}

async function startRedis(name: string, keys: number): Promise<void> {
  const ct = await c1.createContainer({ Image: 'ferry/redis:latest', name });
  await ct.start();
  for (let i = 0; i < 100 && (await redisCli(c1, name, ['PING']).catch(() => '')) !== 'PONG'; i++) await sleep(100);
  expect(await redisCli(c1, name, ['DEBUG', 'POPULATE', String(keys)])).toBe('OK');
  expect(await redisCli(c1, name, ['SET', 'sentinel', `before-${name}`])).toBe('OK');
  await waitKnown(name, 'compute1');
}

async function listeningPorts(netns: string | null): Promise<Set<number>> {
  const args = ['-Hltn'];
  const r = netns ? await pexec('nsenter', [`--net=${netns}`, 'ss', ...args]) : await pexec('ss', args);
  const ports = new Set<number>();
  for (const line of r.stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    if (local) ports.add(Number(local.slice(local.lastIndexOf(':') + 1)));
  }
  return ports;
}

/** The source agent's record of a migration (where its page tunnel and token are). */
function sourceRecord(uuid: string): { stage?: string; page_server?: { port: number; token?: string } | null; page_server_pid?: number | null } | null {
  const f = path.join(cloud().state_dir, 'ferry', 'compute1', 'migrations', uuid, 'record.json');
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8')) as { page_server?: { port: number; token?: string } | null; page_server_pid?: number | null };
  } catch {
    return null;
  }
}

async function criuCount(): Promise<number> {
  const r = await pexec('ps', ['-eo', 'args=']);
  return r.stdout.split('\n').filter((l) => /^criu\b|\/criu\b/.test(l.trim())).length;
}

beforeAll(async () => {
  await ensureImage('compute2', 'ferry/redis:latest');
  // A window after the lazy checkpoint: the tunnel listens, the target has not connected yet.
  await useFaults({ compute1: { delayAfterCheckpointMs: 8000 } });
});

afterEach(() => {
  for (const c of started.splice(0)) if (c.pid && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
});

/** CRIU page servers the tests left waiting (the frozen source of the last test), ended by PID. */
const pageServers: number[] = [];

afterAll(async () => {
  for (const pid of pageServers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await useFaults({});
  for (const n of Object.values(names)) {
    await removeQuietly(c1, n);
    await removeQuietly(c2, n);
  }
});

describe('post-copy pages go to the expected target only', () => {
  it('a stray local process on every new source listener changes nothing: the migration completes', async () => {
    const name = names.stray;
    await startRedis(name, 200_000);
    const engineNs = `/run/netns/${host('compute1').netns}`;
    const [engineBefore, hereBefore] = [await listeningPorts(engineNs), await listeningPorts(null)];
    const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${name}/migrate`, { post_copy: true });
    expect(r.status).toBe(202);
    const uuid = r.body.migration.uuid;
    for (let i = 0; i < 300 && !sourceRecord(uuid)?.page_server; i++) await sleep(50);
    const tunnelPort = sourceRecord(uuid)?.page_server?.port;
    expect(tunnelPort).toBeGreaterThan(0);
    const engineNew = [...(await listeningPorts(engineNs))].filter((p) => !engineBefore.has(p));
    const hereNew = [...(await listeningPorts(null))].filter((p) => !hereBefore.has(p));
    expect(hereNew).toContain(tunnelPort);
    let received = 0;
    for (const [port, ns] of [...engineNew.map((p) => [p, engineNs] as const), ...hereNew.map((p) => [p, null] as const)]) {
      const args = ['STDIO', `TCP:127.0.0.1:${port}`];
      const child = ns
        ? spawn('nsenter', [`--net=${ns}`, 'socat', ...args], { stdio: ['pipe', 'pipe', 'ignore'] })
        : spawn('socat', args, { stdio: ['pipe', 'pipe', 'ignore'] });
      child.stdout?.on('data', (d: Buffer) => (received += d.length));
      child.stdin?.on('error', () => undefined);
      started.push(child);
    }
    process.stdout.write(`[postcopy-tunnel] strays on engine ports ${engineNew.join(',') || '-'} and here ${hereNew.join(',')}\n`);
    await sleep(3000);
    for (const c of started.splice(0)) if (c.pid && c.exitCode === null) process.kill(c.pid, 'SIGKILL'); // they let go
    const m = await waitMigration(uuid);
    expect(m).toMatchObject({ status: 'completed', mode: 'post-copy' });
    expect(received).toBe(0);
    expect(await redisCli(c2, name, ['GET', 'sentinel'])).toBe(`before-${name}`);
    expect(await redisCli(c2, name, ['DBSIZE'])).toBe('200001');
    expect((await containerOn(c2, name))?.State).toBe('running');
    expect(await containerOn(c1, name)).toBeNull();
  });

  it('a peer with the right certificate and token that takes the tunnel and never asks: bounded, rolled back, nothing left', async () => {
    const name = names.hung;
    await startRedis(name, 200_000);
    const criuBefore = await criuCount();
    const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${name}/migrate`, { post_copy: true });
    expect(r.status).toBe(202);
    const uuid = r.body.migration.uuid;
    for (let i = 0; i < 300 && !sourceRecord(uuid)?.page_server?.token; i++) await sleep(50);
    const ps = sourceRecord(uuid)?.page_server;
    expect(ps?.token).toMatch(/^[0-9a-f]{64}$/);
    const material = loadTlsMaterial(ensureHostCert(pkiDir(cloud().state_dir), 'compute2'));
    const hung = tls.connect({ ...clientTlsOptions(material, 'compute1'), host: '127.0.0.1', port: ps!.port });
    hung.on('error', () => undefined);
    await new Promise<void>((resolve) => hung.once('secureConnect', () => resolve()));
    hung.write(`${PAGE_TUNNEL_HELLO} ${ps!.token}\n`);
    const t0 = Date.now();
    try {
      const m = await waitMigration(uuid);
      const ms = Date.now() - t0;
      process.stdout.write(`[postcopy-tunnel] hung peer: ${m.status} after ${ms} ms: ${m.error}\n`);
      expect(m.status).toBe('failed'); // rolled back: the target never ran it
      expect(ms).toBeLessThan(120_000);
    } finally {
      hung.destroy();
    }
    expect((await containerOn(c1, name))?.State).toBe('running');
    expect(await redisCli(c1, name, ['GET', 'sentinel'])).toBe(`before-${name}`);
    expect(await redisCli(c1, name, ['DBSIZE'])).toBe('200001');
    expect(await containerOn(c2, name)).toBeNull();
    for (let i = 0; i < 100 && (await criuCount()) > criuBefore; i++) await sleep(100);
    expect(await criuCount()).toBeLessThanOrEqual(criuBefore);
  });

  it('the target goes away mid post-copy: error / needs-operator, the source frozen and whole', async () => {
    const name = names.gone;
    await startRedis(name, 2_000_000);
    const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${name}/migrate`, { post_copy: true });
    expect(r.status).toBe(202);
    const uuid = r.body.migration.uuid;
    const lazyDir = path.join(cloud().state_dir, 'ferry', 'compute2', 'lazy-pages');
    // The target's lazy-pages daemon for this migration, once the restored process runs.
    let daemon: number | null = null;
    await waitMigration(uuid, (m) => m.phase === 'post-copy' || ['completed', 'failed', 'error'].includes(m.status));
    for (let i = 0; i < 100 && daemon === null; i++) {
      const ps = await pexec('ps', ['-eo', 'pid=,args=']);
      const line = ps.stdout.split('\n').find((l) => l.includes('lazy-pages') && l.includes(lazyDir));
      daemon = line ? Number(line.trim().split(/\s+/)[0]) : null;
      if (daemon === null) await sleep(20);
    }
    const pagePid = sourceRecord(uuid)?.page_server_pid ?? null;
    if (pagePid) pageServers.push(pagePid);
    expect(daemon).toBeGreaterThan(0);
    process.kill(daemon as number, 'SIGKILL');
    const m = await waitMigration(uuid);
    process.stdout.write(`[postcopy-tunnel] target gone: ${m.status} ${m.phase ?? ''}: ${m.error}\n`);
    expect(m.status).toBe('error');
    expect(m.error).toMatch(/post-copy/);
    // The source: still there, frozen, its CRIU page server waiting (no end of stream reached it).
    expect((await containerOn(c1, name))?.State).toBe('paused');
    expect(pagePid).toBeGreaterThan(0);
    expect(fs.existsSync(`/proc/${pagePid}`)).toBe(true);
  });
});
