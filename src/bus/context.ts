/**
 * The request context on the wire: flattened as `_context_<key>` entries of an RPC message or
 * notification (oslo_messaging `pack_context` / `unpack_context`), and the keys a
 * notification may carry. The context itself is src/common/context.ts.
 */
import type { JsonObject } from './envelope.js';

const PREFIX = '_context_';

/** Add the context to a message as `_context_<key>` entries. */
export function packContext(msg: JsonObject, ctxDict: JsonObject): JsonObject {
  for (const [k, v] of Object.entries(ctxDict)) msg[PREFIX + k] = v;
  return msg;
}

/** Take the `_context_<key>` entries out of a message (it is modified) and return them as a dict. */
export function unpackContext(msg: JsonObject): JsonObject {
  const ctx: JsonObject = {};
  for (const k of Object.keys(msg)) {
    if (k.startsWith(PREFIX)) {
      ctx[k.slice(PREFIX.length)] = msg[k];
      delete msg[k];
    }
  }
  return ctx;
}

/** oslo.messaging notifier's `_sanitize_context` keys: what a notification may carry (no token). */
const NOTIFICATION_SAFE_KEYS = new Set([
  'user_id',
  'project_id',
  'domain_id',
  'user_domain_id',
  'project_domain_id',
  'is_admin',
  'request_id',
  'roles',
  'user_name',
  'project_name',
  'domain_name',
  'user_domain_name',
  'project_domain_name',
  'service_user_id',
  'service_user_domain_id',
  'service_user_domain_name',
  'service_project_id',
  'service_project_name',
  'service_project_domain_id',
  'service_project_domain_name',
  'service_roles',
  'global_request_id',
  'system_scope',
  'user',
  'domain',
  'user_domain',
  'project_domain',
]);

export function sanitizeForNotification(ctxDict: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(ctxDict)) if (NOTIFICATION_SAFE_KEYS.has(k)) out[k] = v;
  return out;
}
