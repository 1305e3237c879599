/** Talking to the development cloud's real ferry-api as a user would: Keystone token, then REST. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { FerryClient, type FerryResponse, type RequestOptions } from '../../src/devcloud/ferry-client.js';
import type { Migration } from '../../src/objects/migration.js';
import { cloud, repoRoot } from './cloud.js';

const pexec = promisify(execFile);
const clients = new Map<string, FerryClient>();

/** A REST client of the dev cloud's ferry-api acting as `who` (src/devcloud/ferry-client.ts). */
export function ferry(who: 'admin' | 'demo' | 'service' = 'admin'): FerryClient {
  let c = clients.get(who);
  if (!c) {
    c = new FerryClient(apiBase(), cloud().keystone.auth_url, cloud().keystone[who]);
    clients.set(who, c);
  }
  return c;
}

export function token(who: 'admin' | 'demo' | 'service'): Promise<string> {
  return ferry(who).token();
}

export function apiBase(): string {
  const api = cloud().api;
  if (!api) throw new Error('ferry-api is not part of the development cloud');
  return api.url.replace(/\/v1$/, '');
}

export type ApiResponse<T = Record<string, unknown>> = FerryResponse<T>;

/** Any request; without `token` it goes unauthenticated. */
export function api<T = Record<string, unknown>>(method: string, urlPath: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  return ferry('admin').request<T>(method, urlPath, { ...opts, token: opts.token ?? null });
}

export function admin<T = Record<string, unknown>>(method: string, urlPath: string, body?: unknown): Promise<ApiResponse<T>> {
  return ferry('admin').request<T>(method, urlPath, { body });
}

export function startMigration(container: string, host?: string): Promise<Migration> {
  return ferry().migrate(container, host);
}

export function getMigration(uuid: string): Promise<Migration> {
  return ferry().getMigration(uuid);
}

/** Poll until the migration satisfies `until` (default: a final status). */
export function waitMigration(uuid: string, until?: (m: Migration) => boolean, timeoutMs = 240_000): Promise<Migration> {
  return ferry().waitMigration(uuid, { until, timeoutMs });
}

/** Wait until the conductor knows the container (heartbeats come every few seconds). */
export function waitKnown(containerName: string, host: string, timeoutMs = 30_000): Promise<void> {
  return ferry().waitKnown(containerName, host, timeoutMs);
}

/** Restart Ferry services of the development cloud, optionally with fault injection in their environment. */
export async function restartServices(names: string[], env: Record<string, string> = {}, kill = false): Promise<void> {
  const cleanEnv = { ...process.env };
  delete cleanEnv.FERRY_FAULTS;
  delete cleanEnv.FERRY_ENABLE_FAULTS;
  delete cleanEnv.NODE_ENV; // jest sets it to "test", which would arm faults in the services
  delete cleanEnv.NODE_OPTIONS;
  // Services log at the dev cloud's level (info), as `ferry-devcloud up` started them, not at the tests' own.
  delete cleanEnv.FERRY_LOG_LEVEL;
  await pexec(process.execPath, [path.join(repoRoot, 'dist/cmd/devcloud.js'), 'restart', ...names, ...(kill ? ['--kill'] : [])], {
    env: { ...cleanEnv, ...env },
    timeout: 120_000,
  });
}
