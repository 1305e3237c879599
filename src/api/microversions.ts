/**
 * API microversions, as the OpenStack API-SIG guideline and Nova/Zun have them: a caller asks
 * for a version with `OpenStack-API-Version: container-migration X.Y` and gets that version's
 * request fields, response fields and routes; no header is the minimum (1.0), `latest` the
 * maximum. The version is parsed once per request (`microversionMiddleware`) and kept in
 * res.locals; routes ask `atLeast(res, '1.N')`.
 *
 * The history: 1.0 is v1's first form; each later entry is one thing added to v1 since, and
 * what an older request gets instead (fields refused or left out, routes 404) is written
 * next to the code that gates it.
 */
import type { NextFunction, Request, Response } from 'express';
import { ApiVersionNotAvailable, InvalidApiVersion } from '../common/errors.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ComputeHost } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import { HttpError } from './errors.js';

export const SERVICE_TYPE = 'container-migration';
export const VERSION_HEADER = 'OpenStack-API-Version';

export interface Microversion {
  version: string;
  /** What it adds, one line. */
  adds: string;
}

/** Every microversion, oldest first. Append only: a released line never changes. */
export const MICROVERSIONS: readonly Microversion[] = [
  {
    version: '1.0',
    adds: 'The first form: GET /v1/hosts, GET /v1/containers, POST /v1/containers/{container}/migrate {"host"}, GET /v1/migrations (container, status, source_host, dest_host), GET and DELETE /v1/migrations/{uuid}.',
  },
  {
    version: '1.1',
    adds: 'Paging: limit and marker on GET /v1/migrations and GET /v1/containers with a <collection>_links next link; sort_key, sort_dir, changes-since, changes-before, user_id and project_id on GET /v1/migrations.',
  },
  {
    version: '1.2',
    adds: 'Host maintenance: PUT /v1/hosts/{host} (enable/disable), POST /v1/hosts/{host}/evacuate, GET /v1/evacuations and /v1/evacuations/{uuid}; hosts show status and disabled_reason.',
  },
  {
    version: '1.3',
    adds: 'Memory counters: migrations show mode and memory_total_bytes, memory_processed_bytes, memory_remaining_bytes; hosts show memory_used_bytes and memory_total_bytes.',
  },
  {
    version: '1.4',
    adds: 'Post-copy: "post_copy" in the migrate and evacuate bodies, POST /v1/migrations/{uuid}/action {"force_complete": null}; hosts show modes; evacuations show post_copy.',
  },
  {
    version: '1.5',
    adds: 'Disk pre-copy: migrations show disk_rounds, disk_live_bytes and disk_frozen_bytes.',
  },
];

export const MIN_VERSION = MICROVERSIONS[0].version;
export const MAX_VERSION = MICROVERSIONS[MICROVERSIONS.length - 1].version;

export interface ApiVersion {
  major: number;
  minor: number;
}

