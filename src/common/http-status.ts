/**
 * The HTTP status of each error kind, shared by Ferry's two HTTP faces: the REST API
 * (src/api/errors.ts) and the host-to-host data channel (src/compute/datachannel/status.ts).
 * Each refines it where it needs to; nothing else maps errors to HTTP.
 */
import type { ErrorKind } from './errors.js';

export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  timeout: 504,
  not_acceptable: 406,
  internal: 500,
};
