/**
 * Post-copy end to end through the REST API on the dev cloud (Keystone, ferry-api, the conductor
 * over RabbitMQ, both compute agents, Docker, CRIU's lazy pages):
 * - Redis with 1M keys and a live writer over ferry-fabric moves with `"post_copy": true`: the
 *   record passes through running/post-copy, ends completed with mode post-copy and its memory
 *   counters; the writer on its one connection is answered again soon, no acknowledged write is
 *   lost, every key is there on the target, nothing is left on the source.
 * - The counter moves with post-copy and goes on counting.
 * - Force-complete (Nova's) on a migration held before the freeze switches it to post-copy.
 * - Killing the source's page server while the target still fetches pages ends the migration in
 *   `error` (needs-operator, with what to check) within a bounded time, not in a silent hang.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type Docker from 'dockerode';
import { sleep } from '../../../src/common/sleep.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { containerOn, engine, execOut, lastNumber, logs, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, ferry, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { longestGap, startWriter, stopWriters } from '../../helpers/redis-writer.js';
import { ensureImage, useFaults } from '../faults/harness.js';

jest.setTimeout(300_000);
const execFileP = promisify(execFile);

const c1 = engine('compute1');
const c2 = engine('compute2');
const names = { redis: uniqueName('pc-redis'), counter: uniqueName('pc-counter'), forced: uniqueName('pc-forced'), killed: uniqueName('pc-killed') };
const NET = { redis: ['10.250.0.181', '02:42:0a:fa:00:b5'], killed: ['10.250.0.182', '02:42:0a:fa:00:b6'] } as const;

function redisCli(d: Docker, name: string, args: string[]): Promise<string> {
  return execOut(d, name, ['redis-cli', ...args]);
}

/** Redis on compute1 (on ferry-fabric when `net` is given) with `keys` keys and a sentinel. */
async function startRedis(name: string, keys: number, net?: readonly [string, string]): Promise<void> {
  const fabric = cloud().fabric.network;
  const ct = await c1.createContainer({
    Image: 'ferry/redis:latest',
    name,
    ...(net
      ? {
          MacAddress: net[1],
          HostConfig: { NetworkMode: fabric },
          NetworkingConfig: { EndpointsConfig: { [fabric]: { IPAMConfig: { IPv4Address: net[0] } } } },
        }
      : {}),
  });
  await ct.start();
  for (let i = 0; i < 100 && (await redisCli(c1, name, ['PING']).catch(() => '')) !== 'PONG'; i++) await sleep(100);
  expect(await redisCli(c1, name, ['DEBUG', 'POPULATE', String(keys)])).toBe('OK');
  expect(await redisCli(c1, name, ['SET', 'sentinel', `before-${name}`])).toBe('OK');
  await waitKnown(name, 'compute1');
}

/** Each distinct status/phase a migration passed through, polled until it is final. */
async function follow(uuid: string, seen: string[], onEach?: (m: Migration) => Promise<void> | void): Promise<Migration> {
  return waitMigration(uuid, (m) => {
    const s = `${m.status}${m.phase ? `/${m.phase}` : ''}`;
    if (seen[seen.length - 1] !== s) seen.push(s);
    void onEach?.(m);
    return ['completed', 'failed', 'cancelled', 'error'].includes(m.status);
  });
}

beforeAll(async () => {
  await ensureImage('compute2', 'ferry/redis:latest');
  await ensureImage('compute2', 'ferry/counter:latest');
});

afterAll(async () => {
  stopWriters();
  await useFaults({});
  for (const n of Object.values(names)) {
    await removeQuietly(c1, n);
    await removeQuietly(c2, n);
  }
});

