/**
 * Fault settings: a malformed one fails loudly (a fault that silently does nothing would let a
 * fault test pass without its fault). Where faults are not allowed (production) nothing is
 * wrapped; where they are, the wrappers inject them into real streams: a truncated, a corrupted
 * and a cut data channel transfer over a real HTTP server and GNU tar, pages paced through a
 * real relay.
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { types } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultConfig } from '../../../src/conf/index.js';
import { TransferGrants } from '../../../src/compute/datachannel/grants.js';
import { DataChannelServer, type ReceiveStage } from '../../../src/compute/datachannel/receiver.js';
import { transferParts, type ChannelClientOptions } from '../../../src/compute/datachannel/sender.js';
import { DockerDriver } from '../../../src/compute/docker/driver.js';
import type { EngineDriver, LazyCheckpointRequest, LazyCheckpointResult } from '../../../src/compute/driver.js';
import { FaultInjection, effectiveFaults, faultInjection, parseFaults, withFaultInjection, withFaults, type Faults } from '../../../src/compute/faults.js';
import { channelFaults } from '../../../src/compute/faults/channel.js';
import { createAgent } from '../../../src/compute/index.js';

const saved = { FERRY_FAULTS: process.env.FERRY_FAULTS, NODE_ENV: process.env.NODE_ENV, FERRY_ENABLE_FAULTS: process.env.FERRY_ENABLE_FAULTS };
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-faults-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** As the services run: neither jest's NODE_ENV nor FERRY_ENABLE_FAULTS. */
function production(): void {
  process.env.NODE_ENV = 'production';
  delete process.env.FERRY_ENABLE_FAULTS;
}

describe('fault settings', () => {
  it('takes the known faults with values of their type', () => {
    expect(parseFaults({ failRestore: true, delayAfterCheckpointMs: 4000 }, 't')).toEqual({ failRestore: true, delayAfterCheckpointMs: 4000 });
  });

  it.each([
    [{ delayAfterCheckpoint: 4000 }, /unknown fault "delayAfterCheckpoint"/],
    [{ delayAfterCheckpointMs: '4000' }, /takes a non-negative number/],
    [{ delayAfterCheckpointMs: -1 }, /takes a non-negative number/],
    [{ failRestore: 1 }, /takes a boolean/],
    [[], /must be a JSON object/],
  ])('refuses %j', (value, why) => {
    expect(() => parseFaults(value, 't')).toThrow(why);
  });

  it('FERRY_FAULTS that is not JSON, or names an unknown fault, stops the agent from starting', () => {
    process.env.FERRY_FAULTS = '{failRestore: true}';
    expect(() => effectiveFaults(undefined)).toThrow(/FERRY_FAULTS is not JSON/);
    process.env.FERRY_FAULTS = '{"failRestor": true}';
    expect(() => effectiveFaults(undefined)).toThrow(/unknown fault "failRestor"/);
    process.env.FERRY_FAULTS = '{"failRestore": true}';
    expect(effectiveFaults(undefined)).toEqual({ failRestore: true });
  });
});

describe('where faults are not allowed (production)', () => {
  it('the agent is built with nothing wrapped, even when FERRY_FAULTS asks for faults', () => {
    production();
    process.env.FERRY_FAULTS = '{"truncateTransfer": true}';
    expect(faultInjection()).toBeNull();
    const opts = { driver: {} as EngineDriver, channel: { tls: null } };
    expect(withFaultInjection(opts)).toBe(opts);
    const conf = defaultConfig();
    conf.DEFAULT.host = 'compute1';
    conf.compute.work_dir = path.join(tmp, 'work');
    conf.compute.data_channel_insecure = true;
    const agent = createAgent(conf);
    expect(agent.driver).toBeInstanceOf(DockerDriver);
    expect(types.isProxy(agent.driver)).toBe(false);
    // The data channel got no wrappers either.
    const channel = (agent.transfer as unknown as { opts: { channel?: { wrappers?: unknown } } }).opts.channel;
    expect(channel).toBeDefined();
    expect(channel?.wrappers).toBeUndefined();
  });

  it('a malformed FERRY_FAULTS still stops the agent from starting', () => {
    production();
    process.env.FERRY_FAULTS = '{"failRestor": true}';
    expect(() => faultInjection()).toThrow(/unknown fault "failRestor"/);
  });

  it('in tests the same construction wraps the driver and both ends of the data channel', () => {
    const opts = { driver: {} as EngineDriver, channel: { tls: null } };
    const wrapped = withFaultInjection(opts);
    expect(wrapped).not.toBe(opts);
    expect(types.isProxy(wrapped.driver)).toBe(true);
    expect(wrapped.channel.wrappers).toBeDefined();
  });
});

