/** @deprecated The pre-plan receiving end; replaced by receiver.ts once the agent is split (then removed). */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError, TransferQuotaExceeded } from '../../common/errors.js';
import { getLogger } from '../../common/log.js';
import { MIGRATION_ID_RE, PART_RE, manifestProblems, partKind, type Manifest, type PartReceipt } from './protocol.js';
import { UnsafeArchive, extractSafely } from './tarsafe.js';
import { bearer, type TokenPurpose, type TokenStore } from './tokens.js';

const log = getLogger('compute.datachannel');

export interface ReceiveHandler {
  /** Fresh (emptied) staging directory for one part of a migration. */
  partDir(migrationId: string, part: string): string;
  /** All parts arrived and match the manifest. */
  committed(migrationId: string, manifest: Manifest, received: PartReceipt[]): Promise<void>;
  /** `docker save` of the image the migration needs (source side). */
  exportImage(migrationId: string): Promise<Readable>;
}

export interface ServerFaults {
  /** Drop the connection after this many bytes of a part (the target "dies" mid-transfer). */
  cutTransferAfterBytes?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class DataChannelServer {
  private server: http.Server | null = null;
  private readonly received = new Map<string, Map<string, PartReceipt>>();
  private readonly active = new Map<string, number>();

  constructor(
    private readonly opts: {
      bindHost: string;
      port: number;
      maxBytes: number;
      tokens: TokenStore;
      handler: ReceiveHandler;
      faults?: ServerFaults;
    },
  ) {}

  async listen(): Promise<string> {
    const srv = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => this.fail(req, res, e));
    });
    // Uploads ask first (Expect: 100-continue): a bad token is refused before any byte is sent.
    srv.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      try {
        const url = new URL(req.url ?? '/', 'http://x');
        const m = /^\/v1\/migrations\/([^/]+)\//.exec(url.pathname);
        if (!m) throw new HttpError(404, 'no such resource');
        this.authorize(req, decodeURIComponent(m[1]), 'upload');
      } catch (e) {
        this.fail(req, res, e);
        return;
      }
      res.writeContinue();
      this.handle(req, res).catch((e) => this.fail(req, res, e));
    });
    srv.requestTimeout = 0; // large transfers
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

  setFaults(f: ServerFaults): void {
    this.opts.faults = f;
  }

  /** Forget what arrived for a migration (rollback, cleanup). */
  forget(migrationId: string): void {
    this.received.delete(migrationId);
  }

  receivedParts(migrationId: string): PartReceipt[] {
    return [...(this.received.get(migrationId)?.values() ?? [])];
  }

  private authorize(req: http.IncomingMessage, id: string, purpose: TokenPurpose) {
    const verdict = this.opts.tokens.check(id, purpose, bearer(req.headers.authorization));
    if (verdict === 'missing') throw new HttpError(401, 'a migration token is required (Authorization: Bearer ...)');
    if (verdict !== 'ok') throw new HttpError(403, `token refused for migration ${id} (${verdict})`);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/v1\/migrations\/([^/]+)\/(image|commit|parts\/(.+))$/.exec(url.pathname);
    if (!m) throw new HttpError(404, 'no such resource');
    const id = decodeURIComponent(m[1]);
    if (!MIGRATION_ID_RE.test(id)) throw new HttpError(400, 'bad migration id');
    if (m[2] === 'image') {
      if (req.method !== 'GET') throw new HttpError(405, 'GET only');
      this.authorize(req, id, 'export');
      const stream = await this.opts.handler.exportImage(id);
      res.writeHead(200, { 'content-type': 'application/x-tar' });
      await pipeline(stream, res);
      return;
    }
    if (m[2] === 'commit') {
      if (req.method !== 'POST') throw new HttpError(405, 'POST only');
      this.authorize(req, id, 'upload');
      const body = await readJson(req, 1024 * 1024);
      const manifest = body as Manifest;
      if (!manifest || typeof manifest.checkpoint_name !== 'string' || !Array.isArray(manifest.parts)) throw new HttpError(400, 'malformed manifest');
      if ((this.active.get(id) ?? 0) > 0) throw new HttpError(409, 'parts are still arriving');
      const got = this.received.get(id) ?? new Map<string, PartReceipt>();
      const problems = manifestProblems(manifest, got);
      if (problems.length > 0) throw new HttpError(422, `transfer incomplete or corrupted: ${problems.join('; ')}`);
      await this.opts.handler.committed(id, manifest, [...got.values()]);
      this.opts.tokens.consume(id, 'upload');
      sendJson(res, 200, { committed: true, parts: [...got.values()] });
      return;
    }
    const part = decodeURIComponent(m[3]);
    if (req.method !== 'PUT') throw new HttpError(405, 'PUT only');
    if (!PART_RE.test(part)) throw new HttpError(400, `bad part name ${part}`);
    this.authorize(req, id, 'upload');
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > this.opts.maxBytes) throw new HttpError(413, `part of ${declared} bytes is over the limit of ${this.opts.maxBytes}`);
    this.active.set(id, (this.active.get(id) ?? 0) + 1);
    const parts = this.received.get(id) ?? new Map<string, PartReceipt>();
    this.received.set(id, parts);
    parts.delete(part);
    const dir = this.opts.handler.partDir(id, part);
    try {
      const hash = crypto.createHash('sha256');
      let seen = 0;
      const cut = this.opts.faults?.cutTransferAfterBytes;
      const tap = new Transform({
        transform(chunk: Buffer, _e, cb) {
          seen += chunk.length;
          if (cut !== undefined && seen > cut) {
            req.socket.destroy();
            cb(new Error('fault injected: connection cut by the target'));
            return;
          }
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      const result = await extractSafely(req.pipe(tap), dir, partKind(part), { maxTarBytes: this.opts.maxBytes, maxEntries: Number.MAX_SAFE_INTEGER, maxPayloadBytes: this.opts.maxBytes }).catch((e: unknown) => {
        if (e instanceof UnsafeArchive) throw new HttpError(422, `unsafe archive refused: ${e.message}`);
        if (e instanceof TransferQuotaExceeded) throw new HttpError(413, e.message);
        throw new HttpError(422, `archive unreadable (truncated or corrupted?): ${(e as Error).message}`);
      });
      // A tar reader stops at the end-of-archive marker; drain anything after it so it is counted.
      await drain(req, tap);
      const sha = hash.digest('hex');
      const trailerSha = req.trailers['x-ferry-sha256'];
      const trailerBytes = Number(req.trailers['x-ferry-bytes'] ?? NaN);
      if (!trailerSha) throw new HttpError(422, 'transfer ended without its digest trailer (cut short?)');
      if (trailerSha !== sha || trailerBytes !== seen) {
        throw new HttpError(422, `part ${part} corrupted or truncated: received ${seen} bytes sha256 ${sha.slice(0, 12)}, sender says ${trailerBytes} bytes ${String(trailerSha).slice(0, 12)}`);
      }
      const receipt: PartReceipt = { part, bytes: seen, sha256: sha, entries: result.entries };
      parts.set(part, receipt);
      sendJson(res, 200, receipt);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      this.active.set(id, (this.active.get(id) ?? 1) - 1);
    }
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, e: unknown) {
    const status = e instanceof HttpError ? e.status : e instanceof FerryError && e.kind === 'not_found' ? 404 : 500;
    const message = e instanceof Error ? e.message : String(e);
    log.warn({ url: req.url, status, err: message }, 'data channel request refused');
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    res.setHeader('connection', 'close');
    sendJson(res, status, { error: { code: status, message } });
    // Do not read the rest of a refused upload; close once the answer is out.
    res.on('finish', () => req.destroy());
  }
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
    if (size > max) throw new HttpError(413, 'manifest too large');
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'malformed JSON');
  }
}
