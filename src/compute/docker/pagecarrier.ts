/**
 * The source's connection to CRIU's page server, run as its own small process in the engine's
 * network namespace (CRIU listens on that namespace's loopback). The agent talks to it through
 * stdin/stdout.
 *
 * Why not socat: an end of stream that reaches CRIU's page server before the lazy-pages client
 * closed the protocol makes CRIU give up the dump and end (or resume) the frozen source. If the
 * agent dies mid post-copy, socat passes that end of stream on at once (or dies writing to the
 * gone agent, which closes the connection just the same). This carrier instead SIGKILLs CRIU,
 * by its PID, before its own connection closes: the source stays frozen and whole, and the
 * restarted agent and the conductor decide what happens to it.
 *
 * It is started before CRIU listens and connects the moment it does (CRIU serves one connection:
 * the first one wins, and no other local process should). CRIU's PID is known only once it
 * listens: the agent writes it to `<pid file>`.
 *
 * Usage: node pagecarrier.js <port> <pid file>
 */
import fs from 'node:fs';
import net from 'node:net';
import { killCriu } from '../criuproc.js';
import { CloseRequestWatcher } from '../pagetunnel.js';

/** How long it tries to connect (CRIU's dump may take a while before its page server listens). */
const CONNECT_FOR_MS = 180_000;
const RETRY_MS = 3;

function criuPid(pidFile: string): number | null {
  try {
    const n = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function connectSoon(port: number, until: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.destroy();
        if (e.code === 'ECONNREFUSED' && Date.now() < until) setTimeout(attempt, RETRY_MS);
        else reject(e);
      });
    };
    attempt();
  });
}

async function main(argv: string[]): Promise<void> {
  const port = Number(argv[0]);
  const pidFile = argv[1];
  if (!Number.isInteger(port) || port <= 0 || !pidFile) {
    process.stderr.write('usage: pagecarrier <port> <pid file>\n');
    process.exit(2);
  }
  // Nothing may reach CRIU before the connection exists; the agent's bytes wait in the pipe.
  process.stdin.pause();
  let sock: net.Socket;
  try {
    sock = await connectSoon(port, Date.now() + CONNECT_FOR_MS);
  } catch (e) {
    process.stderr.write(`pagecarrier: cannot connect to 127.0.0.1:${port}: ${(e as Error).message}\n`);
    process.exit(4);
  }
  sock.setNoDelay(true);
  const watcher = new CloseRequestWatcher();
  let criuOpen = true;
  // The agent's side went away (or broke) while the protocol was not closed: CRIU first, then us.
  // Without its PID yet (the agent died before it was written) no target has run anything: an
  // end of stream then only makes CRIU give up the dump and resume the source, which is right.
  const unclean = (): void => {
    const pid = criuPid(pidFile);
    if (criuOpen && !watcher.closeSeen && pid) killCriu(pid);
    sock.destroy();
    process.exit(3);
  };
  sock.on('error', () => {
    criuOpen = false;
    process.exit(4);
  });
  sock.on('close', () => {
    criuOpen = false;
    process.exit(0);
  });
  sock.on('data', (d: Buffer) => {
    if (!process.stdout.write(d)) {
      sock.pause();
      process.stdout.once('drain', () => sock.resume());
    }
  });
  sock.on('end', () => process.stdout.end());
  process.stdout.on('error', unclean);
  process.stdin.on('data', (d: Buffer) => {
    watcher.feed(d);
    if (!sock.write(d)) {
      process.stdin.pause();
      sock.once('drain', () => process.stdin.resume());
    }
  });
  process.stdin.on('end', () => (watcher.closeSeen ? sock.end() : unclean()));
  process.stdin.on('error', unclean);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, unclean);
  process.stdin.resume();
}

if (process.argv[1] && /pagecarrier\.js$/.test(process.argv[1])) void main(process.argv.slice(2));