describe('post-copy through the REST API', () => {
  it('moves Redis with 1M keys and a live writer: running/post-copy, then completed; no acknowledged write lost', async () => {
    const name = names.redis;
    await startRedis(name, 1_000_000, NET.redis);
    const writer = startWriter(NET.redis[0]);
    for (let i = 0; i < 100 && writer.acks.length < 50; i++) await sleep(100);
    expect(writer.acks.length).toBeGreaterThanOrEqual(50);

    const tAsk = Date.now();
    const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${name}/migrate`, { post_copy: true });
    expect(r.status).toBe(202);
    expect(r.body.migration).toMatchObject({ mode: 'post-copy', status: 'accepted', dest_host: 'compute2' });
    const seen: string[] = [];
    const m = await follow(r.body.migration.uuid, seen);
    const tDone = Date.now();

    expect(m).toMatchObject({ status: 'completed', mode: 'post-copy', error: null, memory_remaining_bytes: 0 });
    expect(seen).toContain('running/post-copy');
    // The cleanup may pass between two polls; the post-copy phase comes before the end in any case.
    expect(seen.indexOf('running/post-copy')).toBeLessThan(seen.indexOf('completed'));
    // Only the images without pages crossed before the restore (1M keys are ~90 MB of pages).
    expect(m.memory_bytes as number).toBeLessThan(10_000_000);
    expect(m.memory_total_bytes as number).toBeGreaterThan(50_000_000);
    expect(m.memory_processed_bytes).toBe(m.memory_total_bytes);
    expect(m.freeze_ms as number).toBeGreaterThan(0);

    // The writer: answered on after the move, values strictly increasing, nothing it was told lost.
    for (let i = 0; i < 100 && (writer.acks[writer.acks.length - 1]?.t ?? 0) < tDone + 500; i++) await sleep(100);
    const acks = writer.acks;
    for (let i = 1; i < acks.length; i++) expect(acks[i].v).toBeGreaterThan(acks[i - 1].v);
    const gap = longestGap(acks, tAsk, tDone);
    process.stdout.write(
      `[postcopy-rest] freeze_ms=${m.freeze_ms} client_longest_gap_ms=${gap} total_ms=${m.total_ms} images=${m.memory_bytes} memory=${m.memory_total_bytes}\n`,
    );
    expect(acks.some((a) => a.t > tDone)).toBe(true);
    const lastAck = acks[acks.length - 1].v;
    writer.stop();
    expect(Number(await redisCli(c2, name, ['GET', 'writes']))).toBeGreaterThanOrEqual(lastAck);
    expect(await redisCli(c2, name, ['DBSIZE'])).toBe('1000002'); // key:0..key:999999, sentinel, writes
    expect(await redisCli(c2, name, ['GET', 'sentinel'])).toBe(`before-${name}`);
    expect(await redisCli(c2, name, ['GET', 'key:999999'])).toBe('value:999999');
    expect((await containerOn(c2, name))?.State).toBe('running');
    expect(await containerOn(c1, name)).toBeNull();
  });

  it('moves the counter with post-copy: it keeps counting on compute2', async () => {
    const name = names.counter;
    const ct = await c1.createContainer({ Image: 'ferry/counter:latest', name, Env: ['COUNTER_INTERVAL=0.2'] });
    await ct.start();
    await waitKnown(name, 'compute1');
    await sleep(1000);
    const m0 = await ferry().migrate(name, null, { post_copy: true });
    const m = await waitMigration(m0.uuid);
    expect(m).toMatchObject({ status: 'completed', mode: 'post-copy' });
    const lastOnSource = await lastNumber(c1, ct.id).catch(() => NaN);
    const moved = await containerOn(c2, name);
    expect(moved?.State).toBe('running');
    await sleep(1000);
    const after = (await logs(c2, moved!.Id)).trim().split('\n').map(Number);
    expect(after[0]).toBeGreaterThan(3);
    if (!Number.isNaN(lastOnSource)) expect(after[0]).toBeGreaterThanOrEqual(lastOnSource);
    expect(after[after.length - 1]).toBeGreaterThan(after[0]);
  });

  it('force-complete on a migration not yet frozen switches it to post-copy (202), and it completes so', async () => {
    const name = names.forced;
    await startRedis(name, 200_000);
    // Hold the target's preparation so that the request finds the migration before the freeze.
    await useFaults({ compute2: { delayPreMigrationMs: 4000 } });
    const m0 = await ferry().migrate(name);
    expect(m0.mode).toBe('stop-and-copy');
    await waitMigration(m0.uuid, (m) => m.status === 'pre-migrating');
    const forced = await ferry().forceComplete(m0.uuid);
    expect(forced).toMatchObject({ uuid: m0.uuid, mode: 'post-copy' });
    const m = await waitMigration(m0.uuid);
    expect(m).toMatchObject({ status: 'completed', mode: 'post-copy' });
    expect(await redisCli(c2, name, ['DBSIZE'])).toBe('200001');
    // Once finished there is nothing to complete: 409 with the reason.
    const again = await admin<{ error: { message: string } }>('POST', `/v1/migrations/${m0.uuid}/action`, { force_complete: null });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/already completed/);
    await useFaults({});
  });

  it('killing the page server mid post-copy ends the migration in error with what to check, not a hang', async () => {
    const name = names.killed;
    await startRedis(name, 3_000_000, NET.killed);
    const m0 = await ferry().migrate(name, null, { post_copy: true });
    // The agents' records on disk say when the target runs it, and which process serves the pages.
    const rec = (h: string) => path.join(cloud().state_dir, 'ferry', h, 'migrations', m0.uuid, 'record.json');
    const read = (h: string) =>
      fs.existsSync(rec(h)) ? (JSON.parse(fs.readFileSync(rec(h), 'utf8')) as { stage: string; page_server_pid?: number | null }) : null;
    let pid: number | null = null;
    for (let i = 0; i < 1200 && pid === null; i++) {
      const target = read('compute2');
      if (target?.stage === 'restored') pid = read('compute1')?.page_server_pid ?? null;
      else await sleep(25);
    }
    expect(pid).not.toBeNull();
    // CRIU's page server on compute1, started by this test's migration: ended by its PID.
    const tKill = Date.now();
    await execFileP('kill', ['-KILL', String(pid)]);
    const m = await waitMigration(m0.uuid, undefined, 120_000);
    const ms = Date.now() - tKill;
    process.stdout.write(`[postcopy-rest] page server killed: ${m.status}/${m.phase} after ${ms} ms: ${m.error}\n`);
    expect(m).toMatchObject({ status: 'error', phase: 'needs-operator', mode: 'post-copy' });
    expect(m.error).toMatch(/post-copy of .* did not finish/);
    expect(m.error).toMatch(/Ferry does not choose a copy/);
    expect(ms).toBeLessThan(90_000);
    // The target's copy, whose memory was incomplete, does not run on.
    for (let i = 0; i < 100 && (await containerOn(c2, name))?.State === 'running'; i++) await sleep(200);
    expect((await containerOn(c2, name))?.State).not.toBe('running');
  });
});
