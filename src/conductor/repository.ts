/**
 * Persistence of migrations, hosts, containers, evacuations and the conductors' claims. The
 * conductor talks to the Repository interface only (asynchronous, so that a networked database
 * fits behind it); SqlRepository is written once over the SQL driver (src/db/driver.ts) and
 * runs on the embedded SQLite and on MariaDB/MySQL alike.
 */
import type { SqlDriver } from '../db/driver.js';
import { SqliteDriver, type Db } from '../db/sqlite.js';
import type { Evacuation } from '../objects/evacuation.js';
import type { ContainerSummary, HostState, HostStatus } from '../objects/host.js';
import type { Migration } from '../objects/migration.js';
import type { ContainerListRequest, MigrationFilters } from './interface.js';
import { SqlClaims, type Claim, type ClaimKind, type ClaimStore } from './repository/claims.js';
import { SqlContainers, type ContainerChange, type ContainerRecord, type ContainerStore } from './repository/containers.js';
import { SqlEvacuations, type EvacuationContainerPatch, type EvacuationPatch, type EvacuationRecord, type EvacuationStore } from './repository/evacuations.js';
import { SqlHosts, type HostRecord, type HostStore } from './repository/hosts.js';
import { SqlMigrations, type MigrationGuard, type MigrationState, type MigrationStore, type StepResults } from './repository/migrations.js';
import { SqlServices, type ServiceRecord, type ServiceStore } from './repository/services.js';
import type { Fence } from './repository/sql.js';

export type { Claim, ClaimKind } from './repository/claims.js';
export { REMOVED, type ContainerChange, type ContainerRecord } from './repository/containers.js';
export type { EvacuationContainerPatch, EvacuationPatch, EvacuationRecord } from './repository/evacuations.js';
export { factsOf, type HostRecord } from './repository/hosts.js';
export type { MigrationGuard, MigrationState, StepResults } from './repository/migrations.js';
export type { ServiceRecord } from './repository/services.js';

/** Everything the conductor asks of its database, one part per aggregate (src/conductor/repository/). */
export interface Repository extends MigrationStore, HostStore, ContainerStore, ServiceStore, EvacuationStore, ClaimStore {
  /**
   * This repository as seen by the holder of one claim: its writes to that record (status,
   * steps, the container's new host; an evacuation's record and entries) happen only while
   * `owner` still holds the claim, else they throw ClaimLost and change nothing.
   */
  fenced(kind: ClaimKind, id: string, owner: string): Repository;
}

/** The repository over any SQL driver (SQLite, MariaDB/MySQL): each aggregate's part, composed. */
export class SqlRepository implements Repository {
  private readonly migrations: SqlMigrations;
  private readonly containers: SqlContainers;
  private readonly hosts: SqlHosts;
  private readonly services: SqlServices;
  private readonly evacuations: SqlEvacuations;
  private readonly claims: SqlClaims;

  constructor(
    protected readonly driver: SqlDriver,
    /** Set on a fenced view (fenced()): writes to this record need the claim. */
    fence?: Fence,
  ) {
    this.migrations = new SqlMigrations(driver, fence);
    this.containers = new SqlContainers(driver, fence);
    this.hosts = new SqlHosts(driver, fence, this.containers);
    this.services = new SqlServices(driver, fence);
    this.evacuations = new SqlEvacuations(driver, fence);
    this.claims = new SqlClaims(driver, fence);
  }

  // ---- migrations ----
  createMigration(m: Migration): Promise<void> {
    return this.migrations.createMigration(m);
  }

  updateMigration(uuid: string, patch: Partial<Migration>): Promise<Migration> {
    return this.migrations.updateMigration(uuid, patch);
  }

  updateMigrationIf(uuid: string, patch: Partial<Migration>, guard: MigrationGuard): Promise<{ applied: boolean; migration: Migration }> {
    return this.migrations.updateMigrationIf(uuid, patch, guard);
  }

  getMigration(uuid: string): Promise<Migration | null> {
    return this.migrations.getMigration(uuid);
  }

  listMigrations(filters?: MigrationFilters): Promise<Migration[]> {
    return this.migrations.listMigrations(filters);
  }

  unfinishedMigrations(): Promise<Migration[]> {
    return this.migrations.unfinishedMigrations();
  }

  unfinishedMigrationOf(containerId: string): Promise<Migration | null> {
    return this.migrations.unfinishedMigrationOf(containerId);
  }

  incomingCounts(): Promise<Map<string, number>> {
    return this.migrations.incomingCounts();
  }

  migrationStates(uuids: readonly string[]): Promise<Map<string, MigrationState>> {
    return this.migrations.migrationStates(uuids);
  }