describe('data channel faults over a real channel', () => {
  const grants = new TransferGrants(60_000);
  let faults: Faults = {};
  let server: DataChannelServer;
  let address: string;
  const source = path.join(tmp, 'checkpoint');

  beforeAll(async () => {
    fs.mkdirSync(source, { recursive: true });
    // Random bytes: neither tar nor a digest check can mistake a damaged stream for the original.
    fs.writeFileSync(path.join(source, 'pages-1.img'), crypto.randomBytes(200_000));
    const receiving: ReceiveStage = (part, req, wireBytes) => channelFaults(() => faults).receiving(part, req, wireBytes);
    server = new DataChannelServer({
      host: 'compute2',
      bindHost: '127.0.0.1',
      port: 0,
      maxBytes: 50_000_000,
      grants,
      tls: null,
      receiveStage: receiving,
      handler: {
        stagingDir: (id) => path.join(tmp, 'staging', id),
        checkpointName: (id) => `ferry-${id}`,
        committed: async () => undefined,
        exportImage: async () => {
          throw new Error('no image here');
        },
      },
    });
    address = await server.listen();
  });
  afterAll(() => server.close());

  /** One migration's checkpoint part sent with the client settings the fault wrappers make of plain ones. */
  function send(id: string, f: Faults) {
    faults = f;
    const client: ChannelClientOptions = channelFaults(() => f).sending({ tls: null });
    const grant = { address, host: 'compute2', token: grants.grantUpload(id, 'compute1', ['checkpoint']) };
    return transferParts(client, grant, id, [{ part: 'checkpoint', dir: source, kind: 'checkpoint' }]);
  }

  it('without faults the part arrives whole', async () => {
    const out = await send('m-whole', {});
    expect(out.checkpoint_name).toBe('ferry-m-whole');
    expect(fs.readFileSync(path.join(tmp, 'staging', 'm-whole', 'checkpoint', 'pages-1.img')).equals(fs.readFileSync(path.join(source, 'pages-1.img')))).toBe(
      true,
    );
  });

  it('truncateTransfer: the part stops after 32 KiB and the target refuses it', async () => {
    await expect(send('m-truncated', { truncateTransfer: true })).rejects.toThrow(/corrupted or truncated|unreadable|incomplete/);
  });

  it('corruptTransfer: one flipped byte and the target refuses the part', async () => {
    await expect(send('m-corrupted', { corruptTransfer: true })).rejects.toThrow(/corrupted or truncated/);
  });

  it('cutTransferAfterBytes: the target drops the connection mid-part', async () => {
    await expect(send('m-cut', { cutTransferAfterBytes: 50_000 })).rejects.toThrow(/failed|refused|socket|reset|EPIPE/i);
  });

  it('throttleTransferBytesPerSec replaces the bandwidth and the wire is left alone otherwise', () => {
    const client = channelFaults(() => ({ throttleTransferBytesPerSec: 1000 })).sending({ tls: null, bandwidthBytesPerSec: 5 });
    expect(client.bandwidthBytesPerSec).toBe(1000);
    expect(client.alterWire?.('checkpoint')).toBeUndefined();
    expect(channelFaults(() => ({})).sending({ tls: null, bandwidthBytesPerSec: 5 }).bandwidthBytesPerSec).toBe(5);
    expect(
      channelFaults(() => ({ truncateTransfer: true }))
        .sending({ tls: null })
        .alterWire?.('rootfs'),
    ).toBeUndefined();
  });
});

