/**
 * The receiving (and image-exporting) end of the data channel: an HTTPS server with mutual
 * TLS (plain HTTP only when built without TLS material). See protocol.ts for the routes,
 * tokens.ts for who may send what, status.ts for the statuses of refusals.
 *
 * Everything lands in the migration's staging directory (handler.stagingDir), one
 * subdirectory per planned part, named by the part (checked against PART_RE and the plan,
 * never by anything else the sender says). A part that fails is removed at once; a disk
 * that fills up removes the whole staging of the migration and answers 507 with the free and
 * needed bytes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import zlib from 'node:zlib';
import {
  ExtractionOutdated,
  FerryError,
  InsufficientStorage,
  InvalidInput,
  InvalidMigrationState,
  MethodNotAllowed,
  NoSuchResource,
  TransferCorrupted,
  TransferQuotaExceeded,
} from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import {
  ENCODINGS,
  MIGRATION_ID_RE,
  PART_RE,
  commitProblems,
  isPrecopyRound,
  partKind,
  partLimits,
  type CommitManifest,
  type PartReceipt,
} from './protocol.js';
import { channelErrorBody, channelStatus } from './status.js';
import { MAX_XATTR_BYTES_PER_TRANSFER, extractSafely, byteLimiter, type ExtractOptions } from './tarsafe.js';
import type { TlsMaterial } from './tls.js';
import { peerNames } from './tls.js';
import { bearer, type PeerNames, type PlannedPart, type TransferGrants } from './grants.js';

const log = getLogger('compute.datachannel');

export interface ReceiveHandler {
  /** The migration's staging directory on this host (the server creates and empties it). */
  stagingDir(migrationId: string): string;
  /** The checkpoint name this host chose for the migration. */
  checkpointName(migrationId: string): string;
  /** All planned parts arrived and match the manifest (staged under stagingDir). */
  committed(migrationId: string, received: PartReceipt[]): Promise<void>;
  /** `docker save` of the image the migration needs (source side). */
  exportImage(migrationId: string): Promise<Readable>;
}

/**
 * A stage for one received part's bytes, between the size limit and the digest: it may end the
 * request (`req`) or fail. `wireBytes`: what came over the wire so far. Only fault injection
 * makes one (../faults/channel.ts).
 */
export type ReceiveStage = (part: string, req: http.IncomingMessage, wireBytes: () => number) => Transform | undefined;

export interface DataChannelServerOptions {
  /** This host's name (in messages). */
  host: string;
  bindHost: string;
  port: number;
  /** Most content bytes one migration may declare ([compute] max_transfer_bytes). */
  maxBytes: number;
  /** Most entries (files, directories, links) one migration may declare, all parts together ([compute] max_transfer_entries). */
  maxEntries?: number;
  grants: TransferGrants;
  handler: ReceiveHandler;
  /** null: plain HTTP, no host authentication ([compute] data_channel_insecure). */
  tls: TlsMaterial | null;
  /** Content encodings this host accepts for parts (default: all it knows). */
  acceptEncodings?: string[];
  /** A stage in front of each part's digest, if any (fault injection; production: none). */
  receiveStage?: ReceiveStage;
}

interface Incoming {
  generation: number;
  received: Map<string, PartReceipt>;
  /** Aborted when the plan is replaced or forgotten: its running extractions stop with ExtractionOutdated (answered 409). */
  stop: AbortController;
  /** Extended-attribute bytes the parts of this plan may still bring (tarsafe's per-transfer bound). */
  xattrBudget: { left: number };
}

/** [compute] max_transfer_entries' default, for servers built without it. */
export const DEFAULT_MAX_TRANSFER_ENTRIES = 200_000;
/** After a refusal, how long and how much of a body still arriving is read and dropped so that the answer reaches the sender. */
const REFUSAL_DRAIN_MS = 2000;
const REFUSAL_DRAIN_BYTES = 64 * 1024 * 1024;

