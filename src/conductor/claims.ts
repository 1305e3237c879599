/** This conductor's identity in the claims table, and taking and letting go of one record's claim. */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { ClaimOptions, ConductorDeps } from './options.js';
import type { ClaimKind } from './repository.js';

export class Claims {
  /** The configured claims, or a lone conductor's (owner host:pid, 60 s lease, takes every claim over at recover()). */
  readonly options: ClaimOptions;

  constructor(private readonly deps: ConductorDeps) {
    this.options = deps.opts.claims ?? { owner: `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, leaseMs: 60_000, takeOverPrefix: '' };
  }

  /** Who this conductor is in the claims table. */
  get owner(): string {
    return this.options.owner;
  }

  /** Take (or renew) the claim of one record. */
  claim(kind: ClaimKind, id: string): Promise<boolean> {
    return this.deps.repo.claim(kind, id, this.owner, this.options.leaseMs);
  }

  /** Claims a new record's id, then records it; a record that could not be written lets its claim go. */
  async claimNew(kind: ClaimKind, id: string, record: () => Promise<unknown>): Promise<void> {
    // A fresh uuid: nobody else can hold it, so the claim is ours.
    await this.claim(kind, id);
    try {
      await record();
    } catch (e) {
      await this.release(kind, id);
      throw e;
    }
  }

  async release(kind: ClaimKind, id: string): Promise<void> {
    await this.deps.repo
      .releaseClaim(kind, id, this.owner)
      .catch((e: unknown) => this.deps.log.warn({ [kind]: id, err: (e as Error).message }, 'could not release a claim'));
  }
}
