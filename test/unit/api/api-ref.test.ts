/**
 * docs/api-ref/ against the running API, so the reference cannot drift from the code:
 * - every sample line of the reference is sent to the real app (real routes, schemas, policy;
 *   a fake conductor behind it) at the microversion the line names, and the answer must equal
 *   the response sample: same status, same keys at every level, same types, same values once
 *   what varies from run to run (uuids, request ids, timestamps, host versions) is masked;
 * - every route the router serves has a section, every section is a route, each section's
 *   policy rules are the ones the defaults give that route, and a section's "since" microversion
 *   is the first one that has the route;
 * - every file in samples/ is used by a sample line, and every sample line names files that exist.
 *
 * A sample line in the markdown reads (request optional, "as <who>" optional: admin (default),
 * member or reader of the samples' project, anonymous):
 *   Sample (microversion 1.4, as member): `POST /v1/containers/counter/migrate` with [request](samples/x-req.json) → 202, [response](samples/x-resp.json)
 */
import fs from 'node:fs';
import { METHODS } from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Router } from 'express';
import { createApp } from '../../../src/api/app.js';
import { MICROVERSIONS } from '../../../src/api/microversions.js';
import { v1Router } from '../../../src/api/routes.js';
import type { ApiServer } from '../../../src/api/server.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { DEFAULT_POLICIES } from '../../../src/identity/policies.js';
import { Policy } from '../../../src/identity/policy.js';
import { countByStatus, type Evacuation } from '../../../src/objects/evacuation.js';
import { FakeConductor, hostFixture } from './fake-conductor.js';
import { ADMIN_TOKEN, call, DEMO_TOKEN, FakeIdentity, READER_TOKEN, serve, silentLogger } from './helpers.js';

const DOC_DIR = path.resolve('docs/api-ref');
const SAMPLES_DIR = path.join(DOC_DIR, 'samples');
/** The endpoint the samples show; the app is configured with it so that links are comparable. */
const PUBLIC_ENDPOINT = 'http://controller:8779';

/** The fixed records the samples show (their ids appear in the sample lines' paths). */
export const RUNNING_MIGRATION = '0b7f3c2e-9a41-4d5e-8c36-1f2a3b4c5d6e';
export const DONE_MIGRATION = '5e6f7a8b-1c2d-4e3f-9a0b-7c8d9e0f1a2b';
export const EVACUATION = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';

function seed(conductor: FakeConductor): void {
  const t0 = '2026-12-01T09:30:00.000Z';
  conductor.hosts = [
    hostFixture('compute1', {
      containers: 2,
      memory_used_bytes: 536870912,
      memory_total_bytes: 8589934592,
      modes: { post_copy: { ok: true, reason: null }, pre_copy: { ok: true, reason: null } },
      updated_at: t0,
    }),
    hostFixture('compute2', {
      migration_address: '127.0.0.1:9519',
      containers: 0,
      memory_used_bytes: 0,
      memory_total_bytes: 8589934592,
      modes: { post_copy: { ok: false, reason: 'the kernel lacks userfaultfd non-cooperative events' }, pre_copy: { ok: true, reason: null } },
      updated_at: t0,
    }),
  ];
  // Newest first, as the conductor lists them by default.
  conductor.add({
    uuid: RUNNING_MIGRATION,
    mode: 'pre-copy',
    container_name: 'counter',
    container_id: conductor.containers[0].id,
    source_host: 'compute2',
    dest_host: 'compute1',
    status: 'running',
    phase: 'checkpoint',
    progress: 40,
    user_id: 'u-admin',
    project_id: 'p-demo',
    request_id: 'req-66666666-7777-4888-9999-aaaaaaaaaaaa',
    created_at: t0,
    updated_at: '2026-12-01T09:30:02.000Z',
    memory_total_bytes: 67108864,
    memory_processed_bytes: 33554432,
    memory_remaining_bytes: 33554432,
  });
  conductor.add({
    uuid: DONE_MIGRATION,
    container_name: 'counter',
    container_id: conductor.containers[0].id,
    status: 'completed',
    phase: null,
    progress: 100,
    connections_preserved: true,
    user_id: 'u-admin',
    project_id: 'p-demo',
    request_id: 'req-11111111-2222-4333-8444-555555555555',
    created_at: '2026-12-01T09:00:00.000Z',
    updated_at: '2026-12-01T09:00:04.000Z',
    freeze_ms: 412,
    checkpoint_ms: 180,
    transfer_ms: 150,
    restore_ms: 82,
    total_ms: 3900,
    memory_bytes: 4194304,
    memory_total_bytes: 4194304,
    memory_processed_bytes: 4194304,
    memory_remaining_bytes: 0,
    rootfs_bytes: 8192,
    volume_bytes: 0,
    image_bytes: 0,
    transferred_bytes: 4210688,
  });
  const containers = [
    {
      container_id: conductor.containers[0].id,
      container_name: 'counter',
      container_status: 'running',
      status: 'completed' as const,
      migration_uuid: DONE_MIGRATION,
      dest_host: 'compute2',
      reason: null,
      updated_at: t0,
    },
    {
      container_id: conductor.containers[1].id,
      container_name: 'redis',
      container_status: 'exited',
      status: 'not-moved' as const,
      migration_uuid: null,
      dest_host: null,
      reason: 'not running',
      updated_at: t0,
    },
  ];
  const e: Evacuation = {
    uuid: EVACUATION,
    host: 'compute1',
    target_host: null,
    max_parallel: 2,
    post_copy: false,
    status: 'completed',
    host_disabled: true,
    error: null,
    request_id: 'req-bbbbbbbb-cccc-4ddd-8eee-ffffffffffff',
    user_id: 'u-admin',
    project_id: 'p-admin',
    created_at: '2026-12-01T08:00:00.000Z',
    updated_at: '2026-12-01T08:00:09.000Z',
    containers,
    counts: countByStatus(containers),
  };
  conductor.evacuations.set(e.uuid, e);
}

