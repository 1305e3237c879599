/** The sending end of the data channel (and the image fetch from the source). See protocol.ts. */
import crypto from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { TransferFailed } from '../../common/errors.js';
import { packTree } from './pack.js';
import type { Manifest, PartReceipt } from './protocol.js';
import type { PartKind } from './tarsafe.js';

export interface SendFaults {
  /** Stop sending the checkpoint part after 32 KiB, then end the request normally (trailer of the full stream). */
  truncateTransfer?: boolean;
  /** Flip one byte of the checkpoint part in flight (the digest is of the original). */
  corruptTransfer?: boolean;
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new TransferFailed(`bad data channel address ${address}`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
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

/**
 * Stream one readable to PUT /parts/{part}, with the SHA-256 trailer. Returns the receiver's receipt.
 */
export async function sendStream(
  address: string,
  migrationId: string,
  token: string,
  part: string,
  source: Readable,
  faults: SendFaults = {},
): Promise<PartReceipt & { sent_sha256: string }> {
  const { host, port } = splitAddress(address);
  const req = http.request({
    host,
    port,
    method: 'PUT',
    path: `/v1/migrations/${encodeURIComponent(migrationId)}/parts/${part.split('/').map(encodeURIComponent).join('/')}`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar', trailer: 'x-ferry-sha256, x-ferry-bytes', expect: '100-continue' },
    agent: false,
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  response.catch(() => undefined);
  req.flushHeaders();
  // The receiver checks the token before the body: a refusal arrives instead of "100 Continue".
  const first = await Promise.race([once(req, 'continue').then(() => null), response]).catch((e: Error) => {
    source.destroy();
    throw new TransferFailed(`sending ${part} to ${address} failed: ${e.message}`, { part });
  });
  if (first) {
    source.destroy();
    const body = await readBody(first);
    req.destroy();
    throw new TransferFailed(`target refused ${part}: ${describe(first, body)}`, { part, status: first.statusCode });
  }
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let sent = 0;
  const faultPart = part === 'checkpoint';
  let writeError: Error | null = null;
  req.on('error', (e) => (writeError = e));
  try {
    for await (const c of source) {
      let chunk = c as Buffer;
      hash.update(chunk);
      bytes += chunk.length;
      if (faultPart && faults.truncateTransfer) {
        const room = 32 * 1024 - sent;
        if (room <= 0) continue;
        chunk = chunk.subarray(0, room);
      }
      if (faultPart && faults.corruptTransfer && sent <= 10_000 && sent + chunk.length > 10_000) {
        chunk = Buffer.from(chunk);
        chunk[10_000 - sent] ^= 0xff;
      }
      sent += chunk.length;
      if (writeError) break;
      if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response.then(() => undefined, () => undefined)]);
      if (req.destroyed) break;
    }
  } catch (e) {
    req.destroy();
    throw new TransferFailed(`reading ${part} for migration ${migrationId} failed: ${(e as Error).message}`);
  }
  const sha = hash.digest('hex');
  if (!writeError && !req.destroyed) {
    req.addTrailers({ 'x-ferry-sha256': sha, 'x-ferry-bytes': String(bytes) });
    req.end();
  }
  let res: http.IncomingMessage;
  try {
    res = await response;
  } catch (e) {
    throw new TransferFailed(`sending ${part} to ${address} failed: ${(e as Error).message}`, { part });
  }
  const body = await readBody(res);
  if (res.statusCode !== 200) {
    throw new TransferFailed(`target refused ${part}: ${describe(res, body)}`, { part, status: res.statusCode });
  }
  if (writeError) throw new TransferFailed(`sending ${part} failed: ${(writeError as Error).message}`, { part });
  return { ...(JSON.parse(body) as PartReceipt), sent_sha256: sha };
}

/** Pack a directory with GNU tar and send it as one part. */
export async function sendTree(
  address: string,
  migrationId: string,
  token: string,
  part: string,
  dir: string,
  kind: PartKind,
  faults: SendFaults = {},
): Promise<PartReceipt> {
  const packed = packTree(dir, kind);
  try {
    const receipt = await sendStream(address, migrationId, token, part, packed.stream, faults);
    await packed.done;
    return { part, bytes: receipt.bytes, sha256: receipt.sent_sha256, entries: receipt.entries };
  } catch (e) {
    packed.kill();
    throw e;
  }
}

async function requestJson(address: string, method: string, path: string, token: string, body: unknown): Promise<{ status: number; body: string; res: http.IncomingMessage }> {
  const { host, port } = splitAddress(address);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method, path, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } },
      (res) => {
        readBody(res).then((b) => resolve({ status: res.statusCode ?? 0, body: b, res }), reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

export async function commit(address: string, migrationId: string, token: string, manifest: Manifest): Promise<void> {
  let r;
  try {
    r = await requestJson(address, 'POST', `/v1/migrations/${encodeURIComponent(migrationId)}/commit`, token, manifest);
  } catch (e) {
    throw new TransferFailed(`commit to ${address} failed: ${(e as Error).message}`);
  }
  if (r.status !== 200) throw new TransferFailed(`target refused the commit: ${describe(r.res, r.body)}`, { status: r.status });
}

/** GET the image stream from the source's data channel. */
export function fetchImage(address: string, migrationId: string, token: string): Promise<http.IncomingMessage> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method: 'GET', path: `/v1/migrations/${encodeURIComponent(migrationId)}/image`, agent: false, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        if (res.statusCode === 200) resolve(res);
        else readBody(res).then((b) => reject(new TransferFailed(`source refused the image: ${describe(res, b)}`, { status: res.statusCode })), reject);
      },
    );
    req.on('error', (e) => reject(new TransferFailed(`image fetch from ${address} failed: ${e.message}`)));
    req.end();
  });
}
