/**
 * The one place that turns errors into HTTP: an error kind (src/common/errors.ts) becomes a
 * status, and every error leaves as `{"error": {"code", "title", "message", "ferry_code"}}`.
 * Internal errors never show their message or stack to the caller; they are logged with
 * the request id instead.
 */
import { STATUS_CODES } from 'node:http';
import { FerryError } from '../common/errors.js';
import { STATUS_BY_KIND } from '../common/http-status.js';

export { STATUS_BY_KIND };

export const INTERNAL_ERROR_MESSAGE = 'The server has either erred or is incapable of performing the requested operation.';

/** An HTTP-level refusal that has no domain meaning (unknown route, wrong method, media type, size). */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.headers = headers;
  }
}

export interface ErrorBody {
  error: { code: number; title: string; message: string; ferry_code?: string };
}

export function statusTitle(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

export function errorBody(status: number, message: string, ferryCode?: string): ErrorBody {
  const error: ErrorBody['error'] = { code: status, title: statusTitle(status), message };
  if (ferryCode) error.ferry_code = ferryCode;
  return { error };
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** True when the error is a server fault to be logged with its stack. */
  internal: boolean;
}

/** An error as thrown by body-parser, the router, or anything using http-errors. */
interface HttpLikeError {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  type?: unknown;
  limit?: unknown;
  message?: unknown;
  /** zlib's code when a compressed body does not decompress (Z_DATA_ERROR, ERR_BROTLI_...). */
  code?: unknown;
}

/** Map any thrown value to the response the API sends. */
export function toErrorResponse(err: unknown): ErrorResponse {
  if (err instanceof HttpError) {
    return { status: err.status, body: errorBody(err.status, err.message), headers: err.headers, internal: err.status >= 500 };
  }
  if (err instanceof FerryError) {
    const status = STATUS_BY_KIND[err.kind] ?? 500;
    if (status === 500) return { status, body: errorBody(500, INTERNAL_ERROR_MESSAGE, err.code), headers: {}, internal: true };
    return { status, body: errorBody(status, err.message, err.code), headers: {}, internal: false };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as HttpLikeError;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, body: errorBody(status, clientErrorMessage(e, status)), headers: {}, internal: false };
  }
  return { status: 500, body: errorBody(500, INTERNAL_ERROR_MESSAGE), headers: {}, internal: true };
}

function clientErrorMessage(e: HttpLikeError, status: number): string {
  const raw = typeof e.message === 'string' ? e.message : '';
  if (e instanceof URIError) {
    // The router could not decode a path segment (its message names the segment).
    const segment = /'(.*)'/.exec(raw)?.[1] ?? '';
    return `Malformed percent-encoding in the URL path: '${segment}' (each % must start a %XX escape of UTF-8 bytes)`;
  }
  if (typeof e.code === 'string' && /^Z_|BROTLI|ZSTD/.test(e.code)) {
    return `The request body does not decompress as its Content-Encoding says (gzip, deflate or br): ${raw}`;
  }
  switch (e.type) {
    case 'entity.parse.failed':
      return `Malformed JSON in the request body: ${raw}`;
    case 'entity.too.large':
      return `The request body is larger than the ${typeof e.limit === 'number' ? `${e.limit} bytes` : 'size'} allowed`;
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return `Unsupported request body encoding: ${raw}`;
    case 'request.aborted':
    case 'request.size.invalid':
      return 'The request body was incomplete';
    default:
      return e.expose === true && raw ? raw : statusTitle(status);
  }
}

/**
 * The raw HTTP answer to a request Node could not even parse (server 'clientError'): the same
 * JSON error body as every other error instead of Node's bare status line.
 */
export function clientErrorResponse(code: string | undefined, requestId: string): { status: number; raw: string } {
  const [status, message] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'The request headers (with the URL) are too large: keep the URL and headers under 16 KB']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_REQUEST_HEADERS_TIMEOUT'
        ? [408, 'The request was not received in time']
        : [400, `Malformed HTTP request (${code ?? 'unreadable'}): send HTTP/1.1 with a valid request line and headers`];
  const body = JSON.stringify(errorBody(status, message));
  const raw =
    `HTTP/1.1 ${status} ${statusTitle(status)}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nX-OpenStack-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`;
  return { status, raw };
}
