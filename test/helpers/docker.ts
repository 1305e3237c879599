/** Docker helpers for integration tests: a dockerode client per dev-cloud host, and waiting on logs. */
import Docker from 'dockerode';
import { host } from './cloud.js';

export function engine(name: string): Docker {
  const socketPath = host(name).docker_host.replace(/^unix:\/\//, '');
  return new Docker({ socketPath });
}

/** The payload of Docker's multiplexed stream (8-byte frame headers), as text. */
export function demux(buf: Buffer): string {
  const out: string[] = [];
  for (let i = 0; i + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len).toString('utf8'));
    i += 8 + len;
  }
  return out.join('');
}

/** Stdout of a container so far (Docker's multiplexed log stream demuxed). */
export async function logs(d: Docker, id: string): Promise<string> {
  return demux((await d.getContainer(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
}

export async function lastNumber(d: Docker, id: string): Promise<number> {
  const lines = (await logs(d, id)).trim().split('\n').filter((l) => /^\d+$/.test(l.trim()));
  return lines.length ? Number(lines[lines.length - 1]) : NaN;
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

/** The engine's summary of the container with exactly this name, or null. */
export async function containerOn(d: Docker, name: string): Promise<Docker.ContainerInfo | null> {
  const list = await d.listContainers({ all: true, filters: { name: [`^/${name}$`] } });
  return list[0] ?? null;
}

export async function removeQuietly(d: Docker, idOrName: string): Promise<void> {
  try {
    await d.getContainer(idOrName).remove({ force: true, v: true });
  } catch {
    // already gone
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}
