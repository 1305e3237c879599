/** Shared by the API tests: a fake identity, a way to serve an app on 127.0.0.1, and a small HTTP client. */
import type { Express } from 'express';
import { pino } from 'pino';
import { IdentityUnavailable } from '../../../src/common/errors.js';
import type { TokenInfo, TokenValidator } from '../../../src/identity/types.js';
import { startApiServer, type ApiServer } from '../../../src/api/server.js';

export const silentLogger = pino({ level: 'silent' });

export function tokenInfo(over: Partial<TokenInfo> = {}): TokenInfo {
  return {
    user_id: 'u-admin',
    user_name: 'admin',
    user_domain_id: 'default',
    user_domain_name: 'Default',
    project_id: 'p-admin',
    project_name: 'admin',
    project_domain_id: 'default',
    project_domain_name: 'Default',
    domain_id: null,
    domain_name: null,
    system_scope: null,
    roles: ['admin', 'member', 'reader'],
    expires_at: new Date(Date.now() + 3600_000).toISOString(),
    issued_at: new Date().toISOString(),
    audit_ids: ['a'],
    is_admin_project: true,
    ...over,
  };
}

export const ADMIN_TOKEN = 'admin-token';
export const DEMO_TOKEN = 'demo-token';
/** Only the reader role in the demo project (Keystone's bootstrap role; member and admin imply it). */
export const READER_TOKEN = 'reader-token';

export class FakeIdentity implements TokenValidator {
  readonly tokens = new Map<string, TokenInfo>([
    [ADMIN_TOKEN, tokenInfo()],
    [DEMO_TOKEN, tokenInfo({ user_id: 'u-demo', user_name: 'demo', project_id: 'p-demo', project_name: 'demo', roles: ['member', 'reader'] })],
    [
      READER_TOKEN,
      tokenInfo({ user_id: 'u-reader', user_name: 'demo-reader', project_id: 'p-demo', project_name: 'demo', roles: ['reader'], is_admin_project: false }),
    ],
  ]);
  readonly seen: string[] = [];
  unavailable = false;

  async validateToken(token: string): Promise<TokenInfo | null> {
    this.seen.push(token);
    if (this.unavailable) throw new IdentityUnavailable('Keystone at http://127.0.0.1:1/v3 is unreachable');
    return this.tokens.get(token) ?? null;
  }
}

export async function serve(app: Express): Promise<ApiServer> {
  return startApiServer(app, { host: '127.0.0.1', port: 0, logger: silentLogger });
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string>; apiVersion?: string | null } = {},
): Promise<Reply> {
  // The newest microversion unless a test asks for one (null: no header, the API's minimum).
  const version = opts.apiVersion === undefined ? 'latest' : opts.apiVersion;
  const headers: Record<string, string> = version === null ? {} : { 'OpenStack-API-Version': `container-migration ${version}` };
  Object.assign(headers, opts.headers);
  if (opts.token) headers['x-auth-token'] = opts.token;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const REQ_ID_RE = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
