/**
 * Applications nobody here wrote, moved through the REST API on the dev cloud (Keystone,
 * ferry-api, the conductor over RabbitMQ, both agents, Docker, the patched CRIU), each under
 * its own client's load on ferry-fabric, judged on what that client saw (issue 22):
 * - PostgreSQL 15 running as `postgres` (data in the writable layer) under pgbench: no client
 *   aborted, every transaction pgbench counted as committed is in pgbench_history afterwards,
 *   and transactions went on committing on the target.
 * - nginx with its workers as nobody under steady requests: every request is answered with the
 *   file, those in flight as the freeze began too, and the workers on the target are still nobody's.
 * Both: one running copy on compute2, none on compute1, the record `completed`.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import type Docker from 'dockerode';
import { sleep } from '../../../src/common/sleep.js';
import type { Migration } from '../../../src/objects/migration.js';
import { cloud } from '../../helpers/cloud.js';
import { containerOn, engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { admin, waitKnown, waitMigration } from '../../helpers/ferry.js';
import { startHttpClient, stopHttpClients } from '../../helpers/http-client.js';
import { ensureImage } from '../faults/harness.js';

jest.setTimeout(180_000);
const execFileP = promisify(execFile);

const c1 = engine('compute1');
const c2 = engine('compute2');
const names = { postgres: uniqueName('svc-postgres'), nginx: uniqueName('svc-nginx') };
const NET = { postgres: ['10.250.0.186', '02:42:0a:fa:00:ba'], nginx: ['10.250.0.187', '02:42:0a:fa:00:bb'] } as const;
const POSTGRES_UID = '999';
const NOBODY = '65534';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-services-'));

afterAll(async () => {
  stopHttpClients();
  for (const n of Object.values(names)) {
    await removeQuietly(c1, n);
    await removeQuietly(c2, n);
  }
  fs.rmSync(work, { recursive: true, force: true });
});

/** A command in the dev cloud's client namespace (the PostgreSQL client tools are the host's). */
async function inClientNetns(cmd: string[], timeout = 60_000): Promise<string> {
  const r = await execFileP('ip', ['netns', 'exec', cloud().fabric.client_netns, ...cmd], { timeout, maxBuffer: 16 * 1024 * 1024 });
  return r.stdout.trim();
}

async function runOnFabric(image: string, name: string, net: readonly [string, string]): Promise<Docker.Container> {
  const fabric = cloud().fabric.network;
  const ct = await c1.createContainer({
    Image: image,
    name,
    MacAddress: net[1],
    HostConfig: { NetworkMode: fabric },
    NetworkingConfig: { EndpointsConfig: { [fabric]: { IPAMConfig: { IPv4Address: net[0] } } } },
  });
  await ct.start();
  return ct;
}

/** Uid and command line of each process of the container, as the engine's host sees them. */
async function processes(d: Docker, name: string): Promise<{ uid: string; args: string }[]> {
  // The engine needs the pid column to pick the container's processes.
  const top = (await d.getContainer(name).top({ ps_args: '-eo uid,pid,args' })) as { Processes: string[][] };
  return top.Processes.map((p) => ({ uid: p[0].trim(), args: p.slice(2).join(' ') }));
}

