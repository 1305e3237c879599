/** Talking to the development cloud's real ferry-api as a user would: Keystone token, then REST. */
import { FerryClient, type FerryResponse, type RequestOptions } from '../../src/devcloud/ferry-client.js';
import type { Migration } from '../../src/objects/migration.js';
import { cloud } from './cloud.js';

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

export { restartServices } from '../../src/soak/cloud.js';
