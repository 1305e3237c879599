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
 * Usage: node pagecarrier.js <port> <criu pid>
 */
import net from 'node:net';
import { killCriu } from '../criuproc.js';
import { CloseRequestWatcher } from '../pagetunnel.js';

function main(argv: string[]): void {
  const port = Number(argv[0]);
  const criuPid = Number(argv[1]);
  if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(criuPid) || criuPid <= 0) {
    process.stderr.write('usage: pagecarrier <port> <criu pid>\n');
    process.exit(2);
  }
  const watcher = new CloseRequestWatcher();
  let criuOpen = true;
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  sock.setNoDelay(true);
  // The agent's side went away (or broke) while the protocol was not closed: CRIU first, then us.
  const unclean = (): void => {
    if (criuOpen && !watcher.closeSeen) killCriu(criuPid);
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
}

if (process.argv[1] && /pagecarrier\.js$/.test(process.argv[1])) main(process.argv.slice(2));
