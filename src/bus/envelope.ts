/**
 * The oslo.messaging message envelope (`oslo_messaging._drivers.common`):
 * `{"oslo.version": "2.0", "oslo.message": "<the message as a JSON string>"}`.
 * A JSON object without both keys is the old 1.0 form (the message itself).
 */
import { randomUUID } from 'node:crypto';
import { versionIsCompatible } from './version.js';

export const ENVELOPE_VERSION = '2.0';
const VERSION_KEY = 'oslo.version';
const MESSAGE_KEY = 'oslo.message';

/** Why a body could not be read as an oslo message; the caller logs it and rejects the message. */
export class MalformedMessage extends Error {
  override readonly name = 'MalformedMessage';
}

export type JsonObject = Record<string, unknown>;

/** The AMQP body of a message in the 2.0 envelope. */
export function serializeMsg(msg: JsonObject): Buffer {
  return Buffer.from(pyJson({ [VERSION_KEY]: ENVELOPE_VERSION, [MESSAGE_KEY]: pyJson(msg) }), 'utf8');
}

/** Read an AMQP body: the 2.0 envelope or the bare 1.0 dict. The result is always a JSON object. */
export function deserializeMsg(body: Buffer | string): JsonObject {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  let outer: unknown;
  try {
    outer = JSON.parse(text);
  } catch (e) {
    throw new MalformedMessage(`body is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(outer)) throw new MalformedMessage('body is not a JSON object');
  if (!(VERSION_KEY in outer) || !(MESSAGE_KEY in outer)) return outer; // 1.0 form
  const v = outer[VERSION_KEY];
  let ok = false;
  try {
    ok = typeof v === 'string' && versionIsCompatible(ENVELOPE_VERSION, v);
  } catch {
    ok = false;
  }
  if (!ok) throw new MalformedMessage(`unsupported envelope version ${JSON.stringify(v)}`);
  const inner = outer[MESSAGE_KEY];
  if (typeof inner !== 'string') throw new MalformedMessage('oslo.message is not a string');
  let msg: unknown;
  try {
    msg = JSON.parse(inner);
  } catch (e) {
    throw new MalformedMessage(`oslo.message is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(msg)) throw new MalformedMessage('oslo.message is not a JSON object');
  return msg;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** uuid4 hex without dashes, like Python's `uuid.uuid4().hex` (oslo's `_unique_id`, `_msg_id`). */
export function uuidHex(): string {
  return randomUUID().replace(/-/g, '');
}

/**
 * JSON text as Python's `json.dumps` writes it (oslo_serialization.jsonutils): `", "` and
 * `": "` separators and non-ASCII escaped as \uXXXX. Any JSON parser reads both forms; we
 * match Python so the bytes on the wire are the same as a Python peer's.
 */
export function pyJson(value: unknown): string {
  const out = JSON.stringify(value, (_k, v: unknown) => (v === undefined ? null : v));
  if (out === undefined) return 'null';
  return reformat(out);
}

function reformat(compact: string): string {
  let res = '';
  let inStr = false;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i];
    if (inStr) {
      if (c === '\\') {
        res += c + compact[i + 1];
        i++;
        continue;
      }
      if (c === '"') inStr = false;
      const code = c.charCodeAt(0);
      res += code > 0x7f ? '\\u' + code.toString(16).padStart(4, '0') : c;
      continue;
    }
    if (c === '"') inStr = true;
    res += c === ',' ? ', ' : c === ':' ? ': ' : c;
  }
  return res;
}
