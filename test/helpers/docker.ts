/** Docker helpers for integration tests: a dockerode client per dev-cloud host, and waiting on logs. */
import type Docker from 'dockerode';
import { demux, engineOf } from '../../src/soak/docker.js';
import { host } from './cloud.js';

export { demux, execOut, removeQuietly } from '../../src/soak/docker.js';

export function engine(name: string): Docker {
  return engineOf(host(name));
}

/** Stdout of a container so far (Docker's multiplexed log stream demuxed). */
export async function logs(d: Docker, id: string): Promise<string> {
  return demux((await d.getContainer(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
}

export async function lastNumber(d: Docker, id: string): Promise<number> {
  const lines = (await logs(d, id))
    .trim()
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()));
  return lines.length ? Number(lines[lines.length - 1]) : NaN;
}

/** The engine's summary of the container with exactly this name, or null. */
export async function containerOn(d: Docker, name: string): Promise<Docker.ContainerInfo | null> {
  const list = await d.listContainers({ all: true, filters: { name: [`^/${name}$`] } });
  return list[0] ?? null;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}
