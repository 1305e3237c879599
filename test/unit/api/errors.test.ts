import { describe, expect, it } from '@jest/globals';
import { HttpError, INTERNAL_ERROR_MESSAGE, STATUS_BY_KIND, toErrorResponse } from '../../../src/api/errors.js';
import {
  allErrorClasses,
  ContainerNotFound,
  FerryError,
  HostDown,
  IdentityUnavailable,
  InvalidInput,
  MessagingTimeout,
  NotAuthenticated,
  PolicyNotAuthorized,
  RemoteError,
  RestoreFailed,
} from '../../../src/common/errors.js';

describe('error kind -> HTTP status', () => {
  it.each([
    [new InvalidInput('bad'), 400, 'Bad Request'],
    [new NotAuthenticated('who?'), 401, 'Unauthorized'],
    [new PolicyNotAuthorized('no'), 403, 'Forbidden'],
    [new ContainerNotFound('Container x could not be found.'), 404, 'Not Found'],
    [new HostDown('compute2 is down'), 409, 'Conflict'],
    [new IdentityUnavailable('keystone down'), 503, 'Service Unavailable'],
    [new MessagingTimeout('slow'), 504, 'Gateway Timeout'],
    [new RestoreFailed('criu said no'), 500, 'Internal Server Error'],
  ])('%s', (err, status, title) => {
    const r = toErrorResponse(err);
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(status);
    expect(r.body.error.title).toBe(title);
    expect(r.body.error.ferry_code).toBe((err as FerryError).code);
    if (status === 500) {
      expect(r.body.error.message).toBe(INTERNAL_ERROR_MESSAGE);
      expect(r.internal).toBe(true);
    } else {
      expect(r.body.error.message).toBe(err.message);
      expect(r.internal).toBe(false);
    }
  });

  it('every registered error class has a status', () => {
    for (const [name, cls] of allErrorClasses()) {
      expect([name, STATUS_BY_KIND[cls.kind]]).toEqual([name, expect.any(Number)]);
    }
  });

  it('a remote error never shows its message', () => {
    const r = toErrorResponse(new RemoteError('Traceback (most recent call last): File "/usr/lib/python3"'));
    expect(r.status).toBe(500);
    expect(JSON.stringify(r.body)).not.toMatch(/Traceback/);
  });

  it('unknown errors are 500 with the generic message and no code', () => {
    const r = toErrorResponse(new Error('ENOENT /etc/secret'));
    expect(r).toMatchObject({ status: 500, internal: true });
    expect(r.body).toEqual({ error: { code: 500, title: 'Internal Server Error', message: INTERNAL_ERROR_MESSAGE } });
    expect(toErrorResponse('a string').status).toBe(500);
    expect(toErrorResponse(null).status).toBe(500);
  });

  it('HttpError keeps its status and headers', () => {
    const r = toErrorResponse(new HttpError(405, 'nope', { Allow: 'GET' }));
    expect(r).toMatchObject({ status: 405, headers: { Allow: 'GET' } });
    expect(r.body.error).toEqual({ code: 405, title: 'Method Not Allowed', message: 'nope' });
  });

  it('body-parser errors', () => {
    const parse = Object.assign(new SyntaxError('Unexpected end of JSON input'), { status: 400, type: 'entity.parse.failed', expose: true });
    expect(toErrorResponse(parse).body.error.message).toBe('Malformed JSON in the request body: Unexpected end of JSON input');
    const big = Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large', limit: 1024, expose: true });
    expect(toErrorResponse(big).body.error).toMatchObject({ code: 413, message: 'The request body is larger than the 1024 bytes allowed' });
    const hidden = Object.assign(new Error('internal detail'), { status: 400, expose: false });
    expect(toErrorResponse(hidden).body.error.message).toBe('Bad Request');
    const server = Object.assign(new Error('boom'), { status: 502 });
    expect(toErrorResponse(server).status).toBe(500);
  });
});
