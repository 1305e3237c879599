/**
 * Who asks and for what request: the context every layer passes along (API, policy,
 * conductor, bus). Its dict form uses oslo.context's `to_dict()` keys plus Nova's
 * `user_id`/`user_name`/`project_name`, so Python services read it as their own; unknown keys
 * from a peer are kept and sent on. How it travels in a message is src/bus/context.ts.
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../bus/envelope.js';

export interface RequestContextInit {
  request_id?: string;
  global_request_id?: string | null;
  user_id?: string | null;
  user_name?: string | null;
  project_id?: string | null;
  project_name?: string | null;
  domain_id?: string | null;
  user_domain_id?: string | null;
  project_domain_id?: string | null;
  roles?: string[];
  is_admin?: boolean;
  is_admin_project?: boolean;
  read_only?: boolean;
  show_deleted?: boolean;
  auth_token?: string | null;
  system_scope?: string | null;
  /** Keys this class does not model, kept as they came. */
  extra?: JsonObject;
}

/** Context keys that carry or unlock a caller's credentials (Nova's and keystonemiddleware's names). */
const CREDENTIAL_KEYS = new Set(['auth_token', 'service_catalog', 'auth_token_info', 'auth_plugin', 'user_auth_plugin', 'service_token']);

export function generateRequestId(): string {
  return `req-${randomUUID()}`;
}

export class RequestContext {
  readonly request_id: string;
  readonly global_request_id: string | null;
  readonly user_id: string | null;
  readonly user_name: string | null;
  readonly project_id: string | null;
  readonly project_name: string | null;
  readonly domain_id: string | null;
  readonly user_domain_id: string | null;
  readonly project_domain_id: string | null;
  readonly roles: string[];
  readonly is_admin: boolean;
  readonly is_admin_project: boolean;
  readonly read_only: boolean;
  readonly show_deleted: boolean;
  readonly auth_token: string | null;
  readonly system_scope: string | null;
  readonly extra: JsonObject;

  constructor(init: RequestContextInit = {}) {
    this.request_id = init.request_id ?? generateRequestId();
    this.global_request_id = init.global_request_id ?? null;
    this.user_id = init.user_id ?? null;
    this.user_name = init.user_name ?? null;
    this.project_id = init.project_id ?? null;
    this.project_name = init.project_name ?? null;
    this.domain_id = init.domain_id ?? null;
    this.user_domain_id = init.user_domain_id ?? null;
    this.project_domain_id = init.project_domain_id ?? null;
    this.roles = [...(init.roles ?? [])];
    this.is_admin = init.is_admin ?? false;
    this.is_admin_project = init.is_admin_project ?? false;
    this.read_only = init.read_only ?? false;
    this.show_deleted = init.show_deleted ?? false;
    this.auth_token = init.auth_token ?? null;
    this.system_scope = init.system_scope ?? null;
    this.extra = { ...(init.extra ?? {}) };
  }

  /** An admin context for the service's own work (periodic tasks, heartbeats). */
  static admin(init: RequestContextInit = {}): RequestContext {
    return new RequestContext({ roles: ['admin'], is_admin: true, is_admin_project: true, ...init });
  }

  /**
   * The same request without the caller's credentials: no Keystone token, and none of the
   * keys a peer may add that carry one or the catalog it opens. For messages to hosts that
   * act on the conductor's word and never call another service as the caller.
   */
  withoutCredentials(): RequestContext {
    const extra: JsonObject = {};
    for (const [k, v] of Object.entries(this.extra)) if (!CREDENTIAL_KEYS.has(k)) extra[k] = v;
    return new RequestContext({ ...this, auth_token: null, extra });
  }

  /** The dict form, as oslo.context's `to_dict()` plus Nova's extra keys. */
  toDict(): JsonObject {
    const idt = [this.user_id, this.project_id, this.domain_id, this.user_domain_id, this.project_domain_id].map((v) => v ?? '-').join(' ');
    return {
      ...this.extra,
      user: this.user_id,
      user_id: this.user_id,
      user_name: this.user_name,
      project_id: this.project_id,
      project: this.project_id,
      project_name: this.project_name,
      system_scope: this.system_scope,
      domain: this.domain_id,
      user_domain: this.user_domain_id,
      project_domain: this.project_domain_id,
      is_admin: this.is_admin,
      read_only: this.read_only,
      show_deleted: this.show_deleted,
      auth_token: this.auth_token,
      request_id: this.request_id,
      global_request_id: this.global_request_id,
      resource_uuid: null,
      roles: [...this.roles],
      user_identity: idt,
      is_admin_project: this.is_admin_project,
    };
  }

  /** Read any oslo.context / Nova style dict; both `user` and `user_id` spellings are accepted. */
  static fromDict(d: JsonObject): RequestContext {
    const str = (...keys: string[]): string | null => {
      for (const k of keys) {
        const v = d[k];
        if (typeof v === 'string') return v;
      }
      return null;
    };
    const bool = (k: string, def: boolean): boolean => (typeof d[k] === 'boolean' ? (d[k] as boolean) : def);
    const known = new Set([
      'user',
      'user_id',
      'user_name',
      'project_id',
      'project',
      'tenant',
      'project_name',
      'system_scope',
      'domain',
      'domain_id',
      'user_domain',
      'user_domain_id',
      'project_domain',
      'project_domain_id',
      'is_admin',
      'read_only',
      'show_deleted',
      'auth_token',
      'request_id',
      'global_request_id',
      'resource_uuid',
      'roles',
      'user_identity',
      'is_admin_project',
    ]);
    const extra: JsonObject = {};
    for (const [k, v] of Object.entries(d)) if (!known.has(k)) extra[k] = v;
    const roles = Array.isArray(d.roles) ? d.roles.filter((r): r is string => typeof r === 'string') : [];
    return new RequestContext({
      request_id: str('request_id') ?? undefined,
      global_request_id: str('global_request_id'),
      user_id: str('user_id', 'user'),
      user_name: str('user_name'),
      project_id: str('project_id', 'project', 'tenant'),
      project_name: str('project_name'),
      domain_id: str('domain_id', 'domain'),
      user_domain_id: str('user_domain_id', 'user_domain'),
      project_domain_id: str('project_domain_id', 'project_domain'),
      roles,
      is_admin: bool('is_admin', false),
      // Unsaid is not the admin project: a context must earn administrator rights, never get them by omission.
      is_admin_project: bool('is_admin_project', false),
      read_only: bool('read_only', false),
      show_deleted: bool('show_deleted', false),
      auth_token: str('auth_token'),
      system_scope: str('system_scope'),
      extra,
    });
  }
}
