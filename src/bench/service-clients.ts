/**
 * The services' own clients (issue 22): a migration judged on what the client of a real service
 * saw, not on a probe. Each client writes one thing at a time and records when each write was
 * acknowledged; the longest time between two acknowledgements across the migration is the pause
 * the client saw, and afterwards every acknowledged write must be there.
 * - pgbench: PostgreSQL loaded with `pgbench -i -s N`, pgbench's TPC-B-like load on two
 *   connections for the whole run, and beside it one psql session inserting ids 1, 2, 3, ... into
 *   a table of its own (`INSERT ... RETURNING id`: psql prints the id once it is committed).
 *   Afterwards: every acknowledged id is in the table, pgbench's clients did not abort, and the
 *   loaded accounts are all there.
 * - append: each number the client sends is appended by the container to a file in its writable
 *   layer and to one in a named local volume, then echoed back; afterwards both files hold every
 *   acknowledged number.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from '../common/sleep.js';
import { sh, waitUntil } from './cloud.js';
import type { RunResult, Workload } from './types.js';
import type { MigrationOutcome } from './runners/common.js';

export interface Ack {
  t: number;
  v: number;
}

/** Where the client reaches the service, and how a runner reads files in its container. */
export interface ServiceAccess {
  host: string;
  port: number;
  /** Network namespace the client runs in (ip netns exec); null = this one. */
  netns: string | null;
  /** Run a command in the container where it runs after the move; stdout. */
  execAfter(args: string[]): Promise<string>;
  /** No running copy left where the workload came from. */
  sourceGone(): Promise<boolean>;
}

export interface ServiceVerdict {
  verified: boolean;
  reason: string | null;
  /** The evidence in words (the report's state column). */
  evidence: string;
}

export interface ServiceClient {
  /** Load the data the workload starts with. */
  prepare(): Promise<void>;
  /** Start the load and the acknowledged writer; resolves once writes are acknowledged. */
  start(): Promise<void>;
  readonly acks: Ack[];
  /** Errors the writer saw (a broken connection, a refused write). */
  readonly errors: string[];
  /** End the load and the writer. */
  finish(): Promise<void>;
  verify(): Promise<ServiceVerdict>;
}

function inNetns(netns: string | null, cmd: string[]): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, ...cmd]] : [cmd[0], cmd.slice(1)];
}

function run(netns: string | null, cmd: string[], timeoutMs = 600_000) {
  const [c, a] = inNetns(netns, cmd);
  return sh(c, a, { timeoutMs });
}

function spawnIn(netns: string | null, cmd: string[]): ChildProcess {
  const [c, a] = inNetns(netns, cmd);
  return spawn(c, a, { stdio: ['pipe', 'pipe', 'pipe'] });
}

function stopChild(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('close', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Lines of a child's stdout, as they come. */
function onLines(child: ChildProcess, each: (line: string) => void): void {
  let rest = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) each(l.trim());
  });
}

/** 1..n are all in `present` (n = the last acknowledged value); the first missing one, or null. */
export function firstMissing(n: number, present: Set<number>): number | null {
  for (let i = 1; i <= n; i++) if (!present.has(i)) return i;
  return null;
}

function lastAcked(acks: Ack[]): number {
  return acks.length ? acks[acks.length - 1].v : 0;
}

const WRITE_EVERY_MS = 10;

class PgbenchClient implements ServiceClient {
  readonly acks: Ack[] = [];
  readonly errors: string[] = [];
  private load: ChildProcess | null = null;
  private loadErr = '';
  private writer: ChildProcess | null = null;
  private loadEndedEarly = false;

  constructor(
    private readonly a: ServiceAccess,
    private readonly scale: number,
  ) {}

  private base(): string[] {
    return ['-h', this.a.host, '-p', String(this.a.port), '-U', 'postgres'];
  }

