/** The conductor's read side: hosts, containers and migrations as recorded. */
import { MigrationNotFound } from '../common/errors.js';
import type { ComputeHost, Container } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import { toComputeHost } from './hosts.js';
import type { ContainerListRequest, MigrationFilters } from './interface.js';
import type { ConductorDeps } from './options.js';

export class Queries {
  constructor(private readonly deps: ConductorDeps) {}

  async listHosts(now = Date.now()): Promise<ComputeHost[]> {
    return (await this.deps.repo.listHostRecords()).map((r) => toComputeHost(r, now, this.deps.opts.serviceDownTime));
  }

  async listContainers(page: ContainerListRequest = {}): Promise<Container[]> {
    return (await this.deps.repo.listContainers(page)).map(({ id, name, host, image, status, project_id }) => ({
      id,
      name,
      host,
      image,
      status,
      project_id: project_id ?? null,
    }));
  }

  async getMigration(uuid: string): Promise<Migration> {
    const m = await this.deps.repo.getMigration(uuid);
    if (!m) throw new MigrationNotFound(`migration ${uuid} could not be found`);
    return m;
  }

  listMigrations(filters: MigrationFilters = {}): Promise<Migration[]> {
    return this.deps.repo.listMigrations(filters);
  }
}
