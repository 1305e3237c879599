/**
 * Bad input over REST, against the dev cloud's real ferry-api, conductor and agents: each
 * request gets its exact 4xx with the contract's JSON error body, and nothing changes on any
 * host (no container touched, no migration recorded) unless the case says so.
 */
import { describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { RequestContext } from '../../../../src/common/context.js';
import { Transport } from '../../../../src/bus/transport.js';
import { ConductorRPCAPI } from '../../../../src/conductor/rpcapi.js';
import { isFinal, type Migration } from '../../../../src/objects/migration.js';
import { sleep } from '../../../../src/common/sleep.js';
import { cloud } from '../../../helpers/cloud.js';
import { admin, api, apiBase, ferry, startMigration, token, waitKnown, type ApiResponse } from '../../../helpers/ferry.js';
import { expectRestError, unchangedBy, type Tally } from './world.js';

export interface RestFixtures {
  /** Runs on compute1. */
  running: string;
  /** Exited on compute1. */
  exited: string;
  /** Runs on compute1 and on compute2 under the same name. */
  twin: string;
  /** Runs on compute1; migrated by the cases that need a real migration. */
  mover: string;
}

export const GHOST_HOST = 'ghost-host';
const UNKNOWN_UUID = '5b0f4f7e-9a38-4f43-a3a4-000000000000';

type Who = 'admin' | 'demo' | null;

/** A request as `who` (null: no token), body sent as given. */
async function send(
  who: Who,
  method: string,
  path: string,
  opts: { body?: unknown; rawBody?: string; headers?: Record<string, string>; token?: string } = {},
): Promise<ApiResponse<unknown>> {
  const tok = opts.token ?? (who ? await token(who) : null);
  return api(method, path, { token: tok, body: opts.body, rawBody: opts.rawBody, headers: opts.headers });
}

/** A raw HTTP exchange on a socket (for requests fetch cannot send): the status, headers and body. */
function rawHttp(request: string | Buffer): Promise<{ status: number; headers: Headers; body: unknown }> {
  const u = new URL(apiBase());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(Number(u.port), u.hostname, () => s.end(request));
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = text.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? 0);
      const headers = new Headers();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
      }
      const bodyText = rest.join('\r\n\r\n');
      let body: unknown = bodyText;
      try {
        body = JSON.parse(bodyText);
      } catch {
        /* not JSON: the assertion shows it */
      }
      resolve({ status, headers, body });
    });
  });
}

/** Wait for a final status; a 503 while another suite restarts the conductor is waited out. */
async function finished(uuid: string): Promise<Migration> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const r = await admin<{ migration: Migration }>('GET', `/v1/migrations/${uuid}`);
    if (r.status === 200 && isFinal(r.body.migration.status)) return r.body.migration;
    if (r.status !== 200 && r.status !== 503) throw new Error(`GET migration ${uuid}: HTTP ${r.status}`);
    if (Date.now() > deadline) throw new Error(`migration ${uuid} did not end in time`);
    await sleep(300);
  }
}

async function migrationsOf(container: string): Promise<Migration[]> {
  return (await admin<{ migrations: Migration[] }>('GET', `/v1/migrations?container=${container}`)).body.migrations;
}

/** Report a host once, then let its heartbeats stop (as a crashed ferry-compute): the conductor sees it go down. */
export async function reportGhostHost(): Promise<void> {
  const transport = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry' });
  await transport.connect();
  try {
    await new ConductorRPCAPI(transport).reportState(RequestContext.admin(), GHOST_HOST, {
      docker_version: '20.10.24',
      api_version: '1.41',
      criu_version: '4.2.1',
      criu_ok: true,
      architecture: 'x86_64',
      migration_address: '127.0.0.1:1',
      containers: [],
    });
  } finally {
    await transport.close();
  }
}