  private psql(sql: string): Promise<string> {
    return run(this.a.netns, ['psql', ...this.base(), '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql, 'postgres']).then((r) => r.stdout);
  }

  async prepare(): Promise<void> {
    await waitUntil(
      `PostgreSQL at ${this.a.host}:${this.a.port}`,
      async () => (await run(this.a.netns, ['pg_isready', '-q', ...this.base()], 10_000)).code === 0,
      60_000,
      250,
    );
    await run(this.a.netns, ['pgbench', ...this.base(), '-i', '-q', '-s', String(this.scale), 'postgres'], 3_600_000);
    await this.psql('CREATE TABLE acked (id integer PRIMARY KEY)');
  }

  async start(): Promise<void> {
    this.load = spawnIn(this.a.netns, ['pgbench', ...this.base(), '-c', '2', '-j', '1', '-T', '36000', '-n', 'postgres']);
    this.load.stderr?.setEncoding('utf8').on('data', (d: string) => (this.loadErr = (this.loadErr + d).slice(-4000)));
    this.load.on('close', () => (this.loadEndedEarly = this.writer !== null));
    const w = spawnIn(this.a.netns, ['psql', ...this.base(), '-q', '-At', 'postgres']);
    this.writer = w;
    w.stderr?.setEncoding('utf8').on('data', (d: string) => this.errors.push(d.trim().slice(0, 300)));
    let next = 1;
    const send = () => {
      if (w.exitCode === null && w.stdin?.writable) w.stdin.write(`INSERT INTO acked VALUES (${next}) RETURNING id;\n`);
    };
    onLines(w, (line) => {
      if (!/^\d+$/.test(line)) return;
      this.acks.push({ t: Date.now(), v: Number(line) });
      next = Number(line) + 1;
      setTimeout(send, WRITE_EVERY_MS);
    });
    send();
    await waitUntil('the first acknowledged inserts', async () => this.acks.length >= 20, 30_000, 20);
  }

  async finish(): Promise<void> {
    const w = this.writer;
    this.writer = null;
    w?.stdin?.end();
    await stopChild(w);
    this.loadEndedEarly = this.loadEndedEarly || (this.load !== null && this.load.exitCode !== null);
    await stopChild(this.load);
  }

  async verify(): Promise<ServiceVerdict> {
    const n = lastAcked(this.acks);
    const ids = new Set((await this.psql(`SELECT id FROM acked WHERE id <= ${n}`)).split('\n').filter(Boolean).map(Number));
    const accounts = Number(await this.psql('SELECT count(*) FROM pgbench_accounts'));
    const missing = firstMissing(n, ids);
    const aborted = /aborted/.test(this.loadErr) || this.loadEndedEarly;
    const evidence = `${n} inserts acknowledged, ${ids.size} present; pgbench ${aborted ? 'ABORTED' : 'ran on'}; ${accounts} accounts`;
    if (missing !== null) return { verified: false, reason: `acknowledged insert ${missing} missing after the move (${ids.size} of ${n} present)`, evidence };
    if (aborted) return { verified: false, reason: `pgbench's load ended: ${this.loadErr.trim().split('\n').slice(-2).join(' | ')}`, evidence };
    if (accounts !== this.scale * 100_000) return { verified: false, reason: `${accounts} rows in pgbench_accounts, not ${this.scale * 100_000}`, evidence };
    return { verified: true, reason: null, evidence };
  }
}

// One line at a time on one connection; a broken connection is noted and opened again.
const APPEND_WRITER = `
const net = require('node:net');
const [host, port, every] = process.argv.slice(1);
let sock = null, buf = '', next = 1;
function send() { if (sock && !sock.destroyed) sock.write(next + '\\n'); }
function connect() {
  sock = net.connect(Number(port), host, send);
  sock.setNoDelay(true);
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line === String(next)) { process.stdout.write(JSON.stringify({ t: Date.now(), v: next }) + '\\n'); next++; setTimeout(send, Number(every)); }
    }
  });
  sock.on('error', (e) => process.stderr.write('error ' + (e.code || e.message) + '\\n'));
  sock.on('close', () => { buf = ''; setTimeout(connect, 50); });
}
connect();
`;

// The files the writable layer and the volume start with (seq: busybox has no dd).
const PREFILL_LINES = 8_000_000; // ~60 MB each

class AppendClient implements ServiceClient {
  readonly acks: Ack[] = [];
  readonly errors: string[] = [];
  private writer: ChildProcess | null = null;

  constructor(
    private readonly a: ServiceAccess,
    private readonly execBefore: (args: string[]) => Promise<string>,
    private readonly volume: string,
  ) {}

  async prepare(): Promise<void> {
    await waitUntil('the appender listening', async () => (await this.execBefore(['ls', '/bin/appender'])).includes('appender'), 30_000, 100);
    await this.execBefore(['sh', '-c', `seq 1 ${PREFILL_LINES} > /layer/prefill && seq 1 ${PREFILL_LINES} > ${this.volume}/prefill`]);
  }

  async start(): Promise<void> {
    const w = spawnIn(this.a.netns, [process.execPath, '-e', APPEND_WRITER, this.a.host, String(this.a.port), String(WRITE_EVERY_MS)]);
    this.writer = w;
    w.stderr?.setEncoding('utf8').on('data', (d: string) => this.errors.push(...d.trim().split('\n')));
    onLines(w, (line) => {
      if (line) this.acks.push(JSON.parse(line) as Ack);
    });
    await waitUntil('the first acknowledged appends', async () => this.acks.length >= 20, 30_000, 20);
  }

  async finish(): Promise<void> {
    await stopChild(this.writer);
    this.writer = null;
  }

  async verify(): Promise<ServiceVerdict> {
    const n = lastAcked(this.acks);
    const read = async (file: string) => new Set((await this.a.execAfter(['cat', file])).split('\n').filter(Boolean).map(Number));
    const layer = await read('/layer/appended');
    const vol = await read(`${this.volume}/appended`);
    const prefill = (await this.a.execAfter(['ls', '-l', '/layer/prefill', `${this.volume}/prefill`])).split('\n').length;
    const evidence = `${n} appends acknowledged; layer holds ${layer.size}, volume ${vol.size}${this.errors.length ? `; client saw ${this.errors.length} errors` : ''}`;
    const inLayer = firstMissing(n, layer);
    const inVol = firstMissing(n, vol);
    if (inLayer !== null) return { verified: false, reason: `acknowledged append ${inLayer} missing from the file in the writable layer`, evidence };
    if (inVol !== null) return { verified: false, reason: `acknowledged append ${inVol} missing from the file in the volume`, evidence };
    if (prefill !== 2) return { verified: false, reason: 'the prefilled files are not both there after the move', evidence };
    return { verified: true, reason: null, evidence };
  }
}

export function serviceClient(w: Workload, a: ServiceAccess, execBefore: (args: string[]) => Promise<string>): ServiceClient {
  if (w.client === 'pgbench') return new PgbenchClient(a, w.scale ?? 1);
  if (w.client === 'append') return new AppendClient(a, execBefore, w.volume ?? '/vol');
  throw new Error(`workload ${w.name} has no client`);
}

/** The longest time between two consecutive acknowledgements of a span that overlaps [from, to]. */
export function longestPause(acks: Ack[], from: number, to: number): number | null {
  let gap: number | null = null;
  for (let i = 1; i < acks.length; i++) if (acks[i].t > from && acks[i - 1].t < to) gap = Math.max(gap ?? 0, acks[i].t - acks[i - 1].t);
  return gap;
}

/**
 * Prepare the service, start its client, migrate, wait for acknowledgements on the target, and
 * judge the run: every acknowledged write there, the source copy gone, the client's longest
 * pause as the downtime.
 */
export async function clientMigration(
  result: RunResult,
  client: ServiceClient,
  a: ServiceAccess,
  migrate: () => Promise<MigrationOutcome>,
  log: (s: string) => void,
): Promise<void> {
  const tp = Date.now();
  await client.prepare();
  result.detail.prepare_ms = Date.now() - tp;
  try {
    await client.start();
    const t0 = Date.now();
    const out = await migrate();
    const t1 = Date.now();
    Object.assign(result, { ...out, detail: { ...result.detail, ...(out.detail ?? {}) } });
    const after = () => client.acks.filter((x) => x.t > t1).length;
    const deadline = Date.now() + 60_000;
    while (after() < 50 && Date.now() < deadline) await sleep(50);
    if (after() < 50) log(`  the client got ${after()} acknowledgements within 60 s after the migration of ${result.workload} (${result.method})`);
    result.downtime_ms = after() > 0 ? longestPause(client.acks, t0, t1) : null;
    result.detail.started_at = t0;
    result.probe = { answers: client.acks.length, failures: client.errors.length, answers_after: after() };
  } finally {
    await client.finish();
  }
  const v = await client
    .verify()
    .catch((e: Error): ServiceVerdict => ({ verified: false, reason: `could not read the state after the move: ${e.message}`, evidence: 'state not read' }));
  const gone = await a.sourceGone().catch(() => null);
  result.verified = v.verified;
  result.detail.client_evidence = v.evidence;
  result.detail.source_gone = gone;
  let error: string | null = null;
  let verdict = 'ok';
  if (!v.verified) [verdict, error] = ['lost state', `lost state: ${v.reason}`];
  else if (gone !== true)
    [verdict, error] = ['source still running', gone === false ? 'the source copy still runs after the move' : 'the source copy was not checked'];
  else if (result.downtime_ms === null) [verdict, error] = ['failed', 'failed: no acknowledgement after the move'];
  result.ok = verdict === 'ok';
  result.error = result.error ?? error;
  result.detail.verdict = verdict === 'failed' ? (error ?? 'failed') : verdict;
}
