/**
 * A small in-memory Keystone v3 on 127.0.0.1 for unit tests: password auth, token
 * validation, the catalog, regions, services and endpoints. It counts what it is asked, and
 * can be told to be slow, to forget tokens (as after a key rotation), or to fail.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from '../../../src/common/sleep.js';

interface User {
  id: string;
  name: string;
  password: string;
  project: string;
  roles: string[];
}

interface Token {
  user: User;
  expires: number;
  issued: number;
}

export interface FakeService {
  id: string;
  name: string;
  type: string;
  description?: string;
  enabled: boolean;
}

export interface FakeEndpoint {
  id: string;
  interface: string;
  region_id: string;
  url: string;
  service_id: string;
}

export class FakeKeystone {
  server!: http.Server;
  url = '';
  readonly users: User[] = [
    { id: 'u-ferry', name: 'ferry', password: 'svc-pass', project: 'service', roles: ['admin'] },
    { id: 'u-admin', name: 'admin', password: 'admin-pass', project: 'admin', roles: ['admin', 'member'] },
    { id: 'u-demo', name: 'demo', password: 'demo-pass', project: 'demo', roles: ['member'] },
  ];
  readonly tokens = new Map<string, Token>();
  regions = new Set(['RegionOne']);
  services: FakeService[] = [{ id: 'svc-keystone', name: 'keystone', type: 'identity', enabled: true }];
  endpoints: FakeEndpoint[] = [{ id: 'ep-ks', interface: 'public', region_id: 'RegionOne', url: 'http://127.0.0.1:5000/v3', service_id: 'svc-keystone' }];
  /** How long issued tokens live. */
  tokenLifetimeMs = 3600_000;
  /** Delay before answering a password authentication. */
  authDelayMs = 0;
  /** Refuse the service user's tokens on every call but authentication (401), as if they were all revoked at once. */
  rejectServiceTokens = false;
  /** Answer everything with this status (e.g. 500, 503). */
  failWith: number | undefined;
  /** Requests seen, as "METHOD /path". */
  readonly log: string[] = [];
  readonly counts = { auth: 0, validate: 0 };

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        this.handle(req, body)
          .then(({ status, json, headers }) => {
            res.writeHead(status, { 'content-type': 'application/json', ...headers });
            res.end(json === undefined ? '' : JSON.stringify(json));
          })
          .catch((e: Error) => {
            res.writeHead(500);
            res.end(JSON.stringify({ error: { code: 500, message: e.message, title: 'Internal Server Error' } }));
          });
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v3`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** A token for a user, made without a request. */
  issue(name: string, lifetimeMs = this.tokenLifetimeMs): string {
    const user = this.users.find((u) => u.name === name)!;
    const id = `tok-${randomUUID()}`;
    this.tokens.set(id, { user, expires: Date.now() + lifetimeMs, issued: Date.now() });
    return id;
  }

  /** Forget every token (as a fernet key rotation gone wrong would). */
  revokeAll(user?: string): void {
    for (const [k, t] of this.tokens) if (user === undefined || t.user.name === user) this.tokens.delete(k);
  }

  private tokenBody(t: Token, catalog: boolean) {
    const body: Record<string, unknown> = {
      methods: ['password'],
      user: { id: t.user.id, name: t.user.name, domain: { id: 'default', name: 'Default' } },
      project: { id: `p-${t.user.project}`, name: t.user.project, domain: { id: 'default', name: 'Default' } },
      roles: t.user.roles.map((r) => ({ id: `r-${r}`, name: r })),
      expires_at: new Date(t.expires).toISOString(),
      issued_at: new Date(t.issued).toISOString(),
      audit_ids: ['x'],
      is_domain: false,
      // As a Keystone with [resource] admin_project_name = admin says it.
      is_admin_project: t.user.project === 'admin',
    };
    if (catalog) body.catalog = this.catalog();
    return { token: body };
  }

  private catalog() {
    return this.services.map((s) => ({
      id: s.id,
      name: s.name,
      type: s.type,
      endpoints: this.endpoints
        .filter((e) => e.service_id === s.id)
        .map((e) => ({ id: e.id, interface: e.interface, region_id: e.region_id, region: e.region_id, url: e.url })),
    }));
  }

  private authorized(req: http.IncomingMessage): Token | undefined {
    const t = this.tokens.get(String(req.headers['x-auth-token'] ?? ''));
    if (t && this.rejectServiceTokens && t.user.name === 'ferry') return undefined;
    return t && t.expires > Date.now() ? t : undefined;
  }

  private async handle(req: http.IncomingMessage, raw: string): Promise<{ status: number; json?: unknown; headers?: Record<string, string> }> {
    const u = new URL(req.url ?? '/', 'http://x');
    const p = u.pathname.replace(/^\/v3/, '');
    this.log.push(`${req.method} ${p}`);
    if (this.failWith) return { status: this.failWith, json: { error: { code: this.failWith, message: 'failing on purpose', title: 'Error' } } };
    const unauthorized = { status: 401, json: { error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } } };
    const notFound = (m: string) => ({ status: 404, json: { error: { code: 404, message: m, title: 'Not Found' } } });
    const body = raw ? (JSON.parse(raw) as Record<string, Record<string, unknown>>) : {};

    if (p === '/auth/tokens' && req.method === 'POST') {
      this.counts.auth++;
      if (this.authDelayMs) await sleep(this.authDelayMs);
      const pw = (body.auth as { identity: { password: { user: { name: string; password: string } } } }).identity.password.user;
      const user = this.users.find((x) => x.name === pw.name && x.password === pw.password);
      if (!user) return unauthorized;
      const id = `tok-${randomUUID()}`;
      const t = { user, expires: Date.now() + this.tokenLifetimeMs, issued: Date.now() };
      this.tokens.set(id, t);
      return { status: 201, json: this.tokenBody(t, !u.searchParams.has('nocatalog')), headers: { 'x-subject-token': id } };
    }
    const caller = this.authorized(req);
    if (!caller) return unauthorized;
    if (p === '/auth/tokens' && req.method === 'GET') {
      this.counts.validate++;
      const t = this.tokens.get(String(req.headers['x-subject-token'] ?? ''));
      if (!t || t.expires <= Date.now()) return notFound('Could not recognize Fernet token');
      return { status: 200, json: this.tokenBody(t, !u.searchParams.has('nocatalog')), headers: { 'x-subject-token': String(req.headers['x-subject-token']) } };
    }
    if (p === '/auth/catalog' && req.method === 'GET') return { status: 200, json: { catalog: this.catalog() } };

    const region = /^\/regions\/([^/]+)$/.exec(p);
    if (region && req.method === 'GET') {
      const id = decodeURIComponent(region[1]);
      return this.regions.has(id) ? { status: 200, json: { region: { id } } } : notFound(`Could not find region: ${id}.`);
    }
    if (p === '/regions' && req.method === 'POST') {
      const id = body.region.id as string;
      if (this.regions.has(id)) return { status: 409, json: { error: { code: 409, message: 'Conflict', title: 'Conflict' } } };
      this.regions.add(id);
      return { status: 201, json: { region: { id } } };
    }
    if (p === '/services' && req.method === 'GET') {
      const type = u.searchParams.get('type');
      return { status: 200, json: { services: this.services.filter((s) => !type || s.type === type) } };
    }
    if (p === '/services' && req.method === 'POST') {
      const s = { id: `svc-${randomUUID().slice(0, 8)}`, enabled: true, ...(body.service as object) } as FakeService;
      this.services.push(s);
      return { status: 201, json: { service: s } };
    }
    const svc = /^\/services\/([^/]+)$/.exec(p);
    if (svc && req.method === 'PATCH') {
      const s = this.services.find((x) => x.id === svc[1]);
      if (!s) return notFound('no such service');
      Object.assign(s, body.service);
      return { status: 200, json: { service: s } };
    }
    if (p === '/endpoints' && req.method === 'GET') {
      const sid = u.searchParams.get('service_id');
      return { status: 200, json: { endpoints: this.endpoints.filter((e) => !sid || e.service_id === sid) } };
    }
    if (p === '/endpoints' && req.method === 'POST') {
      const e = body.endpoint as unknown as FakeEndpoint;
      if (!this.regions.has(e.region_id))
        return { status: 400, json: { error: { code: 400, message: 'Expecting to find endpoint region_id in region table.', title: 'Bad Request' } } };
      const made = { id: `ep-${randomUUID().slice(0, 8)}`, interface: e.interface, region_id: e.region_id, url: e.url, service_id: e.service_id };
      this.endpoints.push(made);
      return { status: 201, json: { endpoint: made } };
    }
    const ep = /^\/endpoints\/([^/]+)$/.exec(p);
    if (ep && req.method === 'PATCH') {
      const e = this.endpoints.find((x) => x.id === ep[1]);
      if (!e) return notFound('no such endpoint');
      Object.assign(e, body.endpoint);
      return { status: 200, json: { endpoint: e } };
    }
    return notFound(`no route ${req.method} ${p}`);
  }
}