export function parseVersionText(text: string): ApiVersion | null {
  const m = /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

function must(text: string): ApiVersion {
  const v = parseVersionText(text);
  if (!v) throw new Error(`not a microversion: ${text}`);
  return v;
}

export function compareVersions(a: ApiVersion, b: ApiVersion): number {
  return a.major - b.major || a.minor - b.minor;
}

export function formatVersion(v: ApiVersion): string {
  return `${v.major}.${v.minor}`;
}

const MIN = must(MIN_VERSION);
const MAX = must(MAX_VERSION);

/**
 * The version a request asks for, from its OpenStack-API-Version header(s). The header may name
 * several services (comma separated, or repeated); only ours counts, and a header naming only
 * others is as if absent. Throws InvalidApiVersion (400) for a value that does not parse and
 * ApiVersionNotAvailable (406) for one outside [MIN_VERSION, MAX_VERSION].
 */
export function requestedVersion(header: string | undefined): ApiVersion {
  if (header === undefined) return MIN;
  let asked: string | undefined;
  for (const part of header.split(',')) {
    const words = part.trim().split(/\s+/);
    if (words[0]?.toLowerCase() !== SERVICE_TYPE) continue;
    if (words.length !== 2 || asked !== undefined) {
      throw new InvalidApiVersion(
        `Invalid ${VERSION_HEADER} header "${part.trim().slice(0, 80)}": give "${SERVICE_TYPE} X.Y" (e.g. "${SERVICE_TYPE} ${MAX_VERSION}") or "${SERVICE_TYPE} latest", once.`,
        { header: part.trim().slice(0, 80) },
      );
    }
    asked = words[1];
  }
  if (asked === undefined) return MIN;
  if (asked.toLowerCase() === 'latest') return MAX;
  const v = parseVersionText(asked);
  if (!v) {
    throw new InvalidApiVersion(
      `Invalid microversion "${asked.slice(0, 40)}" in the ${VERSION_HEADER} header: it must be X.Y (e.g. ${MAX_VERSION}) or "latest".`,
      { version: asked.slice(0, 40) },
    );
  }
  if (compareVersions(v, MIN) < 0 || compareVersions(v, MAX) > 0) {
    throw new ApiVersionNotAvailable(
      `Version ${formatVersion(v)} of the ${SERVICE_TYPE} API is not supported: this server supports ${MIN_VERSION} to ${MAX_VERSION}.`,
      { version: formatVersion(v), min_version: MIN_VERSION, max_version: MAX_VERSION },
    );
  }
  return v;
}

interface VersionLocals {
  apiVersion?: ApiVersion;
}

/**
 * Parses the version once and echoes it on the response (with Vary, so caches key on it).
 * The response headers are set first: an error answer (including a refused version) carries Vary too.
 */
export function microversionMiddleware(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Vary', VERSION_HEADER);
  const v = requestedVersion(req.headers[VERSION_HEADER.toLowerCase()] as string | undefined);
  (res.locals as VersionLocals).apiVersion = v;
  res.setHeader(VERSION_HEADER, `${SERVICE_TYPE} ${formatVersion(v)}`);
  next();
}

/** The version this request runs at (the minimum when the middleware did not run). */
export function versionOf(res: Response): ApiVersion {
  return (res.locals as VersionLocals).apiVersion ?? MIN;
}

/** Whether the request runs at `version` or later. */
export function atLeast(res: Response, version: string): boolean {
  return compareVersions(versionOf(res), must(version)) >= 0;
}

/** Routes added by a microversion: at an older version they do not exist (404), as in Nova. */
export function since(version: string) {
  must(version);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!atLeast(res, version)) {
      throw new HttpError(
        404,
        `The resource could not be found: ${req.method} ${req.baseUrl}${req.path} exists from microversion ${version} (this request is at ${formatVersion(versionOf(res))}; send "${VERSION_HEADER}: ${SERVICE_TYPE} ${version}").`,
      );
    }
    next();
  };
}

/** Request fields and query parameters added by a microversion, by name: what an older request is told. */
export const FIELDS_SINCE: Readonly<Record<string, string>> = {
  limit: '1.1',
  marker: '1.1',
  sort_key: '1.1',
  sort_dir: '1.1',
  'changes-since': '1.1',
  'changes-before': '1.1',
  user_id: '1.1',
  project_id: '1.1',
  post_copy: '1.4',
};

/** The microversion that added a request field, or undefined for a field of 1.0 or none at all (own keys only: "__proto__" is a field name like any other). */
export function fieldSince(name: string): string | undefined {
  return Object.hasOwn(FIELDS_SINCE, name) ? FIELDS_SINCE[name] : undefined;
}

function omit<T extends object, K extends string>(o: T, keys: readonly K[]): T {
  const out = { ...o } as Record<string, unknown>;
  for (const k of keys) delete out[k];
  return out as T;
}

const MIGRATION_FIELDS_1_3 = ['mode', 'memory_total_bytes', 'memory_processed_bytes', 'memory_remaining_bytes'] as const;
const MIGRATION_FIELDS_1_5 = ['disk_rounds', 'disk_live_bytes', 'disk_frozen_bytes'] as const;
const HOST_FIELDS_1_2 = ['status', 'disabled_reason'] as const;
const HOST_FIELDS_1_3 = ['memory_used_bytes', 'memory_total_bytes'] as const;
const HOST_FIELDS_1_4 = ['modes'] as const;

/** A migration record as the request's version shows it. */
export function migrationView(res: Response, m: Migration): Migration {
  if (atLeast(res, '1.5')) return m;
  return omit(m, atLeast(res, '1.3') ? MIGRATION_FIELDS_1_5 : [...MIGRATION_FIELDS_1_3, ...MIGRATION_FIELDS_1_5]);
}

/** A host as the request's version shows it. */
export function hostView(res: Response, h: ComputeHost): ComputeHost {
  const hidden: string[] = [];
  if (!atLeast(res, '1.2')) hidden.push(...HOST_FIELDS_1_2);
  if (!atLeast(res, '1.3')) hidden.push(...HOST_FIELDS_1_3);
  if (!atLeast(res, '1.4')) hidden.push(...HOST_FIELDS_1_4);
  return hidden.length ? omit(h, hidden) : h;
}

/** An evacuation (1.2) as the request's version shows it. */
export function evacuationView(res: Response, e: Evacuation): Evacuation {
  return atLeast(res, '1.4') ? e : omit(e, ['post_copy']);
}
