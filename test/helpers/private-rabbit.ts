/**
 * A private RabbitMQ node for tests that must restart the broker (and for bus development
 * before the development cloud has one). It never touches the dev cloud's node or port:
 * by default node `ferrybus@localhost`, AMQP on 127.0.0.1:5682, distribution on 25682, all
 * state in a temp dir; a test may choose other ports and node name (its own range), add a TLS
 * listener, and drop the plain one. It is stopped by its own PID only.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sleep } from '../../src/common/sleep.js';
import { Transport } from '../../src/bus/transport.js';

const execFileP = promisify(execFile);

const RABBIT_BIN = '/usr/lib/rabbitmq/bin';
export const PRIVATE_RABBIT_PORT = 5682;
const NODE_NAME = 'ferrybus@localhost';

export interface PrivateRabbitOptions {
  /** Plain AMQP port (default 5682). */
  port?: number;
  /** Erlang distribution port (default 25682). */
  distPort?: number;
  /** Default `ferrybus@localhost`. */
  nodeName?: string;
  /** A TLS listener on 127.0.0.1:port with this PEM certificate and key (no client certificate asked). */
  tls?: { port: number; certFile: string; keyFile: string; caFile: string };
  /** Keep the plain listener (default true); false: TLS only. */
  plain?: boolean;
  /** The Erlang cookie (nodes of one cluster share it); default: the node makes its own. */
  cookie?: string;
}

export class PrivateRabbit {
  private proc?: ChildProcess;
  private readonly dir: string;
  private output = '';
  readonly port: number;
  readonly tlsPort?: number;
  private readonly distPort: number;
  readonly nodeName: string;
  private readonly plain: boolean;

  constructor(opts: PrivateRabbitOptions = {}) {
    this.port = opts.port ?? PRIVATE_RABBIT_PORT;
    this.distPort = opts.distPort ?? 25682;
    this.nodeName = opts.nodeName ?? NODE_NAME;
    this.plain = opts.plain ?? true;
    this.tlsPort = opts.tls?.port;
    if (!this.plain && !opts.tls) throw new Error('a private rabbit needs a plain or a TLS listener');
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-rabbit-'));
    // No plugins: the management plugin would try to listen on 15672 (the dev cloud's).
    fs.writeFileSync(path.join(this.dir, 'enabled_plugins'), '[].\n');
    if (opts.cookie) fs.writeFileSync(path.join(this.dir, '.erlang.cookie'), opts.cookie, { mode: 0o400 });
    if (opts.tls) {
      const t = opts.tls;
      fs.writeFileSync(
        path.join(this.dir, 'rabbitmq.conf'),
        [
          // Without a plain listener RabbitMQ would otherwise open 5672 on every address (the dev cloud's port).
          this.plain ? `listeners.tcp.default = 127.0.0.1:${this.port}` : 'listeners.tcp = none',
          `listeners.ssl.default = 127.0.0.1:${t.port}`,
          `ssl_options.cacertfile = ${t.caFile}`,
          `ssl_options.certfile = ${t.certFile}`,
          `ssl_options.keyfile = ${t.keyFile}`,
          'ssl_options.verify = verify_none',
          'ssl_options.fail_if_no_peer_cert = false',
          '',
        ].join('\n'),
      );
    }
  }

  /** Plain AMQP on the node (only with the plain listener). */
  get transportUrl(): string {
    return `rabbit://guest:guest@127.0.0.1:${this.port}/`;
  }

  /** TLS on the node, verified against `caFile` (only with a TLS listener). */
  tlsTransportUrl(caFile: string): string {
    if (this.tlsPort === undefined) throw new Error('this private rabbit has no TLS listener');
    return `rabbit://guest:guest@127.0.0.1:${this.tlsPort}/?ssl=1&ssl_ca_file=${caFile}`;
  }

  /** The port start() waits for. */
  private get readyPort(): number {
    return this.plain ? this.port : this.tlsPort!;
  }

