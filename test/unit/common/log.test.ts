/**
 * oslo.log's options applied to Ferry's pino logger (level, log_file/log_dir, use_stderr), and
 * the request ids on every line written while a request is handled: by an API route (through
 * the conductor client it calls) and by an RPC endpoint. Lines are read back from a real log
 * file, as an operator would.
 */
import { QueueLayout } from '../../../src/bus/queues.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createApp } from '../../../src/api/app.js';
import { serializeMsg, uuidHex } from '../../../src/bus/envelope.js';
import { RPCServer } from '../../../src/bus/rpc/server.js';
import type { Consumer, ConsumerSpec, Delivery, PublishRequest, Transport } from '../../../src/bus/transport.js';
import type { RequestContext } from '../../../src/common/context.js';
import { configureLogging, currentLogLevel, getLogger, levelFor, logFilePath, runWithRequestIds } from '../../../src/common/log.js';
import type { MigrationFilters } from '../../../src/conductor/interface.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { Policy } from '../../../src/identity/policy.js';
import { FakeConductor } from '../api/fake-conductor.js';
import { ADMIN_TOKEN, call, FakeIdentity, serve, silentLogger } from '../api/helpers.js';

const savedEnvLevel = process.env.FERRY_LOG_LEVEL;
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-log-'));
});

afterEach(() => {
  process.env.FERRY_LOG_LEVEL = savedEnvLevel;
});