// ---- the reference, read from the markdown ----

interface SampleLine {
  file: string;
  section: string;
  version: string;
  who: 'admin' | 'member' | 'reader' | 'anonymous';
  method: string;
  url: string;
  request?: string;
  status: number;
  response?: string;
}

interface Section {
  file: string;
  method: string;
  /** As written, with {placeholders}. */
  path: string;
  text: string;
  samples: SampleLine[];
}

const HEADING_RE = /^### (GET|POST|PUT|DELETE) (\/\S*)\s*$/;
const SAMPLE_RE =
  /^Sample \(microversion (\S+?)(?:, as (admin|member|reader|anonymous))?\): `(GET|POST|PUT|DELETE) (\S+)`(?: with \[request\]\((samples\/[^)]+)\))? → (\d{3})(?:, \[response\]\((samples\/[^)]+)\))?\s*$/;

function readReference(): Section[] {
  const sections: Section[] = [];
  for (const file of fs
    .readdirSync(DOC_DIR)
    .filter((f) => f.endsWith('.md'))
    .sort()) {
    let current: Section | undefined;
    for (const line of fs.readFileSync(path.join(DOC_DIR, file), 'utf8').split('\n')) {
      const h = HEADING_RE.exec(line);
      if (h) {
        current = { file, method: h[1], path: h[2], text: '', samples: [] };
        sections.push(current);
        continue;
      }
      if (/^#{1,3} /.test(line)) current = undefined;
      if (!current) {
        if (line.startsWith('Sample (')) throw new Error(`${file}: a sample line outside a method's section: ${line}`);
        continue;
      }
      current.text += `${line}\n`;
      if (!line.startsWith('Sample (')) continue;
      const s = SAMPLE_RE.exec(line);
      if (!s) throw new Error(`${file}: a sample line that does not read as the test expects: ${line}`);
      current.samples.push({
        file,
        section: `${current.method} ${current.path}`,
        version: s[1],
        who: (s[2] as SampleLine['who'] | undefined) ?? 'admin',
        method: s[3],
        url: s[4],
        request: s[5],
        status: Number(s[6]),
        response: s[7],
      });
    }
  }
  return sections;
}

/** A path template as a comparable key: every {name} or :name becomes {}. */
function routeKey(method: string, p: string): string {
  const normal = p.replace(/\{[^}]+\}|:[A-Za-z_]+/g, '{}').replace(/\/+$/, '');
  return `${method} ${normal || '/'}`;
}

