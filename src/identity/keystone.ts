/**
 * A Keystone v3 client written by hand on fetch: what keystonemiddleware and keystoneauth
 * do for an OpenStack service, and no more.
 *
 * - The service user authenticates with a password; its token (and catalog) is reused until
 *   120 s before it expires. One refresh at a time: concurrent callers share the request in flight.
 * - `validateToken` checks a caller's token (`GET /v3/auth/tokens?nocatalog` with
 *   `X-Subject-Token`), caching good answers for `token_cache_time` (never past the token's
 *   expiry) and bad ones briefly. 404 = invalid. 401 = our own token is bad: re-authenticate
 *   once, then IdentityUnavailable.
 * - Connection errors and timeouts are retried `http_request_max_retries` times, then
 *   IdentityUnavailable. Keystone's 5xx answers are IdentityUnavailable at once.
 * - `findEndpoint` reads the service catalog; `request` is an authenticated call for the
 *   catalog registration (src/identity/catalog.ts) and other admin chores.
 */
import { createHash } from 'node:crypto';
import { IdentityUnavailable, NotAuthenticated } from '../common/errors.js';
import { getLogger, type Logger } from '../common/log.js';
import { sleep } from '../common/sleep.js';
import type { FerryConfig } from '../conf/index.js';
import type { CatalogService, PasswordCredentials, TokenInfo, TokenValidator } from './types.js';
import { jsonBody } from '../common/json-body.js';

export type { CatalogEndpoint, CatalogService, PasswordCredentials, TokenInfo, TokenValidator } from './types.js';

export type EndpointInterface = 'public' | 'internal' | 'admin';

export interface KeystoneClientOptions {
  /** Keystone v3 URL, e.g. http://127.0.0.1:5000/v3 (a URL without /v3 gets it appended). */
  authUrl: string;
  /** The service user (keystone_authtoken username/password/project_name/...). */
  credentials: PasswordCredentials;
  /** Default region for catalog lookups. */
  regionName?: string;
  /** Default interface for catalog lookups. */
  interface?: EndpointInterface;
  /** Seconds a validated token is cached (0 = no cache). Default 300. */
  tokenCacheTime?: number;
  /** Seconds an invalid token is remembered as invalid. Default min(10, tokenCacheTime). */
  negativeCacheTime?: number;
  /** Retries after a connection error or timeout. Default 3. */
  maxRetries?: number;
  /** Milliseconds one request may take. Default 10 000. */
  requestTimeoutMs?: number;
  /** First pause between retries, doubled each time (capped at 4 s). Default 500. */
  retryDelayMs?: number;
  /** Refresh the service token this long before it expires. Default 120 000. */
  refreshMarginMs?: number;
  /** Most tokens kept in the validation cache (oldest dropped first). Default 10 000. */
  maxCacheEntries?: number;
  logger?: Logger;
  /** For tests. */
  fetch?: typeof fetch;
  now?: () => number;
}

/** The client options from `[keystone_authtoken]`. */
export function keystoneOptionsFromConf(conf: FerryConfig, extra: Partial<KeystoneClientOptions> = {}): KeystoneClientOptions {
  const k = conf.keystone_authtoken;
  return {
    authUrl: k.auth_url,
    credentials: {
      username: k.username,
      password: k.password,
      project_name: k.project_name,
      user_domain_name: k.user_domain_name,
      project_domain_name: k.project_domain_name,
    },
    regionName: k.region_name,
    tokenCacheTime: k.token_cache_time,
    maxRetries: k.http_request_max_retries,
    requestTimeoutMs: k.http_connect_timeout * 1000,
    ...extra,
  };
}

export interface KeystoneResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body; null when there is none or it is not JSON. */
  json: unknown;
}

export interface IssuedToken {
  token: string;
  info: TokenInfo;
  expiresAtMs: number;
  catalog: CatalogService[];
}

/** Counters, for logs and tests. */
export interface KeystoneStats {
  /** Password authentications of the service user. */
  serviceAuthentications: number;
  /** Validation requests sent to Keystone. */
  validationRequests: number;
  /** Validations answered from the cache (positive or negative). */
  cacheHits: number;
}

interface CacheEntry {
  info: TokenInfo | null;
  /** Until when the entry may be used (ms since epoch). */
  until: number;
}

const MAX_TOKEN_LENGTH = 16384;
/** Visible ASCII only: anything else cannot be a Keystone token (and could not go into a header). */
const TOKEN_RE = /^[\x21-\x7e]+$/;

