/** Talking to the development cloud's real ferry-api as a user would: Keystone token, then REST. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { passwordAuthBody } from '../../src/identity/keystone.js';
import type { Migration } from '../../src/objects/migration.js';
import { cloud, repoRoot } from './cloud.js';
import { sleep } from './docker.js';

const pexec = promisify(execFile);
const tokens = new Map<string, string>();

export async function token(who: 'admin' | 'demo' | 'service'): Promise<string> {
  const cached = tokens.get(who);
  if (cached) return cached;
  const c = cloud().keystone[who];
  const r = await fetch(`${cloud().keystone.auth_url}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(passwordAuthBody(c)),
  });
  if (r.status !== 201) throw new Error(`token for ${who}: HTTP ${r.status}`);
  const t = r.headers.get('x-subject-token') as string;
  tokens.set(who, t);
  return t;
}

export function apiBase(): string {
  const api = cloud().api;
  if (!api) throw new Error('ferry-api is not part of the development cloud');
  return api.url.replace(/\/v1$/, '');
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

export async function api<T = Record<string, unknown>>(
  method: string,
  urlPath: string,
  opts: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers['x-auth-token'] = opts.token;
  let body: string | undefined;
  if (opts.rawBody !== undefined) {
    body = opts.rawBody;
    headers['content-type'] ??= 'application/json';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const r = await fetch(`${apiBase()}${urlPath}`, { method, headers, body });
  const text = await r.text();
  const isJson = (r.headers.get('content-type') ?? '').includes('json');
  return { status: r.status, headers: r.headers, body: (isJson && text ? JSON.parse(text) : text || null) as T };
}

export async function admin<T = Record<string, unknown>>(method: string, urlPath: string, body?: unknown) {
  return api<T>(method, urlPath, { token: await token('admin'), body });
}

export async function startMigration(container: string, host?: string): Promise<Migration> {
  const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${encodeURIComponent(container)}/migrate`, host ? { host } : {});
  if (r.status !== 202) throw new Error(`migrate ${container}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.migration;
}

export async function getMigration(uuid: string): Promise<Migration> {
  const r = await admin<{ migration: Migration }>('GET', `/v1/migrations/${uuid}`);
  if (r.status !== 200) throw new Error(`GET migration ${uuid}: HTTP ${r.status}`);
  return r.body.migration;
}

/** Poll until the migration satisfies `until` (default: a final status). */
export async function waitMigration(uuid: string, until: (m: Migration) => boolean = (m) => ['completed', 'failed', 'cancelled'].includes(m.status), timeoutMs = 240_000): Promise<Migration> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await getMigration(uuid);
    if (until(m)) return m;
    if (Date.now() > deadline) throw new Error(`migration ${uuid} stuck in ${m.status}/${m.phase}`);
    await sleep(100);
  }
}

/** Wait until the conductor knows the container (heartbeats come every few seconds). */
export async function waitKnown(containerName: string, host: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin<{ containers: { name: string; host: string; status: string }[] }>('GET', '/v1/containers');
    if (r.body.containers?.some((c) => c.name === containerName && c.host === host && c.status === 'running')) return;
    if (Date.now() > deadline) throw new Error(`the conductor never saw ${containerName} running on ${host}`);
    await sleep(300);
  }
}

/** Restart Ferry services of the development cloud, optionally with fault injection in their environment. */
export async function restartServices(names: string[], env: Record<string, string> = {}, kill = false): Promise<void> {
  const cleanEnv = { ...process.env };
  delete cleanEnv.FERRY_FAULTS;
  delete cleanEnv.FERRY_ENABLE_FAULTS;
  delete cleanEnv.NODE_ENV; // jest sets it to "test", which would arm faults in the services
  delete cleanEnv.NODE_OPTIONS;
  await pexec(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), 'restart', ...names, ...(kill ? ['--kill'] : [])], {
    env: { ...cleanEnv, ...env },
    timeout: 120_000,
  });
}