function templateRegExp(p: string): RegExp {
  const parts = p.split(/\{[^}]+\}/).map((x) => x.replace(/[.*+?^$()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[^/?]+')}/?(\\?.*)?$`);
}

interface RouteLayer {
  route?: { path: string; methods: Record<string, boolean> };
}

/**
 * The routes a router serves, as "METHOD /path" keys. The catch-all `all` handlers that only
 * answer 405 are not methods: a router's `all` marks its route `_all`, an app's `all` gives
 * the route every method Node knows.
 */
function servedRoutes(router: { stack: RouteLayer[] }, prefix: string): string[] {
  const out: string[] = [];
  for (const layer of router.stack) {
    if (!layer.route) continue;
    const methods = layer.route.methods;
    if (methods._all || METHODS.every((m) => methods[m.toLowerCase()])) continue;
    for (const [m, on] of Object.entries(methods)) {
      if (on && m !== '_all') out.push(routeKey(m.toUpperCase(), prefix + layer.route.path));
    }
  }
  return out;
}

function allServedRoutes(): string[] {
  const conf = defaultConfig();
  const app = createApp({ conf, identity: new FakeIdentity(), policy: Policy.fromRules({}), conductor: new FakeConductor(), logger: silentLogger });
  const v1 = v1Router({ conductor: new FakeConductor(), policy: Policy.fromRules({}), maxBodyBytes: 1024 }) as Router & { stack: RouteLayer[] };
  const top = (app as unknown as { router: { stack: RouteLayer[] } }).router;
  return [...new Set([...servedRoutes(top, ''), ...servedRoutes(v1, '/v1')])].sort();
}

// ---- comparing an answer with its sample ----

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const TIME_RE = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/g;
const SEMVER_RE = /^v?\d+\.\d+\.\d+(?:[-+]\S*)?$/;
/** Values that describe the running process, not the API: only their type is compared. */
const TYPE_ONLY_KEYS = new Set(['pid', 'uptime_s', 'node_version', 'platform']);

function maskString(s: string): string {
  if (SEMVER_RE.test(s)) return '<semver>';
  return s.replace(UUID_RE, '<uuid>').replace(TIME_RE, '<time>');
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Every difference between an actual answer and its sample, one line each ("" path: the top). */
export function differences(actual: unknown, sample: unknown, at = '$', key = ''): string[] {
  if (kind(actual) !== kind(sample))
    return [`${at}: the API gives ${kind(actual)} (${JSON.stringify(actual)}), the sample ${kind(sample)} (${JSON.stringify(sample)})`];
  if (TYPE_ONLY_KEYS.has(key)) return [];
  if (Array.isArray(actual) && Array.isArray(sample)) {
    if (actual.length !== sample.length) return [`${at}: the API gives ${actual.length} items, the sample ${sample.length}`];
    return actual.flatMap((v, i) => differences(v, sample[i], `${at}[${i}]`, key));
  }
  if (kind(actual) === 'object') {
    const a = actual as Record<string, unknown>;
    const s = sample as Record<string, unknown>;
    const out: string[] = [];
    for (const k of Object.keys(a)) if (!Object.hasOwn(s, k)) out.push(`${at}.${k}: in the API's answer, not in the sample`);
    for (const k of Object.keys(s)) if (!Object.hasOwn(a, k)) out.push(`${at}.${k}: in the sample, not in the API's answer`);
    for (const k of Object.keys(a)) if (Object.hasOwn(s, k)) out.push(...differences(a[k], s[k], `${at}.${k}`, k));
    return out;
  }
  const same = typeof actual === 'string' ? maskString(actual) === maskString(sample as string) : actual === sample;
  return same ? [] : [`${at}: the API gives ${JSON.stringify(actual)}, the sample ${JSON.stringify(sample)}`];
}

// ---- the tests ----

const sections = readReference();
const samples = sections.flatMap((s) => s.samples);

let server: ApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function freshApi(): Promise<string> {
  const conf = defaultConfig();
  conf.api.public_endpoint = `${PUBLIC_ENDPOINT}/v1`;
  conf.api.max_limit = 1000;
  const conductor = new FakeConductor();
  seed(conductor);
  server = await serve(
    createApp({ conf, identity: new FakeIdentity(), policy: Policy.fromRules({}), conductor, logger: silentLogger, healthcheck: () => true }),
  );
  return server.url;
}

const TOKENS = { admin: ADMIN_TOKEN, member: DEMO_TOKEN, reader: READER_TOKEN, anonymous: undefined };

describe('the api-ref samples are what the API answers', () => {
  it('the reference has sample lines', () => {
    expect(samples.length).toBeGreaterThan(20);
  });

  it.each(samples.map((s) => [`${s.method} ${s.url} at ${s.version} (${s.response ?? 'no body'})`, s] as const))('%s', async (_name, s) => {
    const base = await freshApi();
    const raw = s.request === undefined ? undefined : fs.readFileSync(path.join(DOC_DIR, s.request), 'utf8');
    if (raw !== undefined) JSON.parse(raw);
    const r = await call(base, s.method, s.url, {
      token: TOKENS[s.who],
      apiVersion: s.version,
      ...(raw !== undefined ? { raw, headers: { 'content-type': 'application/json' } } : {}),
    });
    const context = `${s.file}: ${s.method} ${s.url} -> ${r.status} ${r.text.slice(0, 400)}`;
    expect([context, r.status]).toEqual([context, s.status]);
    if (s.url.startsWith('/v1/') && s.version !== 'latest' && r.status !== 406 && r.status !== 400 && r.status !== 401) {
      expect(r.headers.get('openstack-api-version')).toBe(`container-migration ${s.version}`);
    }
    if (s.response === undefined) {
      expect([context, r.text]).toEqual([context, '']);
      return;
    }
    const expected = fs.readFileSync(path.join(DOC_DIR, s.response), 'utf8');
    if (s.response.endsWith('.txt')) {
      expect([context, r.text]).toEqual([context, expected.replace(/\n$/, '')]);
      return;
    }
    expect([context, differences(r.json, JSON.parse(expected))]).toEqual([context, []]);
  });
});

describe('the api-ref covers the API, and only the API', () => {
  const documented = sections.map((s) => routeKey(s.method, s.path));

  it('every route the app serves has a section', () => {
    const missing = allServedRoutes().filter((r) => !documented.includes(r));
    expect(missing).toEqual([]);
  });

  it('every section is a route the app serves, documented once', () => {
    const served = allServedRoutes();
    expect(documented.filter((d) => !served.includes(d))).toEqual([]);
    expect(documented.filter((d, i) => documented.indexOf(d) !== i)).toEqual([]);
  });

  it('every section has samples, each sent to its own method and path', () => {
    for (const s of sections) {
      const where = `${s.file}: ${s.method} ${s.path}`;
      expect([where, s.samples.length > 0]).toEqual([where, true]);
      for (const line of s.samples) {
        expect([where, line.method, templateRegExp(s.path).test(line.url)]).toEqual([where, s.method, true]);
      }
    }
  });

  it('each section names exactly the policy rules the defaults give its method and path, with their default check', () => {
    for (const s of sections) {
      const where = `${s.file}: ${s.method} ${s.path}`;
      const rules = DEFAULT_POLICIES.filter((p) =>
        p.operations.some((o) => o.method === s.method && routeKey(o.method, o.path) === routeKey(s.method, s.path)),
      );
      const named = [...new Set([...s.text.matchAll(/`(ferry:[a-z_:]+)`/g)].map((m) => m[1]))].sort();
      expect([where, named]).toEqual([where, rules.map((r) => r.name).sort()]);
      for (const r of rules) expect([where, s.text.includes(`\`${r.name}\` (default \`${r.check_str}\``)]).toEqual([where, true]);
    }
  });

  it("each /v1 section's first microversion is the first one that serves it (an older request gets 404)", async () => {
    const known = MICROVERSIONS.map((m) => m.version);
    for (const s of sections.filter((x) => x.path.startsWith('/v1/'))) {
      const where = `${s.file}: ${s.method} ${s.path}`;
      const since = /^Since microversion (\d+\.\d+)\.?/m.exec(s.text)?.[1];
      expect([where, since !== undefined && known.includes(since)]).toEqual([where, true]);
      const i = known.indexOf(since as string);
      const admin = s.samples.find((x) => x.who === 'admin' && x.status < 300) ?? s.samples[0];
      const raw = admin.request === undefined ? undefined : fs.readFileSync(path.join(DOC_DIR, admin.request), 'utf8');
      const at = async (v: string) => {
        const base = await freshApi();
        try {
          return (
            await call(base, s.method, admin.url, {
              token: ADMIN_TOKEN,
              apiVersion: v,
              ...(raw !== undefined ? { raw, headers: { 'content-type': 'application/json' } } : {}),
            })
          ).status;
        } finally {
          await server?.close();
          server = undefined;
        }
      };
      expect([where, since, (await at(since as string)) !== 404]).toEqual([where, since, true]);
      if (i > 0) expect([where, known[i - 1], await at(known[i - 1])]).toEqual([where, known[i - 1], 404]);
    }
  });

  it('every sample file is named by a sample line, and every named file exists', () => {
    const named = new Set(samples.flatMap((s) => [s.request, s.response]).filter((f): f is string => f !== undefined));
    const files = fs.readdirSync(SAMPLES_DIR).map((f) => `samples/${f}`);
    expect(files.filter((f) => !named.has(f))).toEqual([]);
    expect([...named].filter((f) => !files.includes(f))).toEqual([]);
  });
});

describe('differences (the comparison the samples rely on)', () => {
  it('finds a missing key, an extra key, a changed type and a changed fixed value, and masks what varies', () => {
    const sample = { migration: { uuid: RUNNING_MIGRATION, status: 'running', progress: 40, links: [{ href: `x?marker=${DONE_MIGRATION}` }] } };
    expect(differences({ migration: { uuid: EVACUATION, status: 'running', progress: 40, links: [{ href: `x?marker=${EVACUATION}` }] } }, sample)).toEqual([]);
    expect(differences({ migration: { uuid: EVACUATION, status: 'running', progress: 40 } }, sample)).toEqual([
      "$.migration.links: in the sample, not in the API's answer",
    ]);
    expect(differences({ migration: { ...sample.migration, extra: 1 } }, sample)).toEqual(["$.migration.extra: in the API's answer, not in the sample"]);
    expect(differences({ migration: { ...sample.migration, progress: '40' } }, sample)).toHaveLength(1);
    expect(differences({ migration: { ...sample.migration, status: 'completed' } }, sample)).toHaveLength(1);
    expect(differences({ v: '1.3' }, { v: '1.4' })).toHaveLength(1);
  });
});
