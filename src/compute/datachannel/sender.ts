/**
 * The sending end of the data channel (and the image fetch from the source). See protocol.ts.
 * transferParts is the whole upload of one migration: declare every part (plan), send each
 * as a tar stream with its own token (optionally gzip-compressed, as negotiated, and held to
 * [compute] migration_bandwidth), then commit. Every refusal becomes a TransferFailed that
 * carries the target's own message and HTTP status.
 *
 * Compression: the npm zstd/lz4 bindings either download prebuilt binaries from outside the
 * npm registry or build from source with node-gyp (zstd-napi), or only work on whole buffers
 * (lz4-napi); node:zlib's gzip streams, is built in and needs nothing installed, so the
 * channel uses gzip (level 1: CRIU's memory pages compress well, and the CPU cost stays low).
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { TransferFailed } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { packTree, treeStats } from './pack.js';
import type { CommitManifest, Encoding, PartReceipt } from './protocol.js';
import type { PartKind } from './tarsafe.js';
import { clientTlsOptions, type TlsMaterial } from './tls.js';
import type { PlanAnswer, PlannedPart } from './grants.js';
import { sleep } from '../../common/sleep.js';

const log = getLogger('compute.datachannel');

/**
 * Changes one part's bytes between the digest and the socket (what is read is digested, what
 * it returns is written; an empty buffer writes nothing). Only fault injection makes one.
 */
export type WireAlteration = (chunk: Buffer) => Buffer;

/** A data channel to reach: where, which host must answer (its certificate), and the token. */
export interface ChannelTarget {
  address: string;
  /** The host name the peer's certificate must carry (not checked without TLS). */
  host: string;
  token: string;
}

export interface ChannelClientOptions {
  /** This host's certificate, key and CA; null = plain HTTP ([compute] data_channel_insecure). */
  tls: TlsMaterial | null;
  /** Encoding to ask for each part; the target may answer "identity". */
  compression?: Encoding;
  /** Cap for all parts of one migration together, bytes per second; 0 = unlimited. */
  bandwidthBytesPerSec?: number;
  /** A part's wire alteration, if any (fault injection, ../faults/channel.ts; production: none). */
  alterWire?: (part: string) => WireAlteration | undefined;
}

/**
 * A shared pace for several streams: `take(n)` waits until n more bytes fit under the rate
 * (a virtual clock; bursts of up to 100 ms of traffic pass at once).
 */
export class Throttle {
  private cursor = 0;

  constructor(
    readonly bytesPerSec: number,
    private readonly burstMs = 100,
  ) {}

  async take(n: number): Promise<void> {
    if (this.bytesPerSec <= 0) return;
    const now = Date.now();
    this.cursor = Math.max(this.cursor, now - this.burstMs) + (n * 1000) / this.bytesPerSec;
    const wait = this.cursor - now;
    if (wait > 0) await sleep(wait);
  }
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new TransferFailed(`bad data channel address ${address}`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

function request(opts: ChannelClientOptions, target: { address: string; host: string }, options: http.RequestOptions, agent?: http.Agent): http.ClientRequest {
  const { host, port } = splitAddress(target.address);
  const base = { ...options, host, port, agent: agent ?? false };
  const req = opts.tls ? https.request({ ...base, ...clientTlsOptions(opts.tls, target.host) }) : http.request(base);
  // No Nagle: a part's last small write (end chunk and trailers) would otherwise wait for the
  // receiver's delayed ACK, 40 ms per part.
  req.on('socket', (s) => s.setNoDelay(true));
  return req;
}

/**
 * Connections kept open for the requests of one upload (plan, parts, commit): each new TLS
 * connection costs a handshake (~8-10 ms here), and the upload happens while the container is
 * frozen. The pool keys connections by address and expected peer name, so none is reused for
 * another host. Destroyed when the upload ends.
 */
function uploadPool(opts: ChannelClientOptions): http.Agent {
  return opts.tls ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
}

function describe(res: http.IncomingMessage, body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: string } };
    if (j.error?.message) return `${res.statusCode}: ${j.error.message}`;
  } catch {
    /* not JSON */
  }
  return `${res.statusCode}: ${body.slice(0, 500)}`;
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  let s = '';
  res.setEncoding('utf8');
  for await (const c of res) s += c as string;
  return s;
}