  private get pidFile(): string {
    return path.join(this.dir, 'rabbit.pid');
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      HOME: this.dir, // the erlang cookie lives here; rabbitmqctl must share it
      RABBITMQ_NODENAME: this.nodeName,
      // The plain listener; a TLS-only node declares `listeners.tcp = none` in its config instead.
      ...(this.plain ? { RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1', RABBITMQ_NODE_PORT: String(this.port) } : {}),
      RABBITMQ_DIST_PORT: String(this.distPort),
      // Erlang distribution on loopback only.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
      RABBITMQ_PID_FILE: this.pidFile,
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONFIG_FILE: path.join(this.dir, 'rabbitmq'), // rabbitmq.conf, written only for TLS
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(this.dir, 'advanced.config'),
      RABBITMQ_CONF_ENV_FILE: path.join(this.dir, 'rabbitmq-env.conf'),
    };
  }

  /** Start the node and wait until it accepts AMQP connections. Reuses the same data dir on restart. */
  async start(): Promise<void> {
    if (this.proc) throw new Error('private rabbit already running');
    fs.rmSync(this.pidFile, { force: true });
    const proc = spawn(path.join(RABBIT_BIN, 'rabbitmq-server'), [], {
      env: this.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so stop() can end the whole node and only it
    });
    this.proc = proc;
    const keep = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-8000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`rabbitmq-server exited (${code}): ${this.output}`))));
    exited.catch(() => undefined);
    // `rabbitmqctl wait` reads the pid file once it exists: seen empty, just created, it fails ("garbage_in_pid_file").
    const pidWritten = (async () => {
      const end = Date.now() + 60_000;
      while (!/^\d+\s*$/.test(fs.existsSync(this.pidFile) ? fs.readFileSync(this.pidFile, 'utf8') : '')) {
        if (Date.now() > end) throw new Error(`${this.pidFile} not written within 60 s: ${this.output}`);
        await sleep(100);
      }
    })();
    try {
      await Promise.race([pidWritten, exited]);
      const wait = execFileP(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', this.nodeName, 'wait', this.pidFile, '--timeout', '60'], {
        env: this.env(),
      });
      await Promise.race([wait, exited]);
      await waitForPort(this.readyPort, 30_000);
    } catch (e) {
      // A node that did not come up is ended here: its caller never gets it to stop (it would hold the ports for the next test).
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  /** rabbitmqctl against this node. */
  async ctl(args: string[]): Promise<string> {
    const r = await execFileP(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', this.nodeName, ...args], { env: this.env(), timeout: 60_000 });
    return r.stdout;
  }

  /** The PID of the node's Erlang VM (null when it is not running). */
  get nodePid(): number | null {
    if (!this.proc) return null;
    try {
      return Number(fs.readFileSync(this.pidFile, 'utf8').trim()) || null;
    } catch {
      return null;
    }
  }

  /** Kill the node's Erlang VM by its PID (a crash: no clean shutdown), then reap the rest. */
  async kill(): Promise<void> {
    const pid = this.nodePid;
    if (pid !== null) process.kill(pid, 'SIGKILL');
    await this.stop();
  }

  /** Stop the node by its PID (its own process group) and wait for it to be gone. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.pid === undefined) return;
    this.proc = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    process.kill(-proc.pid, 'SIGTERM');
    const t = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 20_000);
    await gone;
    clearTimeout(t);
    // beam may linger a moment after the script exits; wait until its ports are free (the next node takes the same).
    await waitForPortClosed(this.readyPort, 20_000);
    await waitForPortClosed(this.distPort, 20_000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stop and remove the temp dir. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function probe(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe(port)) return;
    await sleep(200);
  }
  throw new Error(`port ${port} did not open within ${ms} ms`);
}

async function waitForPortClosed(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await probe(port))) return;
    await sleep(200);
  }
  throw new Error(`port ${port} still open after ${ms} ms`);
}

/** Share one private node per test file. */
export async function startPrivateRabbit(): Promise<PrivateRabbit> {
  const r = new PrivateRabbit();
  await r.start();
  return r;
}

/** A private node with a transport for servers and one for clients on it. */
export interface PrivateBus {
  rabbit: PrivateRabbit;
  server: Transport;
  client: Transport;
  close(): Promise<void>;
}

export async function startPrivateBus(): Promise<PrivateBus> {
  const rabbit = await startPrivateRabbit();
  const server = Transport.fromUrl(rabbit.transportUrl, { exchange: 'ferry', reconnectMaxMs: 1000 });
  const client = Transport.fromUrl(rabbit.transportUrl, { exchange: 'ferry', reconnectMaxMs: 1000 });
  await server.connect();
  await client.connect();
  return {
    rabbit,
    server,
    client,
    close: async () => {
      await server.close();
      await client.close();
      await rabbit.destroy();
    },
  };
}
