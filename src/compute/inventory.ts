/** The containers an engine has, for the heartbeat. */
import type { ContainerSummary } from '../objects/host.js';
import { dockerFromUrl } from './docker/driver.js';

export async function listContainers(dockerUrl: string): Promise<ContainerSummary[]> {
  const docker = dockerFromUrl(dockerUrl);
  const list = await docker.listContainers({ all: true });
  return list.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
    image: c.Image,
    status: c.State,
  }));
}