export function restCases(fx: () => RestFixtures, tally: Tally): void {
  /** One case: declared, counted, and checked for "nothing changed". */
  const bad = (title: string, run: () => Promise<void>) => {
    it(
      title,
      tally.counting('REST', () => unchangedBy(run)),
    );
  };
  const migrate = (who: Who, container: string, body?: unknown) => send(who, 'POST', `/v1/containers/${encodeURIComponent(container)}/migrate`, { body });

  describe('REST: identity and policy', () => {
    bad('no token -> 401 with WWW-Authenticate pointing at Keystone', async () => {
      const r = await migrate(null, fx().running, { host: 'compute2' });
      expectRestError(r, 401, /send a Keystone token in the X-Auth-Token header/);
      expect(r.headers.get('www-authenticate')).toBe(`Keystone uri="${cloud().keystone.auth_url}"`);
    });
    bad('an empty X-Auth-Token -> 401', async () => {
      expectRestError(await send(null, 'GET', '/v1/hosts', { headers: { 'x-auth-token': '   ' } }), 401, /X-Auth-Token/);
    });
    bad('a token Keystone does not know -> 401', async () => {
      expectRestError(
        await send(null, 'POST', `/v1/containers/${fx().running}/migrate`, { token: 'gAAAAABnot-a-token', body: {} }),
        401,
        /invalid or has expired/,
      );
    });
    bad('an 8 KB garbage token -> 401, not a Keystone failure', async () => {
      expectRestError(await send(null, 'GET', '/v1/migrations', { token: 'x'.repeat(8192) }), 401, /invalid or has expired/);
    });
    bad('caller-supplied X-Roles: admin does not make the demo user an admin -> 403', async () => {
      const r = await send('demo', 'POST', `/v1/containers/${fx().running}/migrate`, {
        body: {},
        headers: { 'x-roles': 'admin', 'x-is-admin-project': 'True' },
      });
      expectRestError(r, 403, /ferry:migration:create/);
    });
    bad('demo user may not migrate -> 403, even with a malformed body (policy comes first)', async () => {
      const r = await send('demo', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: '{"host": ' });
      expectRestError(r, 403, /ferry:migration:create/);
    });
    bad('demo user may not list hosts -> 403', async () => {
      expectRestError(await send('demo', 'GET', '/v1/hosts'), 403, /ferry:host:get_all/);
    });
    bad('demo user may not abort a migration -> 403 (the policy is checked before the id is looked up)', async () => {
      expectRestError(await send('demo', 'DELETE', `/v1/migrations/${UNKNOWN_UUID}`), 403, /ferry:migration:delete/);
    });
  });

  describe('REST: what to migrate', () => {
    bad('unknown container -> 404', async () => {
      expectRestError(await migrate('admin', 'no-such-container-here', {}), 404, /"no-such-container-here" was not found on any compute host/);
    });
    bad('a container reference Docker could never have ("-x", 300 characters) -> 404', async () => {
      expectRestError(await migrate('admin', '-leading-dash', {}), 404, /Container -leading-dash could not be found/);
      expectRestError(await migrate('admin', 'a'.repeat(300), {}), 404, /could not be found/);
    });
    bad('a container that exited -> 409 saying it is not running', async () => {
      expectRestError(await migrate('admin', fx().exited, { host: 'compute2' }), 409, new RegExp(`"${fx().exited}" on compute1 is exited, not running`));
    });
    bad('a name that runs on two hosts -> 400 asking for the full ID', async () => {
      expectRestError(await migrate('admin', fx().twin, {}), 400, /matches 2 running containers .* use the full ID/);
    });
    bad('unknown target host -> 404', async () => {
      expectRestError(await migrate('admin', fx().running, { host: 'compute9' }), 404, /compute9/);
    });
    bad('target = source -> 400 saying what to change', async () => {
      expectRestError(await migrate('admin', fx().running, { host: 'compute1' }), 400, /already runs on "compute1"/);
    });
    bad('a host of blanks -> 400', async () => {
      expectRestError(await migrate('admin', fx().running, { host: '   ' }), 400, /"host" must be a compute host name/);
    });
    bad('a host with a control character -> 400', async () => {
      expectRestError(await migrate('admin', fx().running, { host: 'compute\n2' }), 400, /Invalid field "host": must not contain control characters/);
    });
    bad('a host of 256 characters -> 400', async () => {
      expectRestError(await migrate('admin', fx().running, { host: 'h'.repeat(256) }), 400, /Invalid field "host": must be at most 255 characters/);
    });
    bad('an empty host -> 400', async () => {
      expectRestError(await migrate('admin', fx().running, { host: '' }), 400, /Invalid field "host": must not be empty/);
    });
  });

  describe('REST: request bodies', () => {
    bad('malformed JSON -> 400', async () => {
      expectRestError(
        await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: '{"host": ' }),
        400,
        /Malformed JSON in the request body/,
      );
    });
    for (const [what, raw] of [
      ['an array', '["compute2"]'],
      ['a string', '"compute2"'],
      ['null', 'null'],
    ] as const) {
      bad(`a body that is ${what}, not an object -> 400`, async () => {
        const r = await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: raw });
        expectRestError(r, 400, /The request body must be a JSON object, e\.g\. \{"host": "compute2"\}/);
      });
    }
    bad('a host that is a number -> 400', async () => {
      expectRestError(await migrate('admin', fx().running, { host: 5 }), 400, /Invalid field "host": must be a string/);
    });
    bad('an unknown field ("hots") -> 400 naming it and what is allowed', async () => {
      expectRestError(
        await migrate('admin', fx().running, { hots: 'compute2' }),
        400,
        /Unknown field in the request body: "hots" \(allowed: host, post_copy\)/,
      );
    });
    bad('a "__proto__" field -> 400, not merged into anything', async () => {
      const r = await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: '{"__proto__": {"host": "compute2"}}' });
      expectRestError(r, 400, /Unknown field in the request body: "__proto__"/);
    });
    bad('a body over the size limit -> 413', async () => {
      const r = await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, {
        rawBody: JSON.stringify({ host: 'compute2', pad: 'x'.repeat(2 * 1024 * 1024) }),
      });
      expectRestError(r, 413, /larger than the \d+ bytes allowed/);
    });
    bad('a body that is not JSON (text/plain) -> 415', async () => {
      const r = await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: 'host=compute2', headers: { 'content-type': 'text/plain' } });
      expectRestError(r, 415, /must be JSON \(Content-Type: application\/json\), not text\/plain/);
    });
    bad('Content-Encoding: gzip over bytes that are not gzip -> 400 saying so', async () => {
      const r = await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: '{}', headers: { 'content-encoding': 'gzip' } });
      expectRestError(r, 400, /gzip/i);
    });
    bad('an unsupported Content-Encoding -> 415', async () => {
      const r = await send('admin', 'POST', `/v1/containers/${fx().running}/migrate`, { rawBody: '{}', headers: { 'content-encoding': 'compress' } });
      expectRestError(r, 415, /Unsupported request body encoding.*compress/);
    });
  });

  describe('REST: migrations by id', () => {
    bad('unknown migration id: GET -> 404', async () => {
      expectRestError(await send('admin', 'GET', `/v1/migrations/${UNKNOWN_UUID}`), 404, /could not be found/);
    });
    bad('unknown migration id: DELETE -> 404', async () => {
      expectRestError(await send('admin', 'DELETE', `/v1/migrations/${UNKNOWN_UUID.toUpperCase()}`), 404, /could not be found/);
    });
    bad('a migration id that is not a UUID ("../../etc") -> 404', async () => {
      expectRestError(await send('admin', 'GET', '/v1/migrations/..%2F..%2Fetc'), 404, /Migration \.\.\/\.\.\/etc could not be found/);
    });
    bad('a path with broken percent-encoding -> 400 saying where', async () => {
      expectRestError(await send('admin', 'GET', '/v1/migrations/%E0%A4%A'), 400, /percent-encoding.*%E0%A4%A/);
    });
  });

  describe('REST: lists, filters and paging', () => {
    const list = (q: string) => send('admin', 'GET', `/v1/migrations?${q}`);
    bad('an unknown status filter -> 400 listing the statuses', async () => {
      expectRestError(await list('status=exploded'), 400, /Invalid query parameter "status": must be one of accepted, /);
    });
    bad('a filter given twice -> 400', async () => {
      expectRestError(await list('status=completed&status=failed'), 400, /"status": must be given only once/);
    });
    bad('an unknown query parameter -> 400 naming the allowed ones', async () => {
      expectRestError(await list('colour=blue'), 400, /Unknown query parameter: "colour" \(allowed: container, status, /);
    });
    bad('a query parameter on a list that takes none (/v1/hosts?all=1) -> 400', async () => {
      expectRestError(await send('admin', 'GET', '/v1/hosts?all=1'), 400, /Unknown query parameter: "all" \(allowed: none\)/);
    });
    bad('limit=0 -> 400', async () => {
      expectRestError(await list('limit=0'), 400, /"limit": must be a positive integer/);
    });
    bad('limit=-5 -> 400', async () => {
      expectRestError(await send('admin', 'GET', '/v1/containers?limit=-5'), 400, /"limit": must be a positive integer/);
    });
    bad('a marker that is not a migration -> 400', async () => {
      expectRestError(await list(`marker=${UNKNOWN_UUID}`), 400, /marker "5b0f4f7e-.*" could not be found/);
    });
    bad('a marker that is not a UUID -> 400', async () => {
      expectRestError(await list('marker=yesterday'), 400, /"marker": must be the uuid of a migration/);
    });
    bad('a changes-since that is no date -> 400 with an example', async () => {
      expectRestError(await list('changes-since=2026-13-45T99:00:00Z'), 400, /"changes-since": must be an ISO 8601 date-time, e\.g\. /);
    });
    bad('changes-before earlier than changes-since -> 400', async () => {
      expectRestError(
        await list('changes-since=2026-11-30T06:00:00Z&changes-before=2026-11-29T06:00:00Z'),
        400,
        /must be earlier than or equal to changes-before/,
      );
    });
    bad('an unknown sort_key -> 400 listing the keys', async () => {
      expectRestError(await list('sort_key=password'), 400, /"sort_key": must be one of created_at, /);
    });
    bad('a filter with a control character -> 400', async () => {
      expectRestError(await list('container=a%00b'), 400, /"container": must not contain control characters/);
    });
  });

  describe('REST: routes, methods and HTTP itself', () => {
    bad('an unknown route -> 404', async () => {
      expectRestError(await send('admin', 'GET', '/v1/nothing-here'), 404, /The resource could not be found: GET \/v1\/nothing-here/);
    });
    bad('PUT on a migration -> 405 with Allow', async () => {
      const r = await send('admin', 'PUT', `/v1/migrations/${UNKNOWN_UUID}`, { body: {} });
      expectRestError(r, 405, /method PUT is not allowed .* allowed: GET, DELETE/);
      expect(r.headers.get('allow')).toBe('GET, DELETE, HEAD, OPTIONS');
    });
    bad('GET on migrate -> 405 with Allow', async () => {
      const r = await send('admin', 'GET', `/v1/containers/${fx().running}/migrate`);
      expectRestError(r, 405, /method GET is not allowed/);
      expect(r.headers.get('allow')).toBe('POST, OPTIONS');
    });
    bad('request headers over the limit (a 20 KB URL) -> 431 in the JSON error shape', async () => {
      const r = await rawHttp(`GET /v1/migrations?container=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expectRestError(r as ApiResponse<unknown>, 431, /headers.*too large/i);
    });
    bad('a request line that is not HTTP -> 400 in the JSON error shape', async () => {
      const r = await rawHttp('HELLO THERE\r\n\r\n');
      expectRestError(r as ApiResponse<unknown>, 400, /malformed HTTP request/i);
    });
  });

  describe('REST: state conflicts', () => {
    bad('a target host whose heartbeats stopped is down -> 409', async () => {
      // reportGhostHost() ran before the suite; the conductor counts a host down after [conductor] service_down_time.
      const hosts = async () => (await admin<{ hosts: { name: string; state: string }[] }>('GET', '/v1/hosts')).body.hosts;
      const deadline = Date.now() + 60_000;
      while ((await hosts()).find((h) => h.name === GHOST_HOST)?.state !== 'down' && Date.now() < deadline) await sleep(500);
      expect((await hosts()).find((h) => h.name === GHOST_HOST)?.state).toBe('down');
      expectRestError(await migrate('admin', fx().running, { host: GHOST_HOST }), 409, /ghost-host.*down/);
    });

    bad('none of the cases above recorded a migration of the fixtures', async () => {
      for (const c of [fx().running, fx().exited, fx().twin]) expect(await migrationsOf(c)).toEqual([]);
    });

    // These two need a real migration: a record is expected, and only that one.
    it(
      'abort of a finished migration -> 409, and the record stays as it was',
      tally.counting('REST', async () => {
        const m = await finished((await startMigration(fx().mover, 'compute2')).uuid);
        expect(m.status).toBe('completed');
        await unchangedBy(async () => {
          expectRestError(await send('admin', 'DELETE', `/v1/migrations/${m.uuid}`), 409, /already completed; there is nothing to abort/);
        });
        const again = await ferry().getMigration(m.uuid);
        expect(again).toMatchObject({ status: 'completed', abort_requested: false });
      }),
    );

    it(
      'migrating a container that is already being migrated -> 409',
      tally.counting('REST', async () => {
        await waitKnown(fx().mover, 'compute2');
        const m = await startMigration(fx().mover, 'compute1');
        expectRestError(await migrate('admin', fx().mover, { host: 'compute1' }), 409, /already being migrated/);
        expect((await finished(m.uuid)).status).toBe('completed');
        expect((await migrationsOf(fx().mover)).map((x) => x.uuid).sort()).toHaveLength(2);
      }),
    );
  });
}