function partPath(migrationId: string, part: string): string {
  return `/v1/migrations/${encodeURIComponent(migrationId)}/parts/${part.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Stream one readable to PUT /parts/{part}, with the SHA-256 trailer. Returns the receiver's
 * receipt plus the digest of what was read from `source` (the bytes on the wire).
 */
export async function sendStream(
  opts: ChannelClientOptions,
  target: ChannelTarget,
  migrationId: string,
  part: string,
  source: Readable,
  extra: { encoding?: Encoding; throttle?: Throttle; signal?: AbortSignal; agent?: http.Agent } = {},
): Promise<PartReceipt & { sent_sha256: string }> {
  const alter = opts.alterWire?.(part);
  const headers: Record<string, string> = {
    authorization: `Bearer ${target.token}`,
    'content-type': 'application/x-tar',
    trailer: 'x-ferry-sha256, x-ferry-bytes',
    expect: '100-continue',
  };
  if (extra.encoding && extra.encoding !== 'identity') headers['content-encoding'] = extra.encoding;
  const req = request(opts, target, { method: 'PUT', path: partPath(migrationId, part), headers }, extra.agent);
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  response.catch(() => undefined);
  const abort = () => {
    req.destroy(new Error('stopped: another part of the migration failed'));
    source.destroy();
  };
  if (extra.signal?.aborted) abort();
  extra.signal?.addEventListener('abort', abort, { once: true });
  req.flushHeaders();
  // The receiver checks the token before the body: a refusal arrives instead of "100 Continue".
  const first = await Promise.race([once(req, 'continue').then(() => null), response]).catch((e: Error) => {
    source.destroy();
    throw new TransferFailed(`sending ${part} to ${target.host} (${target.address}) failed: ${e.message}`, { part });
  });
  if (first) {
    source.destroy();
    const body = await readBody(first);
    req.destroy();
    throw new TransferFailed(`target refused ${part}: ${describe(first, body)}`, { part, status: first.statusCode });
  }
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let writeError: Error | null = null;
  let answered = false;
  req.on('error', (e) => (writeError = e));
  response.then(
    () => (answered = true),
    () => undefined,
  );
  try {
    for await (const c of source) {
      let chunk = c as Buffer;
      hash.update(chunk);
      bytes += chunk.length;
      if (alter) {
        chunk = alter(chunk);
        if (chunk.length === 0) continue;
      }
      if (extra.throttle) await extra.throttle.take(chunk.length);
      if (writeError || answered) break; // an answer before the end is a refusal
      if (!req.write(chunk))
        await Promise.race([
          once(req, 'drain'),
          response.then(
            () => undefined,
            () => undefined,
          ),
        ]);
      if (req.destroyed) break;
    }
  } catch (e) {
    req.destroy();
    throw new TransferFailed(`reading ${part} for migration ${migrationId} failed: ${(e as Error).message}`);
  }
  const sha = hash.digest('hex');
  if (!writeError && !req.destroyed) {
    // An answer before the end is a refusal: end the body at once, without the digest, so the
    // target (which keeps the connection open while the body still arrives) can close cleanly.
    if (!answered) req.addTrailers({ 'x-ferry-sha256': sha, 'x-ferry-bytes': String(bytes) });
    req.end();
  }
  let res: http.IncomingMessage;
  try {
    res = await response;
  } catch (e) {
    throw new TransferFailed(`sending ${part} to ${target.host} (${target.address}) failed: ${(e as Error).message}`, { part });
  }
  const body = await readBody(res);
  if (res.statusCode !== 200) {
    req.destroy(); // its connection is not reused after a refusal
    throw new TransferFailed(`target refused ${part}: ${describe(res, body)}`, { part, status: res.statusCode });
  }
  if (writeError) throw new TransferFailed(`sending ${part} failed: ${(writeError as Error).message}`, { part });
  return { ...(JSON.parse(body) as PartReceipt), sent_sha256: sha };
}

/** Pack a directory with GNU tar (gzip it when asked) and send it as one part. */
export async function sendTree(
  opts: ChannelClientOptions,
  target: ChannelTarget,
  migrationId: string,
  part: string,
  dir: string,
  kind: PartKind,
  extra: { encoding?: Encoding; throttle?: Throttle; signal?: AbortSignal; agent?: http.Agent } = {},
): Promise<PartReceipt> {
  const packed = packTree(dir, kind);
  let stream: Readable = packed.stream;
  if (extra.encoding === 'gzip') {
    const gz = zlib.createGzip({ level: 1 });
    packed.stream.on('error', (e) => gz.destroy(e));
    stream = packed.stream.pipe(gz);
  }
  try {
    const receipt = await sendStream(opts, target, migrationId, part, stream, extra);
    await packed.done;
    return { part, bytes: receipt.bytes, sha256: receipt.sent_sha256, entries: receipt.entries };
  } catch (e) {
    packed.kill();
    throw e;
  }
}

async function requestJson(
  opts: ChannelClientOptions,
  target: { address: string; host: string },
  method: string,
  path: string,
  token: string,
  body: unknown,
  agent?: http.Agent,
): Promise<{ status: number; body: string; res: http.IncomingMessage }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      opts,
      target,
      {
        method,
        path,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) },
      },
      agent,
    );
    req.on('response', (res) => {
      readBody(res).then((b) => resolve({ status: res.statusCode ?? 0, body: b, res }), reject);
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** POST the plan with the upload grant; returns the per-part tokens and the commit token. */
export async function planTransfer(
  opts: ChannelClientOptions,
  grant: ChannelTarget,
  migrationId: string,
  parts: PlannedPart[],
  agent?: http.Agent,
): Promise<PlanAnswer> {
  let r;
  try {
    r = await requestJson(opts, grant, 'POST', `/v1/migrations/${encodeURIComponent(migrationId)}/plan`, grant.token, { parts }, agent);
  } catch (e) {
    throw new TransferFailed(`planning the transfer to ${grant.host} (${grant.address}) failed: ${(e as Error).message}`);
  }
  if (r.status !== 200) throw new TransferFailed(`target refused the plan: ${describe(r.res, r.body)}`, { status: r.status });
  return JSON.parse(r.body) as PlanAnswer;
}

export async function commit(
  opts: ChannelClientOptions,
  target: ChannelTarget,
  migrationId: string,
  manifest: CommitManifest,
  agent?: http.Agent,
): Promise<{ checkpoint_name: string; parts: PartReceipt[] }> {
  let r;
  try {
    r = await requestJson(opts, target, 'POST', `/v1/migrations/${encodeURIComponent(migrationId)}/commit`, target.token, manifest, agent);
  } catch (e) {
    throw new TransferFailed(`commit to ${target.host} (${target.address}) failed: ${(e as Error).message}`);
  }
  if (r.status !== 200) throw new TransferFailed(`target refused the commit: ${describe(r.res, r.body)}`, { status: r.status });
  return JSON.parse(r.body) as { checkpoint_name: string; parts: PartReceipt[] };
}

export interface TreeToSend {
  part: string;
  dir: string;
  kind: PartKind;
}

/**
 * The whole upload of one migration: plan, send every part in parallel, commit. Returns the
 * receipts (bytes and digests of what went over the wire) and the target's checkpoint name.
 */
export async function transferParts(
  opts: ChannelClientOptions,
  grant: ChannelTarget,
  migrationId: string,
  trees: TreeToSend[],
): Promise<{ receipts: PartReceipt[]; checkpoint_name: string }> {
  const pool = uploadPool(opts);
  try {
    return await upload(opts, grant, migrationId, trees, pool);
  } finally {
    pool.destroy();
  }
}

async function upload(
  opts: ChannelClientOptions,
  grant: ChannelTarget,
  migrationId: string,
  trees: TreeToSend[],
  agent: http.Agent,
): Promise<{ receipts: PartReceipt[]; checkpoint_name: string }> {
  const encoding: Encoding = opts.compression ?? 'identity';
  const t0 = Date.now();
  const planned: PlannedPart[] = trees.map((t) => ({ part: t.part, ...treeStats(t.dir), encoding }));
  const plan = await planTransfer(opts, grant, migrationId, planned, agent);
  const t1 = Date.now();
  const partMs: Record<string, number> = {};
  const throttle = opts.bandwidthBytesPerSec ? new Throttle(opts.bandwidthBytesPerSec) : undefined;
  // The first part that fails stops the others (the migration fails anyway; the frozen source waits).
  const stop = new AbortController();
  const receipts = await Promise.all(
    trees.map(async (t) => {
      const granted = plan.parts.find((p) => p.part === t.part);
      if (!granted) throw new TransferFailed(`target sent no token for part ${t.part}`);
      try {
        const receipt = await sendTree(opts, { ...grant, token: granted.token }, migrationId, t.part, t.dir, t.kind, {
          encoding: granted.encoding as Encoding,
          throttle,
          signal: stop.signal,
          agent,
        });
        partMs[t.part] = Date.now() - t1;
        return receipt;
      } catch (e) {
        stop.abort();
        throw e;
      }
    }),
  );
  const manifest: CommitManifest = { parts: receipts.map((r) => ({ part: r.part, bytes: r.bytes, sha256: r.sha256 })) };
  const t2 = Date.now();
  const done = await commit(opts, { ...grant, token: plan.commit_token }, migrationId, manifest, agent);
  log.debug({ migration: migrationId, plan_ms: t1 - t0, part_ms: partMs, commit_ms: Date.now() - t2, at: t0 }, 'transfer timings');
  return { receipts, checkpoint_name: done.checkpoint_name };
}

/** GET the image stream from the source's data channel. */
export function fetchImage(opts: ChannelClientOptions, source: ChannelTarget, migrationId: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(opts, source, {
      method: 'GET',
      path: `/v1/migrations/${encodeURIComponent(migrationId)}/image`,
      headers: { authorization: `Bearer ${source.token}` },
    });
    req.on('response', (res) => {
      if (res.statusCode === 200) resolve(res);
      else readBody(res).then((b) => reject(new TransferFailed(`source refused the image: ${describe(res, b)}`, { status: res.statusCode })), reject);
    });
    req.on('error', (e) => reject(new TransferFailed(`image fetch from ${source.host} (${source.address}) failed: ${e.message}`)));
    req.end();
  });
}
