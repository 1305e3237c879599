/**
 * A small client of Ferry's REST API for the demo, the benchmarks and the tests: a Keystone
 * token (kept and refreshed by KeystoneClient), requests, and waiting on migrations and on
 * the conductor learning of a container from heartbeats.
 */
import { sleep } from '../common/sleep.js';
import { KeystoneClient } from '../identity/keystone.js';
import type { PasswordCredentials } from '../identity/types.js';
import type { Container } from '../objects/host.js';
import { isFinal, type Migration } from '../objects/migration.js';

export interface FerryResponse<T> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else its text (null when empty). */
  body: T;
}

export interface RequestOptions {
  /** undefined: the client's own token; null: no token at all; a string: that token. */
  token?: string | null;
  body?: unknown;
  /** Sent as it is (for malformed-JSON tests), as application/json. */
  rawBody?: string;
  headers?: Record<string, string>;
  /** The microversion to ask for; default: the client's (`latest`); null: no version header (the API's minimum, 1.0). */
  apiVersion?: string | null;
}

export const API_VERSION_HEADER = 'OpenStack-API-Version';

export class FerryClient {
  readonly keystone: KeystoneClient;

  /**
   * `apiRoot`: the API's root URL without /v1, e.g. http://127.0.0.1:9517. `apiVersion`: the
   * microversion every request asks for; this client (demo, benchmarks, soak, tests) is built
   * with the server, so it asks for the newest by default.
   */
  constructor(
    readonly apiRoot: string,
    authUrl: string,
    credentials: PasswordCredentials,
    readonly apiVersion: string = 'latest',
  ) {
    this.keystone = new KeystoneClient({ authUrl, credentials });
  }

  token(): Promise<string> {
    return this.keystone.getServiceToken();
  }

  async request<T = Record<string, unknown>>(method: string, urlPath: string, opts: RequestOptions = {}): Promise<FerryResponse<T>> {
    const headers: Record<string, string> = {};
    const version = opts.apiVersion === undefined ? this.apiVersion : opts.apiVersion;
    if (version !== null) headers[API_VERSION_HEADER] = `container-migration ${version}`;
    Object.assign(headers, opts.headers ?? {});
    const token = opts.token === undefined ? await this.token() : opts.token;
    if (token) headers['x-auth-token'] = token;
    let body: string | undefined;
    if (opts.rawBody !== undefined || opts.body !== undefined) {
      body = opts.rawBody ?? JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const r = await fetch(`${this.apiRoot}${urlPath}`, { method, headers, body });
    const text = await r.text();
    const isJson = (r.headers.get('content-type') ?? '').includes('json');
    return { status: r.status, headers: r.headers, body: (isJson && text ? JSON.parse(text) : text || null) as T };
  }

  async migrate(container: string, host?: string | null, opts: { post_copy?: boolean } = {}): Promise<Migration> {
    const r = await this.request<{ migration: Migration; error?: { message: string } }>('POST', `/v1/containers/${encodeURIComponent(container)}/migrate`, {
      body: { ...(host ? { host } : {}), ...(opts.post_copy ? { post_copy: true } : {}) },
    });
    if (r.status !== 202) throw new Error(`migrate ${container}: HTTP ${r.status}: ${r.body?.error?.message ?? JSON.stringify(r.body)}`);
    return r.body.migration;
  }

  /** Nova's force-complete: POST /v1/migrations/{uuid}/action {"force_complete": null}. */
  async forceComplete(uuid: string): Promise<Migration> {
    const r = await this.request<{ migration: Migration; error?: { message: string } }>('POST', `/v1/migrations/${uuid}/action`, {
      body: { force_complete: null },
    });
    if (r.status !== 202) throw new Error(`force-complete ${uuid}: HTTP ${r.status}: ${r.body?.error?.message ?? JSON.stringify(r.body)}`);
    return r.body.migration;
  }

  async getMigration(uuid: string): Promise<Migration> {
    const r = await this.request<{ migration: Migration }>('GET', `/v1/migrations/${uuid}`);
    if (r.status !== 200) throw new Error(`GET migration ${uuid}: HTTP ${r.status}`);
    return r.body.migration;
  }

  /** Poll until `until` holds (default: a final status); `onPoll` sees every answer (progress display). */
  async waitMigration(
    uuid: string,
    opts: { until?: (m: Migration) => boolean; timeoutMs?: number; everyMs?: number; onPoll?: (m: Migration) => void } = {},
  ): Promise<Migration> {
    const until = opts.until ?? ((m: Migration) => isFinal(m.status));
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    for (;;) {
      // 503/504: the API cannot reach the conductor right now (a broker restart): the migration goes on; ask again.
      const r = await this.request<{ migration: Migration }>('GET', `/v1/migrations/${uuid}`);
      if ((r.status === 503 || r.status === 504) && Date.now() < deadline) {
        await sleep(500);
        continue;
      }
      if (r.status !== 200) throw new Error(`GET migration ${uuid}: HTTP ${r.status}`);
      const m = r.body.migration;
      opts.onPoll?.(m);
      if (until(m)) return m;
      if (Date.now() > deadline) throw new Error(`migration ${uuid} stuck in ${m.status}/${m.phase}`);
      await sleep(opts.everyMs ?? 100);
    }
  }

  /** Wait until the conductor has heard (by heartbeat) that `name` runs on `host`. */
  async waitKnown(name: string, host: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.request<{ containers?: Container[] }>('GET', '/v1/containers');
      if (r.body.containers?.some((c) => c.name === name && c.host === host && c.status === 'running')) return;
      if (Date.now() > deadline) throw new Error(`the conductor never saw ${name} running on ${host}`);
      await sleep(300);
    }
  }
}
