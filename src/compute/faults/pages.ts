/**
 * throttlePagesBytesPerSec: post-copy pages leave the source at most this fast, a window while
 * the restored process fetches them. A relay in front of the source's page tunnel: the target
 * connects to the relay, which passes every byte through unchanged (TLS, hello, pages), holding
 * the pages to the pace. The tunnel itself (pagetunnel.ts) knows nothing of it.
 */
import net from 'node:net';

export interface PagePaceRelay {
  port: number;
  /** Stop taking connections (those under way go on until either end closes). */
  close(): void;
}

/**
 * Listen on `bindAddress:port` (0 = any free port); each connection is carried to `upstream`
 * (the real tunnel), the bytes coming back from it at most `bytesPerSec`. Half-closes pass on as
 * they come, so the tunnel sees its peer end or vanish exactly as without the relay.
 */
export async function pagePaceRelay(o: {
  bindAddress: string;
  port: number;
  upstream: { host: string; port: number };
  bytesPerSec: number;
}): Promise<PagePaceRelay> {
  const server = net.createServer({ allowHalfOpen: true }, (peer) => {
    peer.setNoDelay(true);
    const up = net.connect({ host: o.upstream.host, port: o.upstream.port, allowHalfOpen: true });
    up.setNoDelay(true);
    peer.on('error', () => undefined);
    up.on('error', () => undefined);
    peer.pipe(up);
    up.on('data', (d: Buffer) => {
      const drained = peer.write(d);
      up.pause();
      const waits: Promise<unknown>[] = [new Promise((resolve) => setTimeout(resolve, Math.ceil((d.length * 1000) / o.bytesPerSec)))];
      if (!drained) waits.push(new Promise((resolve) => peer.once('drain', resolve)));
      void Promise.all(waits).then(() => up.resume());
    });
    up.once('end', () => peer.end());
    // A connection that broke breaks the other side too; one that closed cleanly ends it after its last bytes.
    up.once('close', (hadError) => (hadError ? peer.destroy() : peer.end()));
    peer.once('close', (hadError) => (hadError ? up.destroy() : up.end()));
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.bindAddress, () => resolve());
  });
  // A relay left behind (the page server ended without a peer) must not hold its process.
  server.unref();
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}