afterAll(() => {
  // Back to stderr at the unit runs' level, so that no later test writes into the removed file.
  configureLogging({ debug: false, log_file: '', log_dir: '', use_stderr: false }, 'test');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Log to a fresh file at the config's level (FERRY_LOG_LEVEL unset, as on a real host). */
function logToFile(name: string, debug = false): string {
  delete process.env.FERRY_LOG_LEVEL;
  const file = path.join(dir, name);
  configureLogging({ debug, log_file: name, log_dir: dir, use_stderr: false }, 'test');
  return file;
}

function lines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('oslo.log options', () => {
  it('log_file is taken relative to log_dir; log_dir alone gives <service>.log; neither is stderr', () => {
    expect(logFilePath({ log_file: 'api.log', log_dir: '/var/log/ferry' }, 'ferry-api')).toBe('/var/log/ferry/api.log');
    expect(logFilePath({ log_file: '/srv/x.log', log_dir: '/var/log/ferry' }, 'ferry-api')).toBe('/srv/x.log');
    expect(logFilePath({ log_file: '', log_dir: '/var/log/ferry' }, 'ferry-conductor')).toBe('/var/log/ferry/ferry-conductor.log');
    expect(logFilePath({ log_file: 'rel.log', log_dir: '' }, 'ferry-api')).toBe(path.resolve('rel.log'));
    expect(logFilePath({ log_file: '', log_dir: '' }, 'ferry-api')).toBeNull();
  });

  it('debug selects the debug level, and FERRY_LOG_LEVEL wins over it', () => {
    delete process.env.FERRY_LOG_LEVEL;
    expect(levelFor({ debug: true })).toBe('debug');
    expect(levelFor({ debug: false })).toBe('info');
    process.env.FERRY_LOG_LEVEL = 'warn';
    expect(levelFor({ debug: true })).toBe('warn');
  });

  it('writes to the file at the configured level, also through loggers made before', () => {
    const early = getLogger('made.before');
    const file = logToFile('levels.log', false);
    early.debug('hidden at info');
    early.info('shown at info');
    expect(lines(file).map((l) => l.msg)).toEqual(['shown at info']);

    configureLogging({ debug: true, log_file: 'levels.log', log_dir: dir, use_stderr: false }, 'test');
    expect(currentLogLevel()).toBe('debug');
    early.debug('shown at debug');
    getLogger('made.after').debug('also shown');
    const got = lines(file);
    expect(got.map((l) => l.msg)).toEqual(['shown at info', 'shown at debug', 'also shown']);
    expect(got[2]).toMatchObject({ component: 'made.after', level: 20, pid: process.pid });
  });

  it('an unwritable log file is an error and the previous destination stays', () => {
    const file = logToFile('kept.log');
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, '');
    expect(() => configureLogging({ debug: false, log_file: 'x.log', log_dir: blocker, use_stderr: false }, 'test')).toThrow();
    getLogger('t').info('still here');
    expect(lines(file).map((l) => l.msg)).toContain('still here');
  });
});

describe('request ids on every line of a request', () => {
  it('a line inside runWithRequestIds carries the ids, one outside does not', async () => {
    const file = logToFile('ids.log');
    const log = getLogger('t');
    await runWithRequestIds({ request_id: 'req-a', global_request_id: 'req-g' }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      log.info('after an await');
    });
    log.info('outside');
    const [inside, outside] = lines(file);
    expect(inside).toMatchObject({ msg: 'after an await', request_id: 'req-a', global_request_id: 'req-g' });
    expect(outside.msg).toBe('outside');
    expect(outside).not.toHaveProperty('request_id');
  });

  it("a route handler's lines carry the response's request id and the caller's as global id", async () => {
    const file = logToFile('api.log');
    class LoggingConductor extends FakeConductor {
      override async listMigrations(ctx: RequestContext, filters: MigrationFilters) {
        await new Promise((r) => setTimeout(r, 5));
        getLogger('conductor.client').info('listing migrations');
        return super.listMigrations(ctx, filters);
      }
    }
    const conf = defaultConfig();
    const app = createApp({ conf, identity: new FakeIdentity(), policy: Policy.fromRules({}), conductor: new LoggingConductor(), logger: silentLogger });
    const server = await serve(app);
    try {
      const inbound = 'req-11111111-2222-4333-8444-555555555555';
      const r = await call(server.url, 'GET', '/v1/migrations', { token: ADMIN_TOKEN, headers: { 'x-openstack-request-id': inbound } });
      expect(r.status).toBe(200);
      const line = lines(file).find((l) => l.msg === 'listing migrations');
      expect(line).toMatchObject({ component: 'conductor.client', request_id: r.headers.get('x-openstack-request-id'), global_request_id: inbound });
    } finally {
      await server.close();
    }
  });

  it("an RPC endpoint's lines carry the request ids of the message's context", async () => {
    const file = logToFile('rpc.log');
    const handlers: ((d: Delivery) => void)[] = [];
    const published: PublishRequest[] = [];
    const bus = {
      exchange: 'ferry',
      queues: new QueueLayout(),
      consume(_spec: ConsumerSpec, h: (d: Delivery) => void): Promise<Consumer> {
        handlers.push(h);
        return Promise.resolve({ queue: 'q', cancel: () => Promise.resolve() });
      },
      publish(req: PublishRequest): Promise<void> {
        published.push(req);
        return Promise.resolve();
      },
    };
    const endpoint = {
      async work(ctx: RequestContext) {
        await new Promise((r) => setTimeout(r, 5));
        getLogger('conductor.manager').info({ seen: ctx.request_id }, 'working');
        return 'done';
      },
    };
    const server = new RPCServer(bus as unknown as Transport, { topic: 'topic', server: 'h' }, [endpoint]);
    await server.start();
    handlers[0]({
      body: serializeMsg({
        _unique_id: uuidHex(),
        method: 'work',
        args: {},
        _msg_id: 'm1',
        _reply_q: 'reply_q',
        _context_request_id: 'req-from-api',
        _context_global_request_id: 'req-global',
      }),
      properties: {} as Delivery['properties'],
      routingKey: 'topic',
      exchange: 'ferry',
      redelivered: false,
      ack: () => true,
      reject: () => undefined,
    });
    const deadline = Date.now() + 30_000;
    while (published.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await server.stop(1000);
    expect(published).toHaveLength(1);
    const line = lines(file).find((l) => l.msg === 'working');
    expect(line).toMatchObject({ seen: 'req-from-api', request_id: 'req-from-api', global_request_id: 'req-global' });
  });
});