export class DataChannelServer {
  private server: http.Server | null = null;
  private readonly incoming = new Map<string, Incoming>();
  /** Part uploads still running per migration (until their staging is cleaned up): a new plan waits for them. */
  private readonly running = new Map<string, Set<Promise<void>>>();
  /** The plan requests of a migration, one at a time (each waits for the previous one's cleanup). */
  private readonly planning = new Map<string, Promise<void>>();

  constructor(private readonly opts: DataChannelServerOptions) {}

  get secure(): boolean {
    return this.opts.tls !== null;
  }

  async listen(): Promise<string> {
    const onRequest = (expectContinue: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res, expectContinue).catch((e) => this.fail(req, res, e));
    };
    const t = this.opts.tls;
    const srv: http.Server = t
      ? https.createServer({ cert: t.cert, key: t.key, ca: t.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, onRequest(false))
      : http.createServer(onRequest(false));
    // Uploads ask first (Expect: 100-continue): a refused token is answered before any byte is sent.
    srv.on('checkContinue', onRequest(true));
    srv.on('tlsClientError', (err: Error) => log.warn({ err: err.message }, 'data channel TLS handshake refused'));
    srv.requestTimeout = 0; // large transfers may take long...
    srv.timeout = 5 * 60_000; // ...but not stall: a connection silent this long is closed (its part fails)
    srv.headersTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.port, this.opts.bindHost, () => resolve());
    });
    this.server = srv;
    return this.address();
  }

  address(): string {
    const a = this.server?.address() as AddressInfo | null;
    if (!a) throw new Error('data channel not listening');
    return `${a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /**
   * Stop whatever still arrives for a migration and forget it (rollback, cleanup). Staging is
   * the caller's: a running extraction writes nothing after this call (it is outdated at its
   * next await); `settled` says when every upload has ended.
   */
  forget(migrationId: string): void {
    const inc = this.incoming.get(migrationId);
    this.incoming.delete(migrationId);
    inc?.stop.abort(new ExtractionOutdated(`the plan of migration ${migrationId} was replaced or forgotten: its uploads stop`));
  }

  /** Resolves when no part upload of the migration is running any more. */
  async settled(migrationId: string): Promise<void> {
    for (;;) {
      const running = [...(this.running.get(migrationId) ?? [])];
      if (running.length === 0) return;
      await Promise.allSettled(running);
    }
  }

  receivedParts(migrationId: string): PartReceipt[] {
    return [...(this.incoming.get(migrationId)?.received.values() ?? [])];
  }

  private peer(req: http.IncomingMessage): PeerNames {
    return this.secure ? peerNames(req.socket as TLSSocket) : null;
  }

  private staging(id: string): string {
    const dir = this.opts.handler.stagingDir(id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  private discardStaging(id: string): void {
    fs.rmSync(this.opts.handler.stagingDir(id), { recursive: true, force: true });
  }

  private freeBytes(dir: string): number {
    try {
      const s = fs.statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      return -1;
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean) {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/v1\/migrations\/([^/]+)\/(image|plan|commit|parts\/(.+))$/.exec(url.pathname);
    if (!m) throw new NoSuchResource(`no such resource ${url.pathname}`);
    const id = decodeURIComponent(m[1]);
    if (!MIGRATION_ID_RE.test(id)) throw new InvalidInput(`bad migration id ${JSON.stringify(id)}`);
    const token = bearer(req.headers.authorization);
    if (m[2] === 'image') {
      if (req.method !== 'GET') throw new MethodNotAllowed('GET only');
      await this.sendImage(req, res, id, token);
    } else if (m[2] === 'plan') {
      if (req.method !== 'POST') throw new MethodNotAllowed('POST only');
      await this.plan(req, res, id, token);
    } else if (m[2] === 'commit') {
      if (req.method !== 'POST') throw new MethodNotAllowed('POST only');
      await this.commit(req, res, id, token);
    } else {
      if (req.method !== 'PUT') throw new MethodNotAllowed('PUT only');
      const part = decodeURIComponent(m[3]);
      if (!PART_RE.test(part)) throw new InvalidInput(`bad part name ${JSON.stringify(part)}`);
      await this.receivePart(req, res, id, part, token, expectContinue);
    }
  }

  private async sendImage(req: http.IncomingMessage, res: http.ServerResponse, id: string, token: string | null) {
    this.opts.grants.claimExport(id, token, this.peer(req));
    let ok = false;
    try {
      const stream = await this.opts.handler.exportImage(id);
      res.writeHead(200, { 'content-type': 'application/x-tar' });
      await pipeline(stream, res);
      ok = true;
    } finally {
      this.opts.grants.finishExport(id, ok);
    }
  }

  private async plan(req: http.IncomingMessage, res: http.ServerResponse, id: string, token: string | null) {
    const peer = this.peer(req);
    // The grant first: nothing about this host (sizes, free space) is told to a stranger.
    this.opts.grants.authorizePlan(id, token, peer);
    const parts = parsePlan(await readJson(req, 1024 * 1024));
    const declared = parts.reduce((a, p) => a + p.bytes, 0);
    if (declared > this.opts.maxBytes) {
      throw new TransferQuotaExceeded(
        `migration ${id} declares ${declared} bytes, over the limit of ${this.opts.maxBytes} on ${this.opts.host} ([compute] max_transfer_bytes)`,
        {
          limit: this.opts.maxBytes,
        },
      );
    }
    const maxEntries = this.opts.maxEntries ?? DEFAULT_MAX_TRANSFER_ENTRIES;
    const entries = parts.reduce((a, p) => a + p.entries, 0);
    if (entries > maxEntries) {
      throw new TransferQuotaExceeded(
        `migration ${id} declares ${entries} entries, over the limit of ${maxEntries} on ${this.opts.host} ([compute] max_transfer_entries)`,
        {
          limit: maxEntries,
        },
      );
    }
    // One plan of a migration at a time: each waits for the previous one's uploads to end.
    const previous = this.planning.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = previous.then(() => new Promise<void>((resolve) => (done = resolve)));
    this.planning.set(id, mine);
    await previous;
    try {
      await this.replan(res, id, token, peer, parts, declared);
    } finally {
      done();
      if (this.planning.get(id) === mine) this.planning.delete(id);
    }
  }

  private async replan(res: http.ServerResponse, id: string, token: string | null, peer: PeerNames, parts: PlannedPart[], declared: number) {
    const accepted = new Set(this.opts.acceptEncodings ?? ENCODINGS);
    const answer = this.opts.grants.plan(id, token, peer, parts, (enc) => accepted.has(enc));
    // A new plan replaces the old one: stop its uploads, wait until they have ended (an
    // extraction still running must not write into the new staging), drop what arrived.
    this.forget(id);
    await this.settled(id);
    this.discardStaging(id);
    const dir = this.staging(id);
    const free = this.freeBytes(dir);
    if (free >= 0 && free < declared) {
      this.opts.grants.revokePlan(id);
      this.discardStaging(id);
      throw new InsufficientStorage(`no space left on ${this.opts.host} staging for migration ${id}: free ${free} bytes, needed ${declared}`, {
        free,
        needed: declared,
      });
    }
    this.incoming.set(id, {
      generation: this.opts.grants.generation(id),
      received: new Map(),
      stop: new AbortController(),
      xattrBudget: { left: MAX_XATTR_BYTES_PER_TRANSFER },
    });
    sendJson(res, 200, answer);
  }

  private async commit(req: http.IncomingMessage, res: http.ServerResponse, id: string, token: string | null) {
    const planned = this.opts.grants.checkCommit(id, token, this.peer(req));
    const manifest = parseManifest(await readJson(req, 1024 * 1024));
    const chosen = this.opts.handler.checkpointName(id);
    if (manifest.checkpoint_name !== undefined && manifest.checkpoint_name !== chosen) {
      throw new InvalidInput(
        `the target names the checkpoint of migration ${id} itself (${chosen}); refusing the name ${JSON.stringify(manifest.checkpoint_name)}`,
      );
    }
    const stillArriving = this.opts.grants.receiving(id);
    if (stillArriving.length > 0) throw new InvalidMigrationState(`parts still arriving for migration ${id}: ${stillArriving.join(', ')}`);
    const got = this.incoming.get(id)?.received ?? new Map<string, PartReceipt>();
    const problems = commitProblems(
      manifest,
      planned.map((p) => p.part),
      got,
    );
    if (problems.length > 0) throw new TransferCorrupted(`transfer of migration ${id} incomplete or corrupted: ${problems.join('; ')}`);
    await this.opts.handler.committed(id, [...got.values()]);
    // A disk pre-copy round leaves the grant open: more rounds and the freeze's send follow.
    if (!isPrecopyRound(planned.map((p) => p.part))) this.opts.grants.markCommitted(id);
    sendJson(res, 200, { committed: true, checkpoint_name: chosen, parts: [...got.values()] });
  }

  private async receivePart(req: http.IncomingMessage, res: http.ServerResponse, id: string, part: string, token: string | null, expectContinue: boolean) {
    const declared = this.opts.grants.claimPart(id, part, token, this.peer(req));
    const upload = this.receiveClaimed(req, res, id, part, declared, expectContinue);
    let running = this.running.get(id);
    if (!running) this.running.set(id, (running = new Set()));
    const tracked = upload.then(
      () => undefined,
      () => undefined,
    );
    running.add(tracked);
    try {
      await upload;
    } finally {
      running.delete(tracked);
      if (running.size === 0 && this.running.get(id) === running) this.running.delete(id);
    }
  }

  private async receiveClaimed(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    id: string,
    part: string,
    declared: PlannedPart & { generation: number },
    expectContinue: boolean,
  ) {
    const inc = this.incoming.get(id);
    let ok = false;
    let dir: string | null = null;
    // Replaced (re-plan) or forgotten (rollback) while it runs: from then on it writes nothing.
    const outdated = () => inc !== undefined && (this.incoming.get(id) !== inc || this.opts.grants.generation(id) !== declared.generation);
    try {
      if (!inc || inc.generation !== declared.generation) throw new InvalidMigrationState(`the plan of migration ${id} changed; plan again`);
      const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
      if (encoding !== declared.encoding) throw new InvalidInput(`part ${part} was planned as ${declared.encoding}, sent as ${encoding}`);
      dir = path.join(this.staging(id), part);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (expectContinue) res.writeContinue();
      const t0 = Date.now();
      const receipt = await this.extractPart(req, id, part, dir, declared, inc.stop.signal, { outdated, xattrBudget: inc.xattrBudget });
      if (outdated()) throw new ExtractionOutdated(`part ${part} of migration ${id} arrived after its plan was replaced or forgotten`);
      log.debug({ migration: id, part, bytes: receipt.bytes, ms: Date.now() - t0, at: t0 }, 'part received');
      inc.received.set(part, receipt);
      ok = true;
      sendJson(res, 200, receipt);
    } catch (e) {
      // An outdated part's folder (and staging) belong to the plan that replaced it, if any.
      if (e instanceof ExtractionOutdated) throw e;
      if (outdated()) throw new ExtractionOutdated(`part ${part} of migration ${id} stopped: its plan was replaced or forgotten (${(e as Error).message})`);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      if (isNoSpace(e)) {
        const needed = this.opts.grants.plannedBytes(id);
        this.forget(id);
        this.discardStaging(id);
        const free = this.freeBytes(path.dirname(this.opts.handler.stagingDir(id)));
        throw new InsufficientStorage(`no space left on ${this.opts.host} staging for migration ${id}: free ${free} bytes, needed ${needed} (part ${part})`, {
          free,
          needed,
        });
      }
      throw e;
    } finally {
      this.opts.grants.finishPart(id, part, declared.generation, ok);
    }
  }

  private async extractPart(
    req: http.IncomingMessage,
    id: string,
    part: string,
    dir: string,
    declared: PlannedPart,
    stop: AbortSignal,
    extractOpts: ExtractOptions,
  ): Promise<PartReceipt> {
    const limits = partLimits(declared);
    // What comes over the wire is bounded too (gzip adds at most a few bytes per 64 KiB block).
    const wireMax = limits.maxTarBytes + (declared.encoding === 'gzip' ? Math.ceil(limits.maxTarBytes / 512) + 1024 : 0);
    const wire = byteLimiter(wireMax, `part ${part} on the wire`);
    const hash = crypto.createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const stage = this.opts.receiveStage?.(part, req, () => wire.bytes);
    const measured = stage ? req.pipe(wire).pipe(stage).pipe(tap) : req.pipe(wire).pipe(tap);
    const decoded: Readable = declared.encoding === 'gzip' ? measured.pipe(zlib.createGunzip()) : measured;
    for (const s of [wire, stage, tap]) s?.on('error', (e) => decoded.destroy(e));
    req.on('error', (e) => decoded.destroy(e));
    // A re-plan or rollback stops the extraction now, even while the sender is silent.
    const onStop = () => decoded.destroy(stop.reason as Error);
    if (stop.aborted) onStop();
    else stop.addEventListener('abort', onStop, { once: true });
    req.once('close', () => stop.removeEventListener('abort', onStop));
    req.on('close', () => {
      if (!req.complete) decoded.destroy(new TransferCorrupted(`part ${part} cut short: the connection closed before its end`));
    });
    const result = await extractSafely(decoded, dir, partKind(part), limits, extractOpts).catch((e: unknown) => {
      if (e instanceof FerryError || isNoSpace(e)) throw e;
      throw new TransferCorrupted(`part ${part} of migration ${id} unreadable (truncated or corrupted?): ${(e as Error).message}`);
    });
    // A tar reader stops at the end-of-archive marker; drain anything after it so it is counted.
    // ...unless the plan is replaced meanwhile: a sender that stops after the archive's end must not hold the new plan up.
    await Promise.race([drain(req, tap), whenAborted(stop)]);
    const sha = hash.digest('hex');
    const trailerSha = req.trailers['x-ferry-sha256'];
    const trailerBytes = Number(req.trailers['x-ferry-bytes'] ?? NaN);
    if (!trailerSha) throw new TransferCorrupted(`part ${part} ended without its digest trailer (cut short?)`);
    if (trailerSha !== sha || trailerBytes !== wire.bytes) {
      throw new TransferCorrupted(
        `part ${part} corrupted or truncated: received ${wire.bytes} bytes sha256 ${sha.slice(0, 12)}, sender says ${trailerBytes} bytes ${String(trailerSha).slice(0, 12)}`,
      );
    }
    return { part, bytes: wire.bytes, sha256: sha, entries: result.entries };
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, e: unknown) {
    const status = channelStatus(e);
    const body = channelErrorBody(e);
    (status >= 500 ? log.error.bind(log) : log.warn.bind(log))({ url: req.url, status, err: body.error.message }, 'data channel request refused');
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (req.complete) {
      sendJson(res, status, body);
      return;
    }
    // The sender may still be writing. Ending the answer lets the server close the connection
    // (always so when the request asked for "connection: close"), and a close with the sender's
    // bytes unread is a reset, which can reach the sender before it has read the answer: it
    // then sees "write EPIPE" instead of the refusal. So the whole answer is written at once
    // (its length is in the header: the sender can read it without the end), the rest of the
    // body is read and dropped, and the answer is ended (the connection may close) only when
    // the sender has ended its body (ours does on seeing the answer), or after
    // REFUSAL_DRAIN_MS or REFUSAL_DRAIN_BYTES, when a sender still writing is cut off.
    req.unpipe();
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.write(text);
    let dropped = 0;
    const finish = (cut: boolean) => {
      clearTimeout(timer);
      if (res.writableEnded) return;
      res.end(() => {
        if (cut) req.socket.destroy();
      });
    };
    const timer = setTimeout(() => finish(true), REFUSAL_DRAIN_MS).unref();
    req.on('data', (c: Buffer) => {
      dropped += c.length;
      if (dropped > REFUSAL_DRAIN_BYTES) finish(true);
    });
    req.once('end', () => finish(false));
    req.once('close', () => finish(false));
    req.resume();
  }
}

function isNoSpace(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOSPC' || (e as NodeJS.ErrnoException | null)?.code === 'EDQUOT';
}

function isCount(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/** The body of POST /plan, checked field by field. */
export function parsePlan(body: unknown): PlannedPart[] {
  const parts = (body as { parts?: unknown } | null)?.parts;
  if (!Array.isArray(parts) || parts.length === 0 || parts.length > 1024) throw new InvalidInput('malformed plan: "parts" must be a list of 1 to 1024 parts');
  return parts.map((p: unknown, i) => {
    const o = p as Record<string, unknown> | null;
    if (!o || typeof o !== 'object') throw new InvalidInput(`malformed plan: part ${i} is not an object`);
    if (typeof o.part !== 'string' || !PART_RE.test(o.part)) throw new InvalidInput(`malformed plan: bad part name ${JSON.stringify(o.part)}`);
    if (!isCount(o.bytes, 0)) throw new InvalidInput(`malformed plan: part ${o.part} needs "bytes" (a whole number >= 0)`);
    if (!isCount(o.entries, 1)) throw new InvalidInput(`malformed plan: part ${o.part} needs "entries" (a whole number >= 1)`);
    const encoding = o.encoding === undefined ? 'identity' : o.encoding;
    if (typeof encoding !== 'string' || !(ENCODINGS as readonly string[]).includes(encoding)) {
      throw new InvalidInput(`malformed plan: part ${o.part} asks for encoding ${JSON.stringify(encoding)} (known: ${ENCODINGS.join(', ')})`);
    }
    return { part: o.part, bytes: o.bytes, entries: o.entries, encoding };
  });
}

/** The body of POST /commit, checked field by field. */
export function parseManifest(body: unknown): CommitManifest {
  const o = body as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || !Array.isArray(o.parts)) throw new InvalidInput('malformed manifest: "parts" must be a list');
  if (o.checkpoint_name !== undefined && typeof o.checkpoint_name !== 'string')
    throw new InvalidInput('malformed manifest: "checkpoint_name" must be a string');
  const parts = o.parts.map((p: unknown) => {
    const q = p as Record<string, unknown> | null;
    if (!q || typeof q.part !== 'string' || !isCount(q.bytes, 0) || typeof q.sha256 !== 'string') {
      throw new InvalidInput('malformed manifest: each part needs "part", "bytes" and "sha256"');
    }
    return { part: q.part, bytes: q.bytes, sha256: q.sha256 };
  });
  return { checkpoint_name: o.checkpoint_name as string | undefined, parts };
}

function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

async function drain(req: http.IncomingMessage, tap: Transform): Promise<void> {
  if (req.complete && tap.readableEnded) return;
  tap.resume();
  if (!req.complete) {
    await new Promise<void>((resolve, reject) => {
      req.once('end', resolve);
      req.once('error', reject);
      req.once('close', () => (req.complete ? resolve() : reject(new Error('connection closed before the end of the part'))));
    });
  }
  if (!tap.writableFinished) await new Promise<void>((resolve) => tap.once('finish', resolve));
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: http.IncomingMessage, max: number): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new TransferQuotaExceeded(`request body over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new InvalidInput('malformed JSON');
  }
}
