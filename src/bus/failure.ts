/**
 * Errors across the bus, as oslo.messaging serializes them
 * (`serialize_remote_exception` / `deserialize_remote_exception`): a JSON string of
 * `{"class", "module", "message", "tb", "args", "kwargs"}`.
 *
 * Sending: a FerryError goes out as its class name with module `ferry.common.errors` (a
 * Python caller gets `RemoteError(exc_type=<class>, value=<message>)`); the dispatcher's
 * UnsupportedVersion / NoSuchMethod go out exactly as oslo's (module
 * `oslo_messaging.rpc.dispatcher`), so a Python caller cannot tell Ferry from a Python server.
 * Receiving: a class in Ferry's registry is rebuilt as that class; anything else becomes
 * RemoteError with the remote class, module and traceback in `details`.
 */
import { FerryError, RemoteError, errorClassByName } from '../common/errors.js';
import { isObject, pyJson } from './envelope.js';

export const FERRY_ERRORS_MODULE = 'ferry.common.errors';
export const OSLO_DISPATCHER_MODULE = 'oslo_messaging.rpc.dispatcher';
/** Module for JavaScript errors that are not Ferry's (TypeError, plain Error ...). */
export const JS_ERRORS_MODULE = 'ferry.javascript';
const REMOTE_POSTFIX = '_Remote';

export interface SerializedFailure {
  class: string;
  module: string;
  message: string;
  tb: string[];
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** Marks an error so it is serialized under a given Python class/module (the dispatcher's errors). */
export function withWireIdentity<E extends Error>(err: E, cls: string, module: string, args?: unknown[]): E {
  Object.defineProperty(err, WIRE, { value: { cls, module, args }, enumerable: false });
  return err;
}
const WIRE = Symbol('ferry.bus.wireIdentity');
type Wire = { cls: string; module: string; args?: unknown[] };

export function failureOf(err: unknown): SerializedFailure {
  const e = err instanceof Error ? err : new Error(String(err));
  const wire = (e as unknown as { [WIRE]?: Wire })[WIRE];
  let cls: string;
  let module: string;
  let message = e.message;
  let kwargs: Record<string, unknown> = {};
  if (wire) {
    cls = wire.cls;
    module = wire.module;
  } else if (e instanceof FerryError && typeof e.details.remote_class === 'string') {
    // A remote failure re-raised keeps its original identity (oslo strips `_Remote` likewise).
    cls = e.details.remote_class;
    module = typeof e.details.remote_module === 'string' ? e.details.remote_module : FERRY_ERRORS_MODULE;
    if (typeof e.details.remote_message === 'string') message = e.details.remote_message;
    kwargs = isObject(e.details.kwargs) ? e.details.kwargs : {};
  } else if (e instanceof FerryError) {
    cls = e.constructor.name;
    module = FERRY_ERRORS_MODULE;
    kwargs = jsonSafe(e.details);
  } else {
    cls = e.name || e.constructor.name || 'Error';
    module = JS_ERRORS_MODULE;
  }
  const tb = (e.stack ?? `${cls}: ${message}`).split('\n').map((l) => l + '\n');
  return { class: cls, module, message, tb, args: wire?.args ?? [message], kwargs };
}

/** The `failure` string of a reply. */
export function serializeFailure(err: unknown): string {
  return pyJson(failureOf(err));
}

/** Rebuild an error from a reply's `failure` string. Never throws: a bad string becomes a RemoteError. */
export function deserializeFailure(data: string): FerryError {
  let f: unknown;
  try {
    f = JSON.parse(data);
  } catch {
    return new RemoteError(`Remote error: unreadable failure ${data.slice(0, 200)}`, { remote_class: null, remote_module: null });
  }
  if (!isObject(f)) return new RemoteError('Remote error: failure is not an object', { failure: f });
  let cls = typeof f.class === 'string' ? f.class : 'Exception';
  let module = typeof f.module === 'string' ? f.module : '';
  if (cls.endsWith(REMOTE_POSTFIX) && module.endsWith(REMOTE_POSTFIX)) {
    cls = cls.slice(0, -REMOTE_POSTFIX.length);
    module = module.slice(0, -REMOTE_POSTFIX.length);
  }
  const message = typeof f.message === 'string' ? f.message : '';
  const tb = Array.isArray(f.tb) ? f.tb.filter((l): l is string => typeof l === 'string') : [];
  const kwargs = isObject(f.kwargs) ? f.kwargs : {};
  const remote = {
    remote_class: cls,
    remote_module: module,
    remote_message: message,
    traceback: tb.join(''),
  };
  const known = errorClassByName(cls);
  if (known) return new known(message, { ...kwargs, ...remote, kwargs });
  return new RemoteError(`Remote error: ${cls} ${message}`, { ...remote, args: Array.isArray(f.args) ? f.args : [], kwargs });
}

function jsonSafe(v: unknown): Record<string, unknown> {
  try {
    const r: unknown = JSON.parse(JSON.stringify(v ?? {}));
    return isObject(r) ? r : {};
  } catch {
    return {};
  }
}