async function migrate(name: string): Promise<{ m: Migration; tAsk: number; tDone: number }> {
  await waitKnown(name, 'compute1');
  const tAsk = Date.now();
  const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${name}/migrate`, {});
  expect(r.status).toBe(202);
  const m = await waitMigration(r.body.migration.uuid);
  return { m, tAsk, tDone: Date.now() };
}

/** The invariant of a finished move: completed, one running copy on compute2, none on compute1. */
async function expectMoved(m: Migration, name: string): Promise<void> {
  expect(m).toMatchObject({ status: 'completed', source_host: 'compute1', dest_host: 'compute2', error: null });
  expect((await containerOn(c2, name))?.State).toBe('running');
  expect(await containerOn(c1, name)).toBeNull();
}

/** The longest time between two consecutive moments in `times` (sorted) of a span that overlaps [from, to]. */
function longestGap(times: number[], from: number, to: number): number {
  let gap = 0;
  for (let i = 1; i < times.length; i++) if (times[i] > from && times[i - 1] < to) gap = Math.max(gap, times[i] - times[i - 1]);
  return gap;
}

describe('services under their clients’ load, moved through the REST API', () => {
  it('moves PostgreSQL 15 (as postgres) under pgbench: no client aborted, every committed transaction there', async () => {
    await ensureImage('compute2', 'ferry/postgres:15');
    const name = names.postgres;
    const ip = NET.postgres[0];
    await runOnFabric('ferry/postgres:15', name, NET.postgres);
    for (let i = 0; i < 150; i++) {
      if (
        await inClientNetns(['pg_isready', '-q', '-h', ip]).then(
          () => true,
          () => false,
        )
      )
        break;
      await sleep(200);
    }
    await inClientNetns(['pgbench', '-h', ip, '-U', 'postgres', '-i', '-q', '-s', '2', 'postgres']);
    const server = (await processes(c1, name)).filter((p) => /postgres/.test(p.args));
    expect(server.length).toBeGreaterThanOrEqual(4);
    expect(server.every((p) => p.uid === POSTGRES_UID)).toBe(true);

    // pgbench's TPC-B-like transaction inserts one pgbench_history row; -l logs each one it saw committed.
    const logPrefix = path.join(work, 'pgbench');
    const bench = spawn(
      'ip',
      [
        'netns',
        'exec',
        cloud().fabric.client_netns,
        'pgbench',
        '-h',
        ip,
        '-U',
        'postgres',
        '-c',
        '2',
        '-j',
        '1',
        '-T',
        '25',
        '-l',
        `--log-prefix=${logPrefix}`,
        'postgres',
      ],
      {
        cwd: work,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    bench.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    bench.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number>((resolve) => bench.on('close', (code) => resolve(code ?? -1)));
    await sleep(3000);

    const { m, tAsk, tDone } = await migrate(name);
    const code = await exited;
    const tail = out.trim().split('\n').slice(-12).join('\n');
    expect({ code, tail }).toMatchObject({ code: 0 });
    expect(out).toMatch(/number of failed transactions: 0 /);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);

    // Each log line: client, transaction number, latency us, script, epoch s, us of the end.
    const ends: number[] = [];
    for (const f of fs.readdirSync(work).filter((x) => x.startsWith('pgbench.'))) {
      for (const line of fs.readFileSync(path.join(work, f), 'utf8').split('\n')) {
        const p = line.trim().split(/\s+/);
        if (p.length >= 6) ends.push(Number(p[4]) * 1000 + Math.floor(Number(p[5]) / 1000));
      }
    }
    ends.sort((a, b) => a - b);
    expect(ends.length).toBe(processed);
    const committedAfter = ends.filter((t) => t > tDone).length;
    const gap = longestGap(ends, tAsk, tDone);
    const present = Number(await inClientNetns(['psql', '-h', ip, '-U', 'postgres', '-At', '-c', 'SELECT count(*) FROM pgbench_history', 'postgres']));
    process.stdout.write(
      `[services] postgres: freeze_ms=${m.freeze_ms} total_ms=${m.total_ms} transferred=${m.transferred_bytes} committed=${processed} present=${present} after_move=${committedAfter} longest_client_pause_ms=${gap}\n`,
    );
    await expectMoved(m, name);
    expect(processed).toBeGreaterThan(100);
    expect(present).toBe(processed);
    expect(committedAfter).toBeGreaterThan(50); // it went on committing on compute2
    const moved = (await processes(c2, name)).filter((p) => /postgres/.test(p.args));
    expect(moved.length).toBeGreaterThanOrEqual(4);
    expect(moved.every((p) => p.uid === POSTGRES_UID)).toBe(true);
  });

  it('moves nginx (workers as nobody) under steady requests: every request answered, in flight at the freeze or after', async () => {
    await ensureImage('compute2', 'ferry/nginx:latest');
    const name = names.nginx;
    const ip = NET.nginx[0];
    await runOnFabric('ferry/nginx:latest', name, NET.nginx);
    const workers = async (d: Docker) => (await processes(d, name)).filter((p) => /nginx: worker process/.test(p.args));
    // The master forks its workers a moment after the container starts.
    let before = await workers(c1);
    for (let i = 0; i < 100 && before.length < 2; i++) before = await sleep(100).then(() => workers(c1));
    expect(before.length).toBe(2);
    expect(before.every((p) => p.uid === NOBODY)).toBe(true);

    const client = startHttpClient(ip);
    for (let i = 0; i < 100 && client.answers.filter((a) => a.ok).length < 20; i++) await sleep(100);
    expect(client.answers.filter((a) => a.ok).length).toBeGreaterThanOrEqual(20);

    const { m, tAsk, tDone } = await migrate(name);
    const ok = () => client.answers.filter((a) => a.ok && a.t0 > tDone).length;
    for (let i = 0; i < 100 && ok() < 50; i++) await sleep(100);
    client.stop();
    const answers = client.answers;
    const after = answers.filter((a) => a.t0 > tDone);
    const failed = answers.filter((a) => !a.ok);
    const gap = longestGap(
      answers.filter((a) => a.ok).map((a) => a.t),
      tAsk,
      tDone,
    );
    // A failure is shown with when it was sent and when it ended, relative to the request to migrate.
    const failures = failed.map((a) => `${a.v}@${a.t0 - tAsk}..${a.t - tAsk}ms`).join(',');
    process.stdout.write(
      `[services] nginx: freeze_ms=${m.freeze_ms} total_ms=${m.total_ms} requests=${answers.length} failed=${failed.length} (${failures}) migration_ms=${tDone - tAsk} after_move=${after.length} longest_client_gap_ms=${gap}\n`,
    );
    await expectMoved(m, name);
    expect(after.length).toBeGreaterThanOrEqual(50);
    // Every request answered, those in flight as the freeze began too (connections not yet accepted are held back before the checkpoint).
    expect(failed).toEqual([]);
    expect(new Set(after.map((a) => a.v))).toEqual(new Set(['served by nginx\n']));
    const moved = await workers(c2);
    expect(moved.length).toBe(2);
    expect(moved.every((p) => p.uid === NOBODY)).toBe(true);
  });
});