  getSteps(uuid: string): Promise<StepResults> {
    return this.migrations.getSteps(uuid);
  }

  saveStep(uuid: string, step: string, result: unknown): Promise<void> {
    return this.migrations.saveStep(uuid, step, result);
  }

  // ---- hosts ----
  saveHostReport(name: string, report: HostState, at: string, takenAt?: string): Promise<void> {
    return this.hosts.saveHostReport(name, report, at, takenAt);
  }

  listHostRecords(): Promise<HostRecord[]> {
    return this.hosts.listHostRecords();
  }

  getHostRecord(name: string): Promise<HostRecord | null> {
    return this.hosts.getHostRecord(name);
  }

  setHostStatus(name: string, status: HostStatus, reason: string | null): Promise<HostRecord | null> {
    return this.hosts.setHostStatus(name, status, reason);
  }

  // ---- containers ----
  saveInventory(host: string, containers: ContainerSummary[], takenAt: string): Promise<void> {
    return this.containers.saveInventory(host, containers, takenAt);
  }

  applyContainerChange(host: string, change: ContainerChange): Promise<boolean> {
    return this.containers.applyContainerChange(host, change);
  }

  listContainers(page?: ContainerListRequest): Promise<ContainerRecord[]> {
    return this.containers.listContainers(page);
  }

  findContainers(id: string, names: readonly string[]): Promise<ContainerRecord[]> {
    return this.containers.findContainers(id, names);
  }

  containersByIdPrefix(prefix: string): Promise<ContainerRecord[]> {
    return this.containers.containersByIdPrefix(prefix);
  }

  hostContainers(host: string): Promise<ContainerRecord[]> {
    return this.containers.hostContainers(host);
  }

  containerCounts(): Promise<Map<string, number>> {
    return this.containers.containerCounts();
  }

  setContainerHost(id: string, host: string, newId?: string): Promise<void> {
    return this.containers.setContainerHost(id, host, newId);
  }

  // ---- services ----
  saveService(rec: Omit<ServiceRecord, 'updated_at'>, at: string): Promise<void> {
    return this.services.saveService(rec, at);
  }

  listServices(): Promise<ServiceRecord[]> {
    return this.services.listServices();
  }

  // ---- evacuations ----
  createEvacuation(e: EvacuationRecord): Promise<void> {
    return this.evacuations.createEvacuation(e);
  }

  getEvacuation(uuid: string): Promise<Evacuation | null> {
    return this.evacuations.getEvacuation(uuid);
  }

  listEvacuations(filters?: { host?: string; limit?: number }): Promise<Evacuation[]> {
    return this.evacuations.listEvacuations(filters);
  }

  updateEvacuation(uuid: string, patch: EvacuationPatch): Promise<Evacuation> {
    return this.evacuations.updateEvacuation(uuid, patch);
  }

  updateEvacuationContainer(uuid: string, containerId: string, patch: EvacuationContainerPatch): Promise<void> {
    return this.evacuations.updateEvacuationContainer(uuid, containerId, patch);
  }

  unfinishedEvacuations(): Promise<Evacuation[]> {
    return this.evacuations.unfinishedEvacuations();
  }

  // ---- claims ----
  claim(kind: ClaimKind, id: string, owner: string, leaseMs: number): Promise<boolean> {
    return this.claims.claim(kind, id, owner, leaseMs);
  }

  renewClaims(owner: string, leaseMs: number): Promise<number> {
    return this.claims.renewClaims(owner, leaseMs);
  }

  releaseClaim(kind: ClaimKind, id: string, owner: string): Promise<void> {
    return this.claims.releaseClaim(kind, id, owner);
  }

  expireClaims(ownerPrefix: string, keep: string): Promise<number> {
    return this.claims.expireClaims(ownerPrefix, keep);
  }

  claimable(kind: ClaimKind): Promise<string[]> {
    return this.claims.claimable(kind);
  }

  getClaim(kind: ClaimKind, id: string): Promise<Claim | null> {
    return this.claims.getClaim(kind, id);
  }

  admit(uuid: string, owner: string, hosts: readonly string[], maxPerHost: number): Promise<boolean> {
    return this.claims.admit(uuid, owner, hosts, maxPerHost);
  }

  fenced(kind: ClaimKind, id: string, owner: string): Repository {
    return new SqlRepository(this.driver, { kind, id, owner });
  }

  /** The driver (for closing it, or for tools that need plain SQL). */
  get sql(): SqlDriver {
    return this.driver;
  }
}

/** The embedded backend over a better-sqlite3 handle (what callers that open the file themselves use). */
export class SqliteRepository extends SqlRepository {
  constructor(db: Db) {
    super(SqliteDriver.for(db));
  }
}