describe('throttlePagesBytesPerSec', () => {
  /** A driver whose "page tunnel" is a real TCP server that sends `bytes` to whoever connects, then ends. */
  function lazyDriver(bytes: Buffer) {
    const seen: LazyCheckpointRequest[] = [];
    const servers: net.Server[] = [];
    let state: 'serving' | 'done' = 'serving';
    const lazyPages = {
      async checkpointLazy(_id: string, name: string, opts: LazyCheckpointRequest): Promise<LazyCheckpointResult> {
        seen.push(opts);
        const srv = net.createServer((s) => s.end(bytes));
        servers.push(srv);
        await new Promise<void>((resolve) => srv.listen(opts.pageServerPort, opts.bindAddress, resolve));
        const port = (srv.address() as net.AddressInfo).port;
        return { name, dir: '/d', bytes: 0, checkpoint_ms: 0, fast: true, page_server: { port, pid: 2 } };
      },
      pageServerStatus: (name: string) => ({ name, state, port: null, pid: null, error: null }),
    };
    const driver = { lazyPages } as unknown as EngineDriver;
    return { driver, seen, servers, finish: () => (state = 'done') };
  }

  async function fetchAll(port: number): Promise<{ got: Buffer; ms: number }> {
    const t0 = Date.now();
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    await once(sock, 'end');
    sock.destroy();
    return { got: Buffer.concat(chunks), ms: Date.now() - t0 };
  }

  it('the target reaches the tunnel through a relay that passes every byte, paced; without the fault, the tunnel itself', async () => {
    const pages = crypto.randomBytes(400_000);
    const paced = lazyDriver(pages);
    const plain = lazyDriver(pages);
    try {
      const r = await withFaults(paced.driver, () => ({ throttlePagesBytesPerSec: 400_000 })).lazyPages!.checkpointLazy('c', 'n', {
        pageServerPort: 0,
        bindAddress: '127.0.0.1',
        tunnel: { tls: null, token: 't', peerHost: null },
      });
      // The tunnel itself listens on loopback; the relay on the address asked for.
      expect(paced.seen[0]).toMatchObject({ pageServerPort: 0, bindAddress: '127.0.0.1' });
      const tunnelPort = (paced.servers[0].address() as net.AddressInfo).port;
      expect(r.page_server.port).not.toBe(tunnelPort);
      const { got, ms } = await fetchAll(r.page_server.port);
      expect(got.equals(pages)).toBe(true);
      // 400 kB at 400 kB/s: the wait after each chunk but the last, ~0.85 s (loopback unpaced: a few ms).
      expect(ms).toBeGreaterThanOrEqual(600);

      const req = { pageServerPort: 0, bindAddress: '127.0.0.1', tunnel: { tls: null, token: 't', peerHost: null } };
      const direct = await withFaults(plain.driver, () => ({})).lazyPages!.checkpointLazy('c', 'n', req);
      expect(plain.seen[0]).toBe(req);
      expect(direct.page_server.port).toBe((plain.servers[0].address() as net.AddressInfo).port);
      const unpaced = await fetchAll(direct.page_server.port);
      expect(unpaced.got.equals(pages)).toBe(true);
      expect(unpaced.ms).toBeLessThan(ms);
    } finally {
      paced.finish();
      for (const s of [...paced.servers, ...plain.servers]) s.close();
    }
  });

  it('a driver without post-copy still has none', () => {
    expect(withFaults({} as EngineDriver, () => ({})).lazyPages).toBeUndefined();
  });
});

describe('FaultInjection', () => {
  it('a change reaches the wrappers already installed', () => {
    const f = new FaultInjection();
    const opts = f.install({ driver: {} as EngineDriver });
    expect(opts.channel.wrappers!.sending({ tls: null }).bandwidthBytesPerSec).toBeUndefined();
    f.set({ throttleTransferBytesPerSec: 7 });
    expect(opts.channel.wrappers!.sending({ tls: null }).bandwidthBytesPerSec).toBe(7);
    expect(() => f.set({ nonsense: true } as Faults)).toThrow(/unknown fault "nonsense"/);
  });
});
