/**
 * The probe process: asks a workload for an answer every --interval ms and prints one JSON
 * line per answer or failure: {"t": epoch ms, "ok": bool, "v": answer or error}.
 * It runs as its own process because entering the client's network namespace takes
 * `ip netns exec ferry-client node probe-main.js ...`. Only Node's own modules, no other imports.
 *   --kind http|redis --host H --port P [--interval 10] [--pool 4] [--detect 200]
 *
 * Why not simply a new TCP connection per request: CRIU refuses to dump a listening socket
 * with a connection waiting in its accept queue ("In-flight connection", unless CRIU runs with
 * skip-in-flight, which /etc/criu/runc.conf does not say), and a SYN that arrives just after the
 * freeze lands exactly there. So the probe asks over connections it opened earlier:
 * - a small pool of established connections (Redis: reused; busybox httpd: one request each,
 *   the pool is refilled in one batch, right after an answer, when half of it is used). Each
 *   pooled connection is state CRIU has to dump and restore, so the pool stays small;
 * - a request goes out every interval on an idle pooled connection. During the freeze these
 *   requests hang in TCP retransmission (first retry after ~200 ms);
 * - once nothing has answered for --detect ms, the probe opens a fresh connection every
 *   interval as well, so the first answer after the restore comes within an interval however
 *   long the outage was. In a Docker container CRIU dumps the listening socket about 25 ms
 *   after the freeze (criu dump.log; the container's netns is external to CRIU, so nothing
 *   drops SYNs meanwhile): 200 ms is well past it. For raw CRIU (run with --skip-in-flight)
 *   the benchmark passes a short --detect.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  strict: true,
  options: {
    kind: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    interval: { type: 'string', default: '10' },
    pool: { type: 'string', default: '4' },
    detect: { type: 'string', default: '200' },
    timeout: { type: 'string', default: '500' },
  },
});

function required(name: 'kind' | 'host' | 'port'): string {
  const v = args[name];
  if (v === undefined) throw new Error(`probe: --${name} is required`);
  return v;
}

/** A non-negative number of milliseconds (or a port), or a clear error. */
function count(name: 'port' | 'interval' | 'pool' | 'detect' | 'timeout', raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`probe: --${name} must be a non-negative integer, not "${raw}"`);
  return n;
}

const kind = required('kind');
const host = required('host');
const port = count('port', required('port'));
const interval = count('interval', args.interval);
const poolSize = count('pool', args.pool);
const detect = count('detect', args.detect);
const connectTimeout = count('timeout', args.timeout);

const REQUEST = kind === 'http' ? `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n` : kind === 'redis' ? '*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n' : '';
if (!REQUEST) throw new Error(`probe: unknown kind ${kind}`);
const reusable = kind === 'redis';

function emit(ok: boolean, v: string) {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ok, v })}\n`);
}

/** The complete Redis reply in `buf`, or null while more bytes are due. */
function redisReply(buf: string): string | null {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return null;
  const head = buf.slice(0, eol);
  if (head[0] !== '$') return head;
  const len = Number(head.slice(1));
  if (len < 0) return '(nil)';
  if (buf.length < eol + 2 + len + 2) return null;
  return buf.slice(eol + 2, eol + 2 + len);
}

interface Conn {
  sock: net.Socket;
  ready: boolean;
  busy: boolean;
  buf: string;
  pooled: boolean;
  timer: NodeJS.Timeout | null;
}

const pool = new Set<Conn>();
let lastAnswer = Date.now();
let connectMode = false;
let refilling = false;

function answered(c: Conn, ok: boolean, v: string) {
  emit(ok, v);
  if (!ok) return;
  lastAnswer = Date.now();
  connectMode = false;
  if (!c.pooled && reusable) {
    c.pooled = true; // a connection that got through is as good as a pooled one
    pool.add(c);
  }
  if (pool.size < poolSize / 2 && !refilling) refill();
}

function drop(c: Conn) {
  if (c.timer) clearTimeout(c.timer);
  c.sock.destroy();
  pool.delete(c);
}

function open(pooled: boolean, sendNow: boolean): Conn {
  const sock = net.connect({ host, port });
  const c: Conn = { sock, ready: false, busy: false, buf: '', pooled, timer: null };
  sock.setNoDelay(true);
  if (pooled) pool.add(c);
  sock.on('connect', () => {
    c.ready = true;
    if (sendNow) send(c);
  });
  sock.on('data', (d) => {
    c.buf += d.toString('latin1');
    if (reusable && c.busy) {
      const r = redisReply(c.buf);
      if (r === null) return;
      c.busy = false;
      c.buf = '';
      if (c.timer) clearTimeout(c.timer);
      answered(c, !r.startsWith('-') && r !== '(nil)', r);
    }
  });
  sock.on('end', () => {
    if (kind === 'http' && c.busy) {
      c.busy = false;
      const m = /^HTTP\/1\.[01] (\d+)/.exec(c.buf);
      const body = c.buf.slice(c.buf.indexOf('\r\n\r\n') + 4).trim();
      drop(c);
      answered(c, m?.[1] === '200', m?.[1] === '200' ? body : `http ${m?.[1] ?? '?'}`);
    } else drop(c);
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    const wasBusy = c.busy;
    drop(c);
    if (wasBusy || !pooled) emit(false, e.code ?? e.message);
  });
  if (!pooled) {
    c.timer = setTimeout(() => {
      if (!sock.destroyed) {
        drop(c);
        emit(false, 'timeout');
      }
    }, connectTimeout);
  }
  return c;
}

function send(c: Conn) {
  c.busy = true;
  c.buf = '';
  c.sock.write(REQUEST);
}

function refill() {
  refilling = true;
  const want = poolSize - pool.size;
  for (let i = 0; i < want; i++) open(true, false);
  refilling = false;
}

function tick() {
  const now = Date.now();
  if (!connectMode && now - lastAnswer > detect) connectMode = true;
  for (const c of pool) {
    if (c.ready && !c.busy) {
      send(c);
      return;
    }
  }
  if (connectMode) open(false, true);
}

refill();
const timer = setInterval(tick, interval);
const stop = () => {
  clearInterval(timer);
  for (const c of pool) c.sock.destroy();
  setTimeout(() => process.exit(0), 50).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
