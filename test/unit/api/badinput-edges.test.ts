/**
 * Edges of bad input found by the bad-input suite, as pure logic and one real local HTTP
 * server: requests Node cannot parse get the JSON error body, a broken percent-encoding or a
 * body that does not decompress gets a message that says so, an RPC version that is no
 * version is UnsupportedVersion, the conductor refuses huge string arguments, and a broken
 * config section header is an error naming its line.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import net from 'node:net';
import { clientErrorResponse, toErrorResponse } from '../../../src/api/errors.js';
import { startApiServer, type ApiServer } from '../../../src/api/server.js';
import { RequestContext } from '../../../src/common/context.js';
import { selectEndpoint } from '../../../src/bus/rpc/server.js';
import { ConductorManager } from '../../../src/conductor/manager.js';
import type { ConductorService } from '../../../src/conductor/service.js';
import { applyIni, defaultConfig } from '../../../src/conf/index.js';

describe('requests Node cannot parse', () => {
  let server: ApiServer;
  beforeAll(async () => {
    server = await startApiServer(express(), { host: '127.0.0.1', port: 0 });
  });
  afterAll(() => server.close(100));

  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = net.connect(server.port, '127.0.0.1', () => s.write(text));
      s.on('data', (b: Buffer) => chunks.push(b));
      s.on('error', reject);
      s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });

  it('headers over the limit: 431 with the JSON error body and a request id', async () => {
    const res = await raw(`GET /v1/migrations?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(res).toMatch(/\r\nContent-Type: application\/json/);
    expect(res).toMatch(/\r\nX-OpenStack-Request-Id: req-[0-9a-f-]{36}\r\n/);
    expect(JSON.parse(res.split('\r\n\r\n')[1])).toEqual({
      error: { code: 431, title: 'Request Header Fields Too Large', message: expect.stringMatching(/too large/) },
    });
  });

  it('a request line that is not HTTP: 400 with the JSON error body', async () => {
    const res = await raw('HELLO THERE\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(res.split('\r\n\r\n')[1]).error).toMatchObject({ code: 400, message: expect.stringMatching(/^Malformed HTTP request/) });
  });

  it('the status for each parser error', () => {
    expect(clientErrorResponse('HPE_HEADER_OVERFLOW', 'req-1').status).toBe(431);
    expect(clientErrorResponse('ERR_HTTP_REQUEST_TIMEOUT', 'req-1').status).toBe(408);
    expect(clientErrorResponse('HPE_INVALID_METHOD', 'req-1').status).toBe(400);
    expect(clientErrorResponse(undefined, 'req-1').status).toBe(400);
  });
});

describe('client errors from the router and body parser', () => {
  it('a path segment with broken percent-encoding names the segment', () => {
    const e = Object.assign(new URIError("Failed to decode param '%E0%A4%A'"), { status: 400 });
    const out = toErrorResponse(e);
    expect(out.status).toBe(400);
    expect(out.body.error.message).toBe("Malformed percent-encoding in the URL path: '%E0%A4%A' (each % must start a %XX escape of UTF-8 bytes)");
  });

  it('a body that does not decompress says so', () => {
    const e = Object.assign(new Error('incorrect header check'), { status: 400, code: 'Z_DATA_ERROR' });
    expect(toErrorResponse(e).body.error.message).toMatch(/does not decompress as its Content-Encoding says \(gzip, deflate or br\): incorrect header check/);
  });
});

describe('the bus', () => {
  const endpoint = { target: { version: '1.1' }, list_hosts: () => [] };

  it('an RPC version that is no version is UnsupportedVersion, not a RangeError', () => {
    expect(() => selectEndpoint([endpoint], 'list_hosts', 'one.two', null)).toThrow(
      expect.objectContaining({ name: 'UnsupportedVersion', message: 'Endpoint does not support RPC version one.two. Attempted method: list_hosts' }),
    );
    expect(selectEndpoint([endpoint], 'list_hosts', '1.0', null).endpoint).toBe(endpoint);
  });

  it('the conductor refuses string arguments over 255 characters before looking anything up', () => {
    const asked: string[] = [];
    const svc = { getMigration: (id: string) => asked.push(id) } as unknown as ConductorService;
    // The RPC server calls endpoint methods by name, as here.
    const m = new ConductorManager(svc) as unknown as Record<string, (ctx: RequestContext, args: Record<string, unknown>) => unknown>;
    expect(() => m.get_migration(RequestContext.admin(), { migration_id: 'x'.repeat(256) })).toThrow('argument "migration_id" must be at most 255 characters');
    m.get_migration(RequestContext.admin(), { migration_id: 'x'.repeat(255) });
    expect(asked).toEqual(['x'.repeat(255)]);
  });
});

describe('config files', () => {
  it('a section header without its closing bracket is an error naming the line', () => {
    expect(() => applyIni(defaultConfig(), '[database]\nconnection = sqlite:////tmp/x\n[conductor\nservice_down_time = 5\n', 'f.conf')).toThrow(
      'f.conf line 3: "[conductor" is not a section header (write it as [name], at the start of the line)',
    );
    // The ini reader would drop a section whose header carries a comment or is indented: refused too, not ignored.
    expect(() => applyIni(defaultConfig(), '[conductor] # the conductor\nservice_down_time = 5\n', 'f.conf')).toThrow(
      /f\.conf line 1: .* is not a section header/,
    );
    expect(() => applyIni(defaultConfig(), '  [conductor]\nservice_down_time = 5\n', 'f.conf')).toThrow(/f\.conf line 1: .* is not a section header/);
    expect(applyIni(defaultConfig(), '[conductor]  \r\nservice_down_time = 5\n', 'f.conf').conductor.service_down_time).toBe(5);
  });
});
