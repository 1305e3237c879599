/**
 * Bad input over the bus: malformed oslo.messaging envelopes and messages, and calls with bad
 * arguments, published raw on the dev cloud's RabbitMQ to the real ferry-conductor and
 * ferry-compute agents. A call gets a clear failure reply (InvalidInput, NoSuchMethod,
 * UnsupportedVersion, or the domain's NotFound / PreCheck refusal); a message that cannot be
 * read is rejected (the service logs why). Either way the service stays up (a good call right
 * after works) and nothing changes on any host.
 */
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RequestContext } from '../../../../src/common/context.js';
import { packContext } from '../../../../src/bus/context.js';
import { deserializeMsg, pyJson, uuidHex, type JsonObject } from '../../../../src/bus/envelope.js';
import { deserializeFailure } from '../../../../src/bus/failure.js';
import { topicExchange } from '../../../../src/bus/rpc/client.js';
import { Transport, type Consumer } from '../../../../src/bus/transport.js';
import { MessagingUnavailable, type FerryError } from '../../../../src/common/errors.js';
import { sleep } from '../../../../src/common/sleep.js';
import { cloud } from '../../../helpers/cloud.js';
import { engine } from '../../../helpers/docker.js';
import { unchangedBy, type Tally } from './world.js';

export interface BusFixtures {
  /** An exited container on compute1 (its full ID). */
  exitedId: string;
}

const CONDUCTOR = 'ferry-conductor';
const COMPUTE1 = 'ferry-compute.compute1';

type Reply = { failure: FerryError } | { result: unknown } | { none: true };

/** A raw publisher on the control exchange with its own reply queue. */
export class RawBus {
  private consumer?: Consumer;
  private readonly waiting = new Map<string, (r: Reply) => void>();
  readonly replyQueue = `reply_${uuidHex()}`;

  private constructor(readonly transport: Transport) {}

  static async open(): Promise<RawBus> {
    const t = Transport.fromUrl(cloud().rabbit.transport_url, { exchange: 'ferry', connectionName: `ferry-badinput:${process.pid}` });
    await t.connect();
    const bus = new RawBus(t);
    bus.consumer = await t.consume({ queue: { name: bus.replyQueue, durable: false, autoDelete: true }, bindings: [], noAck: true }, (d) => {
      const msg = deserializeMsg(d.body);
      if (msg.ending !== true) return; // a call-monitor heartbeat
      const done = bus.waiting.get(String(msg._msg_id));
      if (!done) return;
      bus.waiting.delete(String(msg._msg_id));
      done(typeof msg.failure === 'string' && msg.failure ? { failure: deserializeFailure(msg.failure) } : { result: msg.result });
    });
    return bus;
  }

  async close(): Promise<void> {
    await this.consumer?.cancel().catch(() => undefined);
    await this.transport.close();
  }

  /** Publish these bytes as they are (again, if the broker connection blinked: other suites close it on purpose). */
  async publishRaw(routingKey: string, body: Buffer | string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transport.publish({ exchange: topicExchange('ferry'), routingKey, body: Buffer.isBuffer(body) ? body : Buffer.from(body) });
        return;
      } catch (e) {
        if (!(e instanceof MessagingUnavailable) || attempt >= 5) throw e;
        await sleep(1000);
      }
    }
  }

  /**
   * A call: `msg` gets a reply address, an admin context and ids, goes out in the 2.0 envelope
   * (or `envelope` builds the body), and the reply (or none within `waitMs`) comes back.
   */
  async call(routingKey: string, msg: JsonObject, opts: { waitMs?: number; envelope?: (inner: string) => string } = {}): Promise<Reply> {
    const msgId = uuidHex();
    const full: JsonObject = { ...msg, _msg_id: msgId, _reply_q: this.replyQueue, _unique_id: uuidHex(), _timeout: null };
    packContext(full, RequestContext.admin({ request_id: `req-${randomUUID()}` }).toDict());
    const inner = pyJson(full);
    const body = opts.envelope ? opts.envelope(inner) : pyJson({ 'oslo.version': '2.0', 'oslo.message': inner });
    const reply = new Promise<Reply>((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(msgId);
        resolve({ none: true });
      }, opts.waitMs ?? 15_000);
      this.waiting.set(msgId, (r) => {
        clearTimeout(t);
        resolve(r);
      });
    });
    await this.publishRaw(routingKey, body);
    return reply;
  }
}

