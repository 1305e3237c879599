/**
 * The soak's containers, one per workload, each moved back and forth for the whole run: the
 * counter (its count goes on from where it was), Redis with a writer over ferry-fabric (sentinel,
 * key count, and no acknowledged write lost) and the stream (one TCP connection from the client
 * namespace keeps receiving 1, 2, 3, ... with nothing missing or repeated). A subject that broke is
 * replaced by a fresh one on compute1, so one loss does not count again and again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type Docker from 'dockerode';
import { sleep } from '../common/sleep.js';
import { demux, execOut, removeQuietly } from './docker.js';
import { startWriter, type RedisWriter } from './redis-writer.js';
import type { WorkloadKind } from './catalogue.js';
import type { HostName } from './verdict.js';

export interface SoakEnv {
  engines: Record<HostName, Docker>;
  fabric: string;
  clientNetns: string;
  /** Unique per run, so names never clash with another run's leftovers. */
  tag: string;
}

export interface Subject {
  kind: WorkloadKind;
  name: string;
  /** Where it runs now (as far as the soak knows). */
  host: HostName;
  /** What the running copy holds before a migration, to compare with after. */
  snapshot(): Promise<void>;
  /** Whether the copy running on `h` kept its state (waits a few seconds for progress). */
  stateKept(h: HostName): Promise<boolean>;
  /** Remove it from both hosts and stop its client. */
  remove(): Promise<void>;
}

/**
 * The soak's fabric addresses: .220-.249, outside both engines' automatic ranges, the bench's
 * (.200-.219) and the tests'. Each new subject takes the next one, with a MAC of its own: a
 * replacement never inherits the bridge's memory of the one it replaces (on the other host).
 */
function fabricAddress(seq: number): { ip: string; mac: string } {
  const last = 220 + (seq % 30);
  return { ip: `10.250.0.${last}`, mac: `02:42:0a:fa:00:${last.toString(16).padStart(2, '0')}` };
}

const REDIS_KEYS = 50_000;

async function until<T>(fn: () => Promise<T | null>, timeoutMs: number, everyMs = 200): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) return null;
    await sleep(everyMs);
  }
}

async function create(
  env: SoakEnv,
  name: string,
  image: string,
  extra: Partial<Docker.ContainerCreateOptions> = {},
  addr?: { ip: string; mac: string },
): Promise<void> {
  const d = env.engines.compute1;
  const ct = await d.createContainer({
    Image: image,
    name,
    ...extra,
    ...(addr
      ? {
          MacAddress: addr.mac,
          HostConfig: { NetworkMode: env.fabric },
          NetworkingConfig: { EndpointsConfig: { [env.fabric]: { IPAMConfig: { IPv4Address: addr.ip } } } },
        }
      : {}),
  });
  await ct.start();
}