export class KeystoneClient implements TokenValidator {
  readonly authUrl: string;
  private readonly opts: Required<Omit<KeystoneClientOptions, 'logger' | 'fetch' | 'now'>>;
  private readonly log: Logger;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private service: IssuedToken | undefined;
  private refreshing: Promise<IssuedToken> | undefined;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<TokenInfo | null>>();
  readonly stats: KeystoneStats = { serviceAuthentications: 0, validationRequests: 0, cacheHits: 0 };

  constructor(options: KeystoneClientOptions) {
    const tokenCacheTime = options.tokenCacheTime ?? 300;
    this.opts = {
      authUrl: options.authUrl,
      credentials: options.credentials,
      regionName: options.regionName ?? 'RegionOne',
      interface: options.interface ?? 'public',
      tokenCacheTime,
      negativeCacheTime: options.negativeCacheTime ?? Math.min(10, tokenCacheTime),
      maxRetries: options.maxRetries ?? 3,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      retryDelayMs: options.retryDelayMs ?? 500,
      refreshMarginMs: options.refreshMarginMs ?? 120_000,
      maxCacheEntries: options.maxCacheEntries ?? 10_000,
    };
    this.authUrl = normalizeAuthUrl(options.authUrl);
    this.log = options.logger ?? getLogger('identity');
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  // ---------------------------------------------------------------- HTTP

  /**
   * One request to Keystone (path relative to the v3 URL, e.g. `/auth/tokens`), retrying
   * connection errors and timeouts. Any HTTP answer is returned as it is.
   */
  async rawRequest(method: string, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}): Promise<KeystoneResponse> {
    const url = this.authUrl + (path.startsWith('/') ? path : `/${path}`);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'ferry keystone-client', ...init.headers };
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.opts.maxRetries; attempt++) {
      if (attempt > 0) {
        const delay = Math.min(this.opts.retryDelayMs * 2 ** (attempt - 1), 4000);
        this.log.warn({ method, url: redactUrl(url), attempt, delay_ms: delay, err: describe(lastError) }, 'Keystone unreachable, retrying');
        await sleep(delay);
      }
      let res: Response;
      try {
        res = await this.fetchImpl(url, { method, headers, body, signal: AbortSignal.timeout(this.opts.requestTimeoutMs) });
      } catch (e) {
        lastError = e;
        continue;
      }
      const json = await jsonBody(res);
      return { status: res.status, headers: res.headers, json };
    }
    throw new IdentityUnavailable(`Keystone at ${this.authUrl} is unreachable (${describe(lastError)}) after ${this.opts.maxRetries + 1} attempt(s)`, {
      auth_url: this.authUrl,
    });
  }

  /**
   * A request authenticated with the service token. A 401 means our token is no longer
   * good: authenticate again once and repeat; a second 401 is IdentityUnavailable.
   */
  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}): Promise<KeystoneResponse> {
    for (let attempt = 0; ; attempt++) {
      const svc = await this.serviceAuth();
      const res = await this.rawRequest(method, path, { ...init, headers: { ...init.headers, 'x-auth-token': svc.token } });
      if (res.status !== 401) return res;
      this.invalidateServiceToken(svc.token);
      if (attempt >= 1) {
        throw new IdentityUnavailable(`Keystone rejected the token of service user ${this.opts.credentials.username} again after re-authenticating`, {
          status: 401,
        });
      }
      this.log.info({ method, path }, 'Keystone rejected the service token; re-authenticating');
    }
  }

  // ---------------------------------------------------------------- tokens

  /**
   * Password authentication for a project-scoped token (POST /v3/auth/tokens).
   * Wrong credentials -> NotAuthenticated; Keystone down or failing -> IdentityUnavailable.
   */
  async issueToken(credentials: PasswordCredentials, options: { catalog?: boolean } = {}): Promise<IssuedToken> {
    const res = await this.rawRequest('POST', options.catalog === false ? '/auth/tokens?nocatalog' : '/auth/tokens', {
      body: passwordAuthBody(credentials),
    });
    if (res.status === 401) {
      throw new NotAuthenticated(
        `Keystone rejected the credentials of user ${credentials.username} (domain ${credentials.user_domain_name}) for project ${credentials.project_name}`,
        { status: 401, username: credentials.username },
      );
    }
    if (res.status !== 201 && res.status !== 200) {
      throw new IdentityUnavailable(`Keystone token request for user ${credentials.username} failed: ${keystoneError(res)}`, {
        status: res.status,
      });
    }
    const token = res.headers.get('x-subject-token');
    if (!token) throw new IdentityUnavailable('Keystone issued a token without an X-Subject-Token header');
    const info = parseTokenBody(res.json);
    const body = res.json as { token?: { catalog?: unknown } };
    return { token, info, expiresAtMs: Date.parse(info.expires_at), catalog: parseCatalog(body.token?.catalog) };
  }

  /** The service user's token, reused until `refreshMarginMs` before it expires. */
  async getServiceToken(): Promise<string> {
    return (await this.serviceAuth()).token;
  }

  /** The service user's validated token data (project id, roles, ...). */
  async getServiceTokenInfo(): Promise<TokenInfo> {
    return (await this.serviceAuth()).info;
  }

  private async serviceAuth(): Promise<IssuedToken> {
    const cur = this.service;
    if (cur && this.now() < cur.expiresAtMs - this.marginFor(cur)) return cur;
    if (!this.refreshing) {
      this.refreshing = this.authenticateService().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  private marginFor(t: IssuedToken): number {
    // A token that lives less than twice the margin is refreshed at half its life.
    const issued = t.info.issued_at ? Date.parse(t.info.issued_at) : NaN;
    const life = Number.isFinite(issued) ? t.expiresAtMs - issued : Infinity;
    return Math.min(this.opts.refreshMarginMs, life / 2);
  }

  private async authenticateService(): Promise<IssuedToken> {
    this.stats.serviceAuthentications++;
    const c = this.opts.credentials;
    let issued: IssuedToken;
    try {
      issued = await this.issueToken(c);
    } catch (e) {
      if (e instanceof NotAuthenticated) {
        // Our own credentials are wrong: a service problem, not the caller's.
        throw new IdentityUnavailable(
          `Keystone rejected the service credentials ([keystone_authtoken] username ${c.username}, project ${c.project_name}); check the password`,
          { status: 401 },
        );
      }
      throw e;
    }
    this.service = issued;
    this.log.debug({ expires_at: issued.info.expires_at }, 'service token issued');
    return issued;
  }

  /** Forget the service token (only if it is still `token`), so the next call authenticates. */
  invalidateServiceToken(token?: string): void {
    if (token === undefined || this.service?.token === token) this.service = undefined;
  }

  /**
   * Validate a caller's token. Resolves its data, or null when it is invalid or expired.
   * Rejects with IdentityUnavailable when Keystone cannot tell.
   */
  async validateToken(subjectToken: string): Promise<TokenInfo | null> {
    if (typeof subjectToken !== 'string' || subjectToken.length > MAX_TOKEN_LENGTH || !TOKEN_RE.test(subjectToken)) return null;
    const key = createHash('sha256').update(subjectToken).digest('hex');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.until > now && (hit.info === null || Date.parse(hit.info.expires_at) > now)) {
        this.stats.cacheHits++;
        return hit.info;
      }
      this.cache.delete(key);
    }
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.fetchValidation(subjectToken, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetchValidation(subjectToken: string, key: string): Promise<TokenInfo | null> {
    this.stats.validationRequests++;
    const res = await this.request('GET', '/auth/tokens?nocatalog', { headers: { 'x-subject-token': subjectToken } });
    if (res.status === 404) {
      this.remember(key, null, this.opts.negativeCacheTime * 1000);
      return null;
    }
    if (res.status !== 200) {
      throw new IdentityUnavailable(`Keystone could not validate a token: ${keystoneError(res)}`, { status: res.status });
    }
    const info = parseTokenBody(res.json);
    const left = Date.parse(info.expires_at) - this.now();
    if (!(left > 0)) {
      this.remember(key, null, this.opts.negativeCacheTime * 1000);
      return null;
    }
    this.remember(key, info, Math.min(this.opts.tokenCacheTime * 1000, left));
    return info;
  }

  private remember(key: string, info: TokenInfo | null, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.cache.delete(key);
    while (this.cache.size >= this.opts.maxCacheEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    this.cache.set(key, { info, until: this.now() + ttlMs });
  }

  /** Empty the validation cache (e.g. after a policy or role change an operator wants seen now). */
  clearTokenCache(): void {
    this.cache.clear();
  }

  // ---------------------------------------------------------------- catalog

  /** The service catalog of the service token. */
  async getCatalog(): Promise<CatalogService[]> {
    return (await this.serviceAuth()).catalog;
  }

  /**
   * The URL of a service in the catalog, or null. `region` null matches any region.
   * When the token's catalog has no match, the current catalog is read once more
   * (GET /v3/auth/catalog), since services may have registered after our token was issued.
   */
  async findEndpoint(
    serviceType: string,
    iface: EndpointInterface = this.opts.interface,
    region: string | null = this.opts.regionName,
  ): Promise<string | null> {
    const svc = await this.serviceAuth();
    const found = pickEndpoint(svc.catalog, serviceType, iface, region);
    if (found) return found;
    const res = await this.request('GET', '/auth/catalog');
    if (res.status !== 200) throw new IdentityUnavailable(`Keystone catalog request failed: ${keystoneError(res)}`, { status: res.status });
    const fresh = parseCatalog((res.json as { catalog?: unknown } | null)?.catalog);
    if (this.service === svc) this.service = { ...svc, catalog: fresh };
    return pickEndpoint(fresh, serviceType, iface, region);
  }
}

export function pickEndpoint(catalog: CatalogService[], serviceType: string, iface: string, region: string | null): string | null {
  for (const s of catalog) {
    if (s.type !== serviceType) continue;
    for (const e of s.endpoints) {
      if (e.interface !== iface) continue;
      if (region !== null && e.region_id !== region && e.region !== region) continue;
      return e.url;
    }
  }
  return null;
}

// ---------------------------------------------------------------- parsing

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** The token body Keystone returns (`{"token": {...}}`) as TokenInfo. */
export function parseTokenBody(body: unknown): TokenInfo {
  const t = obj(obj(body)?.token);
  const user = obj(t?.user);
  const userId = str(user?.id);
  const expires = str(t?.expires_at);
  if (!t || !userId || !expires || !Number.isFinite(Date.parse(expires))) {
    throw new IdentityUnavailable('Keystone returned a token body Ferry cannot read (no user id or expiry)');
  }
  const project = obj(t.project);
  const domain = obj(t.domain);
  const system = obj(t.system);
  const roles = Array.isArray(t.roles) ? t.roles.map((r) => str(obj(r)?.name)).filter((r): r is string => r !== null) : [];
  return {
    user_id: userId,
    user_name: str(user?.name),
    user_domain_id: str(obj(user?.domain)?.id),
    user_domain_name: str(obj(user?.domain)?.name),
    project_id: str(project?.id),
    project_name: str(project?.name),
    project_domain_id: str(obj(project?.domain)?.id),
    project_domain_name: str(obj(project?.domain)?.name),
    domain_id: str(domain?.id),
    domain_name: str(domain?.name),
    system_scope: system && system.all === true ? 'all' : null,
    roles,
    expires_at: expires,
    issued_at: str(t.issued_at),
    audit_ids: Array.isArray(t.audit_ids) ? t.audit_ids.filter((a): a is string => typeof a === 'string') : [],
    // Absent means Keystone knows no admin project: then no project is one (not every project, as keystonemiddleware reads it).
    is_admin_project: t.is_admin_project === true,
  };
}

export function parseCatalog(raw: unknown): CatalogService[] {
  if (!Array.isArray(raw)) return [];
  const out: CatalogService[] = [];
  for (const s of raw) {
    const so = obj(s);
    const type = str(so?.type);
    if (!so || !type) continue;
    const endpoints = Array.isArray(so.endpoints) ? so.endpoints : [];
    out.push({
      id: str(so.id) ?? undefined,
      type,
      name: str(so.name) ?? undefined,
      endpoints: endpoints.flatMap((e) => {
        const eo = obj(e);
        const url = str(eo?.url);
        const iface = str(eo?.interface);
        if (!eo || !url || !iface) return [];
        return [{ id: str(eo.id) ?? undefined, interface: iface, region: str(eo.region), region_id: str(eo.region_id), url }];
      }),
    });
  }
  return out;
}

/** Keystone's own error text (`{"error": {"message"}}`) with the status, for messages. */
export function keystoneError(res: KeystoneResponse): string {
  const msg = str(obj(obj(res.json)?.error)?.message);
  return `HTTP ${res.status}${msg ? `: ${msg}` : ''}`;
}

/** The body of POST /v3/auth/tokens for a project-scoped password token. */
export function passwordAuthBody(c: PasswordCredentials) {
  return {
    auth: {
      identity: { methods: ['password'], password: { user: { name: c.username, domain: { name: c.user_domain_name }, password: c.password } } },
      scope: { project: { name: c.project_name, domain: { name: c.project_domain_name } } },
    },
  };
}

export function normalizeAuthUrl(url: string): string {
  const u = url.replace(/\/+$/, '');
  return /\/v3$/.test(u) ? u : `${u}/v3`;
}

function redactUrl(url: string): string {
  return url.split('?')[0];
}

function describe(e: unknown): string {
  // Duck-typed: fetch's errors may come from another realm (instanceof Error fails there).
  const err = obj(e);
  if (!err) return String(e);
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  const cause = obj(err.cause);
  if (typeof cause?.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return typeof err.message === 'string' ? err.message : String(e);
}
