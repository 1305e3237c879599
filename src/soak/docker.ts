/** Small dockerode helpers the soak and the integration tests share. */
import Docker from 'dockerode';
import type { CloudHost } from '../devcloud/status.js';

export function engineOf(h: Pick<CloudHost, 'docker_host'>): Docker {
  return new Docker({ socketPath: h.docker_host.replace(/^unix:\/\//, '') });
}

/** The payload of Docker's multiplexed stream (8-byte frame headers), as text. */
export function demux(buf: Buffer): string {
  const out: string[] = [];
  for (let i = 0; i + 8 <= buf.length;) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len).toString('utf8'));
    i += 8 + len;
  }
  return out.join('');
}

/** Run a command in a container and return its output (stdout and stderr, demuxed, trimmed). */
export async function execOut(d: Docker, id: string, cmd: string[]): Promise<string> {
  const ex = await d.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  return demux(Buffer.concat(chunks)).trim();
}

export async function removeQuietly(d: Docker, idOrName: string): Promise<void> {
  try {
    await d.getContainer(idOrName).remove({ force: true, v: true });
  } catch {
    // already gone
  }
}