function failureOf(r: Reply): FerryError {
  if ('failure' in r) return r.failure;
  throw new Error(`expected a failure reply, got ${'none' in r ? 'no reply' : `the result ${JSON.stringify(r.result)}`}`);
}

/** The failure's class (as the remote named it) and message. */
export function expectFailure(r: Reply, cls: string, message: RegExp): void {
  const f = failureOf(r);
  expect({ class: f.details.remote_class ?? f.name, message: f.message }).toEqual({ class: cls, message: expect.stringMatching(message) });
}

function logFile(service: string): string {
  return path.join(cloud().state_dir, 'log', `${service}.log`);
}

/** Where a service's log ends now, to read what it logs next. */
function logMark(service: string): number {
  return fs.statSync(logFile(service)).size;
}

function logSince(service: string, mark: number): string {
  const fd = fs.openSync(logFile(service), 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - mark));
    fs.readSync(fd, buf, 0, buf.length, mark);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

export function busCases(fx: () => BusFixtures, tally: Tally, bus: () => RawBus): void {
  /** The service behind `key` still answers a good call. */
  const alive = async (key: string) => {
    if (key === CONDUCTOR) {
      const r = await bus().call(CONDUCTOR, { method: 'list_hosts', args: {}, version: '1.0' });
      expect('result' in r && Array.isArray(r.result)).toBe(true);
      expect((r as { result: { name: string }[] }).result.map((h) => h.name)).toEqual(expect.arrayContaining(['compute1', 'compute2']));
    } else {
      const r = await bus().call(key, { method: 'list_containers', args: {}, version: '1.0', namespace: 'container_inventory' });
      expect('result' in r && (r.result as { host: string }).host).toBe(key.split('.')[1]);
    }
  };

  /** A call that must fail with `cls`; then the service answers a good call, and nothing changed. */
  const refused = (title: string, key: string, msg: JsonObject | (() => JsonObject), cls: string, message: RegExp) => {
    it(
      title,
      tally.counting('bus', () =>
        unchangedBy(async () => {
          expectFailure(await bus().call(key, typeof msg === 'function' ? msg() : msg), cls, message);
          await alive(key);
        }),
      ),
    );
  };

  /** Bytes that are no readable message: no reply; the service logs the rejection and stays up. */
  const rejected = (title: string, key: string, body: string | Buffer, logged: RegExp) => {
    it(
      title,
      tally.counting('bus', () =>
        unchangedBy(async () => {
          const service = key === CONDUCTOR ? 'ferry-conductor' : `ferry-compute-${key.split('.')[1]}`;
          const mark = logMark(service);
          await bus().publishRaw(key, body);
          await alive(key); // same queue, one consumer: the bad message was handled before this call
          const log = logSince(service, mark);
          expect(log).toMatch(/rejecting a malformed RPC message/);
          expect(log).toMatch(logged);
        }),
      ),
    );
  };

  describe('bus: envelopes that cannot be read (rejected, logged)', () => {
    rejected('a body that is not JSON, to the conductor', CONDUCTOR, 'method=list_hosts', /body is not JSON/);
    rejected('an empty body, to a compute agent', COMPUTE1, '', /body is not JSON/);
    rejected('a JSON array body, to the conductor', CONDUCTOR, '[{"method": "list_hosts"}]', /body is not a JSON object/);
    rejected(
      'oslo.version "3.0", to the conductor',
      CONDUCTOR,
      pyJson({ 'oslo.version': '3.0', 'oslo.message': pyJson({ method: 'list_hosts', args: {} }) }),
      /unsupported envelope version \\"3\.0\\"/,
    );
    rejected(
      'oslo.version that is no version ("two"), to a compute agent',
      COMPUTE1,
      pyJson({ 'oslo.version': 'two', 'oslo.message': pyJson({ method: 'list_hosts', args: {} }) }),
      /unsupported envelope version/,
    );
    rejected(
      'oslo.message that is not JSON, to the conductor',
      CONDUCTOR,
      pyJson({ 'oslo.version': '2.0', 'oslo.message': '{"method": ' }),
      /oslo\.message is not JSON/,
    );
    rejected(
      'oslo.message that is an object, not a string, to a compute agent',
      COMPUTE1,
      pyJson({ 'oslo.version': '2.0', 'oslo.message': { method: 'x' } }),
      /oslo\.message is not a string/,
    );
  });

  describe('bus: messages without a callable method or with bad args (failure reply)', () => {
    refused('no method name, to the conductor', CONDUCTOR, { args: {} }, 'InvalidInput', /malformed RPC message: no method name or bad args/);
    refused('a method name that is a number, to a compute agent', COMPUTE1, { method: 42, args: {} }, 'InvalidInput', /malformed RPC message/);
    refused(
      'args that are an array, to a compute agent',
      COMPUTE1,
      { method: 'rollback_at_destination', args: ['x'], version: '1.0' },
      'InvalidInput',
      /bad args/,
    );
    refused(
      'args that are a string, to the conductor',
      CONDUCTOR,
      { method: 'get_migration', args: 'migration_id=1', version: '1.0' },
      'InvalidInput',
      /bad args/,
    );
    refused(
      'an unknown method, to the conductor',
      CONDUCTOR,
      { method: 'drop_database', args: {}, version: '1.0' },
      'NoSuchMethod',
      /Endpoint does not support RPC method drop_database/,
    );
    refused(
      'a private member ("constructor"), to the conductor',
      CONDUCTOR,
      { method: 'constructor', args: {}, version: '1.0' },
      'NoSuchMethod',
      /RPC method constructor/,
    );
    refused(
      'an unknown method, to a compute agent',
      COMPUTE1,
      { method: 'remove_all_containers', args: {}, version: '1.0' },
      'NoSuchMethod',
      /RPC method remove_all_containers/,
    );
    refused(
      'a newer major version (2.0), to the conductor',
      CONDUCTOR,
      { method: 'list_hosts', args: {}, version: '2.0' },
      'UnsupportedVersion',
      /does not support RPC version 2\.0/,
    );
    refused(
      'a newer minor version (1.3) than the agent has, to a compute agent',
      COMPUTE1,
      { method: 'rollback_at_destination', args: { migration_id: 'badinput-x' }, version: '1.3' },
      'UnsupportedVersion',
      /does not support RPC version 1\.3/,
    );
    refused(
      'a version that is no version ("one.two"), to the conductor',
      CONDUCTOR,
      { method: 'list_hosts', args: {}, version: 'one.two' },
      'UnsupportedVersion',
      /RPC version one\.two/,
    );
    refused(
      'an unknown namespace, to a compute agent',
      COMPUTE1,
      { method: 'list_containers', args: {}, version: '1.0', namespace: 'root_shell' },
      'UnsupportedVersion',
      /RPC version 1\.0/,
    );
    refused(
      'an unknown method in the inventory namespace, to a compute agent',
      COMPUTE1,
      { method: 'kill_all', args: {}, version: '1.0', namespace: 'container_inventory' },
      'NoSuchMethod',
      /RPC method kill_all/,
    );
  });

  describe('bus: conductor calls with bad arguments', () => {
    const c = (method: string, args: JsonObject, version = '1.1') => ({ method, args, version });
    refused(
      'migrate_container without a container',
      CONDUCTOR,
      c('migrate_container', { host: 'compute2' }),
      'InvalidInput',
      /argument "container" is required/,
    );
    refused(
      'migrate_container with a container that is a number',
      CONDUCTOR,
      c('migrate_container', { container: 42 }),
      'InvalidInput',
      /argument "container" must be a string/,
    );
    refused(
      'migrate_container with a host that is an object',
      CONDUCTOR,
      c('migrate_container', { container: 'x', host: { name: 'compute2' } }),
      'InvalidInput',
      /argument "host" must be a string/,
    );
    refused(
      'migrate_container with a 1 MB container name',
      CONDUCTOR,
      c('migrate_container', { container: 'c'.repeat(1 << 20) }),
      'InvalidInput',
      /argument "container" must be at most 255 characters/,
    );
    refused(
      'get_migration of "../../etc/passwd"',
      CONDUCTOR,
      c('get_migration', { migration_id: '../../etc/passwd' }),
      'MigrationNotFound',
      /could not be found/,
    );
    refused(
      'abort_migration of an unknown migration',
      CONDUCTOR,
      c('abort_migration', { migration_id: '5b0f4f7e-9a38-4f43-a3a4-000000000000' }),
      'MigrationNotFound',
      /could not be found/,
    );
    refused(
      'list_migrations with an unknown status',
      CONDUCTOR,
      c('list_migrations', { status: 'exploded' }),
      'InvalidInput',
      /argument "status" must be one of accepted/,
    );
    refused(
      'list_migrations with a limit that is a string',
      CONDUCTOR,
      c('list_migrations', { limit: '5' }),
      'InvalidInput',
      /argument "limit" must be an integer >= 0/,
    );
    refused(
      'list_migrations with changes_since "yesterday"',
      CONDUCTOR,
      c('list_migrations', { changes_since: 'yesterday' }),
      'InvalidInput',
      /argument "changes_since" must be an ISO 8601 time/,
    );
    refused(
      'report_state with a state that is a string',
      CONDUCTOR,
      c('report_state', { host: 'compute1', state: 'up' }),
      'InvalidInput',
      /argument "state" must be an object|report_state needs a host name and a state with a containers list/,
    );
    refused(
      'report_state whose container list holds null and a number',
      CONDUCTOR,
      c('report_state', { host: 'compute1', state: { docker_version: '20.10.24', containers: [null, 7] } }),
      'InvalidInput',
      /report_state: containers\[0\] must be an object with string id, name, image and status/,
    );
    refused(
      'report_state with a 1 KB host name',
      CONDUCTOR,
      c('report_state', { host: 'h'.repeat(1024), state: { containers: [] } }),
      'InvalidInput',
      /argument "host" must be at most 255 characters/,
    );
    refused(
      'container_event of an unknown kind',
      CONDUCTOR,
      c('container_event', { host: 'compute1', event: { kind: 'explode', id: 'a'.repeat(64), at: new Date().toISOString() } }),
      'InvalidInput',
      /unknown kind "explode"/,
    );
    refused(
      'container_event with an id that is not hex',
      CONDUCTOR,
      c('container_event', { host: 'compute1', event: { kind: 'die', id: '../../x', at: new Date().toISOString() } }),
      'InvalidInput',
      /"id" must be a container ID/,
    );
  });

  describe('bus: compute agent calls with bad arguments', () => {
    const k = (method: string, args: JsonObject) => ({ method, args, version: '1.0' });
    const grant = { address: '127.0.0.1:9519', token: 'T'.repeat(32) };
    const badSpec = {
      id: 'f'.repeat(64),
      name: 'badinput-privileged',
      image: { id: `sha256:${'e'.repeat(64)}`, ref: null },
      running: true,
      tty: false,
      privileged: true,
      auto_remove: false,
      network_mode: 'bridge',
      networks: [],
      volumes: [],
      binds: [{ source: '/etc', destination: '/host-etc', read_only: false }],
      ports: [],
      devices: ['/dev/sda'],
      restart_policy: 'no',
      memory_bytes_estimate: null,
      create: { Image: `sha256:${'e'.repeat(64)}`, HostConfig: { Privileged: true, Binds: ['/etc:/host-etc'] } },
    };
    refused(
      'check_can_migrate_source without a migration_id',
      COMPUTE1,
      k('check_can_migrate_source', { container: 'x', dest_host: 'compute2' }),
      'InvalidInput',
      /bad arguments for check_can_migrate_source: migration_id/,
    );
    refused(
      'live_migration with migration_id "../../../etc"',
      COMPUTE1,
      k('live_migration', { migration_id: '../../../etc', upload: grant }),
      'InvalidInput',
      /migration_id must be a plain name/,
    );
    refused(
      'rollback_at_destination with a 300-character migration_id',
      COMPUTE1,
      k('rollback_at_destination', { migration_id: 'm'.repeat(300) }),
      'InvalidInput',
      /migration_id must be a plain name/,
    );
    refused(
      'pre_migration with a spec that is a string',
      COMPUTE1,
      k('pre_migration', { migration_id: 'badinput-1', source_host: 'compute2', spec: 'redis', export: grant }),
      'InvalidInput',
      /spec must be a container spec/,
    );
    refused(
      'pre_migration with a grant token too short to be one',
      COMPUTE1,
      k('pre_migration', { migration_id: 'badinput-2', source_host: 'compute2', spec: badSpec, export: { address: '127.0.0.1:9519', token: 'short' } }),
      'InvalidInput',
      /export\.token/,
    );
    refused(
      'check_can_migrate_destination of a privileged spec with a host device and a host bind mount',
      COMPUTE1,
      k('check_can_migrate_destination', { migration_id: 'badinput-3', source_host: 'compute2', spec: badSpec }),
      'MigrationPreCheckError',
      /migration refused by the target compute1: .*is privileged.*maps host devices \(\/dev\/sda\).*bind mount \/etc -> \/host-etc is host-local/,
    );
    refused(
      'pre_migration of a privileged spec: refused by the target before it keeps or makes anything',
      COMPUTE1,
      k('pre_migration', { migration_id: 'badinput-4', source_host: 'compute2', spec: badSpec, export: grant }),
      'MigrationPreCheckError',
      /migration refused by the target compute1: .*is privileged/,
    );
    refused(
      'huge args (4 MB of junk beside a bad migration_id)',
      COMPUTE1,
      k('post_migration_at_destination', { migration_id: '/', junk: 'j'.repeat(4 << 20) }),
      'InvalidInput',
      /migration_id must be a plain name/,
    );
    refused(
      'post_migration_at_destination of a migration this host never saw',
      COMPUTE1,
      k('post_migration_at_destination', { migration_id: 'badinput-never-seen' }),
      'MigrationNotFound',
      /no incoming migration badinput-never-seen on compute1/,
    );
    it(
      'cleanup_source of a migration this host never saw, naming a stopped container: nothing is removed',
      tally.counting('bus', () =>
        unchangedBy(async () => {
          const r = await bus().call(COMPUTE1, k('cleanup_source', { migration_id: 'badinput-never-seen', container_id: fx().exitedId }));
          expect(r).toEqual({ result: { container_removed: false, volumes_removed: [] } });
          expect((await engine('compute1').getContainer(fx().exitedId).inspect()).State.Status).toBe('exited');
          await alive(COMPUTE1);
        }),
      ),
    );
    refused(
      'rollback_at_source of a migration this host never saw, naming a stopped container: refused, not started',
      COMPUTE1,
      () => k('rollback_at_source', { migration_id: 'badinput-never-seen', container_id: fx().exitedId }),
      'MigrationNotFound',
      /no outgoing migration badinput-never-seen on compute1/,
    );
  });
}