async function numbersLogged(d: Docker, name: string): Promise<number[]> {
  const buf = (await d.getContainer(name).logs({ stdout: true, stderr: false, follow: false, tail: 20 })) as unknown as Buffer;
  return demux(buf)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

function counter(env: SoakEnv, seq: number): Subject & { start(): Promise<void> } {
  const name = `soak-counter-${env.tag}-${seq}`;
  let before = 0;
  const s: Subject = {
    kind: 'counter',
    name,
    host: 'compute1',
    async snapshot() {
      const nums = await numbersLogged(env.engines[s.host], name).catch(() => []);
      before = nums.length ? nums[nums.length - 1] : 0;
    },
    async stateKept(h) {
      // Counting goes on from where it was: later numbers, consecutive (a restart would print 1, 2, ...).
      const ok = await until(async () => {
        const nums = await numbersLogged(env.engines[h], name);
        const n = nums.length;
        return n >= 2 && nums[n - 1] > before && nums[n - 1] === nums[n - 2] + 1 ? true : null;
      }, 8000);
      return ok === true;
    },
    async remove() {
      for (const d of Object.values(env.engines)) await removeQuietly(d, name);
    },
  };
  return Object.assign(s, {
    async start() {
      await create(env, name, 'ferry/counter:latest', { Env: ['COUNTER_INTERVAL=0.1'] });
      const counting = await until(async () => ((await numbersLogged(env.engines.compute1, name)).length >= 2 ? true : null), 10_000, 100);
      if (!counting) throw new Error(`${name} never counted`);
    },
  });
}

function redis(env: SoakEnv, seq: number): Subject & { start(): Promise<void> } {
  const name = `soak-redis-${env.tag}-${seq}`;
  const sentinel = `kept-${env.tag}-${seq}`;
  const addr = fabricAddress(seq);
  let writer: RedisWriter | null = null;
  let lastAck = 0;
  const cli = (h: HostName, args: string[]) => execOut(env.engines[h], name, ['redis-cli', ...args]);
  const s: Subject = {
    kind: 'redis',
    name,
    host: 'compute1',
    async snapshot() {
      lastAck = writer?.acks.at(-1)?.v ?? 0;
    },
    async stateKept(h) {
      if (!writer) return false;
      // The writer is answered again after the move (its count passes the last one before it).
      const since = lastAck;
      const answered = await until(async () => ((writer?.acks.at(-1)?.v ?? 0) > since ? true : null), 15_000);
      // Every acknowledged INCR is in the counter: read the last ack first, then the value.
      const acked = writer.acks.at(-1)?.v ?? 0;
      const writes = Number(await cli(h, ['GET', 'writes']).catch(() => 'NaN'));
      const got = await cli(h, ['GET', 'sentinel']).catch(() => '');
      const keys = await cli(h, ['DBSIZE']).catch(() => '');
      return answered === true && writes >= acked && got === sentinel && keys === String(REDIS_KEYS + 2);
    },
    async remove() {
      writer?.stop();
      writer = null;
      for (const d of Object.values(env.engines)) await removeQuietly(d, name);
    },
  };
  return Object.assign(s, {
    async start() {
      await create(env, name, 'ferry/redis:latest', {}, addr);
      const up = await until(async () => ((await cli('compute1', ['PING'])) === 'PONG' ? true : null), 10_000, 100);
      if (!up) throw new Error(`${name} never answered PING`);
      await cli('compute1', ['DEBUG', 'POPULATE', String(REDIS_KEYS)]);
      await cli('compute1', ['SET', 'sentinel', sentinel]);
      await cli('compute1', ['SET', 'writes', '0']);
      writer = startWriter(addr.ip, env.clientNetns);
      const writing = await until(async () => ((writer?.acks.length ?? 0) > 0 ? true : null), 10_000, 100);
      if (!writing) throw new Error(`the writer never got an answer from ${name}`);
    },
  });
}

function stream(env: SoakEnv, seq: number): Subject & { start(): Promise<void> } {
  const name = `soak-stream-${env.tag}-${seq}`;
  const addr = fabricAddress(seq);
  let client: ChildProcess | null = null;
  const got: number[] = [];
  let broken = false;
  let before = 0;
  const s = {
    kind: 'stream' as const,
    name,
    host: 'compute1' as HostName,
    async snapshot() {
      before = got.at(-1) ?? 0;
    },
    async stateKept(): Promise<boolean> {
      // The same connection goes on: numbers beyond the last one before, none missing or repeated.
      const ok = await until(async () => ((got.at(-1) ?? 0) > before + 1 ? true : null), 10_000);
      const inOrder = got.every((v, i) => v === i + 1);
      return ok === true && inOrder && !broken;
    },
    async remove() {
      if (client?.pid && client.exitCode === null && client.signalCode === null) process.kill(client.pid, 'SIGTERM');
      client = null;
      for (const d of Object.values(env.engines)) await removeQuietly(d, name);
    },
    async start() {
      await create(env, name, 'ferry/stream:latest', { Env: ['STREAM_INTERVAL_US=100000'] }, addr);
      // The server listens once nc runs; the client connects once and never again.
      await until(
        async () => ((await env.engines.compute1.getContainer(name).top()).Processes?.some((p: string[]) => p.join(' ').includes('nc')) ? true : null),
        10_000,
        100,
      );
      await sleep(300);
      client = spawn('ip', ['netns', 'exec', env.clientNetns, 'busybox', 'nc', addr.ip, '9000'], { stdio: ['pipe', 'pipe', 'ignore'] });
      let buf = '';
      client.stdout?.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        for (const p of parts) if (p.trim()) got.push(Number(p.trim()));
      });
      client.on('exit', () => (broken = true));
      const flowing = await until(async () => (got.length >= 3 ? true : null), 10_000, 100);
      if (!flowing) throw new Error(`the stream client got nothing from ${name}`);
    },
  };
  return s;
}

/** A fresh subject of `kind` on compute1, started and holding its state (removed again if it does not start). */
export async function newSubject(env: SoakEnv, kind: WorkloadKind, seq: number): Promise<Subject> {
  const s: Subject & { start(): Promise<void> } = kind === 'counter' ? counter(env, seq) : kind === 'redis' ? redis(env, seq) : stream(env, seq);
  try {
    await s.start();
  } catch (e) {
    await s.remove();
    throw e;
  }
  return s;
}
