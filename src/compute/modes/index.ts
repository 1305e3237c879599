/**
 * The memory modes this agent knows, and which one a step or a record means. Adding a mode is
 * adding its file and its line in `build` (and in the conductor's conductor/modes/index.ts).
 *
 * Pre-copy is not offered: no engine driver can pre-dump (Docker's checkpoint API has none). The
 * heartbeat still reports it as not possible, with the reason (the hosts API and conductors
 * before this one read `modes.pre_copy`), and a conductor that names it is refused, saying why.
 */
import { InvalidMigrationState } from '../../common/errors.js';
import type { HostModes } from '../driver.js';
import type { PostMigrationRequest } from '../methods.js';
import type { AgentRecord } from '../records.js';
import type { MemoryModeName } from '../steps.js';
import type { MemoryMode, ModeHost } from './interface.js';
import { lazyPagesSupport, postCopy, postCopyOffer, type PostCopyOptions } from './post-copy.js';
import { stopAndCopy } from './stop-and-copy.js';

export type { Frozen, MemoryMode, ModeHost } from './interface.js';

/** What the modes take from the agent's options. */
export type ModeOptions = PostCopyOptions;

const DEFAULT_MODE: MemoryModeName = 'stop-and-copy';

export class MemoryModes {
  private readonly byName: ReadonlyMap<string, MemoryMode>;

  constructor(
    private readonly host: ModeHost,
    private readonly opts: ModeOptions,
  ) {
    const build: MemoryMode[] = [stopAndCopy(host), postCopy(host, opts)];
    this.byName = new Map(build.map((m) => [m.name, m]));
  }

  /**
   * The mode a step asks for (none: stop-and-copy). One this agent does not have (pre-copy from a
   * conductor of an earlier release) is refused with the reason this host reports for it.
   */
  async requested(name: string | null | undefined): Promise<MemoryMode> {
    const mode = this.byName.get(name ?? DEFAULT_MODE);
    if (mode) return mode;
    const reported = (await this.host.offered()).pre_copy?.reason;
    throw new InvalidMigrationState(`${name} is not possible on ${this.host.host}: ${reported ?? 'this agent does not offer it'}`);
  }

  /** The mode a record moves memory by (records before modes existed: stop-and-copy). */
  of(r: AgentRecord): MemoryMode {
    return this.byName.get(r.mode ?? DEFAULT_MODE) ?? (this.byName.get(DEFAULT_MODE) as MemoryMode);
  }

  /** The mode a restore request asks for: the first other than the default that recognises it. */
  forRestore(req: PostMigrationRequest): MemoryMode {
    for (const m of this.byName.values()) if (m.name !== DEFAULT_MODE && m.matchesRestore(req)) return m;
    return this.byName.get(DEFAULT_MODE) as MemoryMode;
  }

  /** The modes this host offers beyond stop-and-copy: the engine's support, and the deployment's permission. */
  async offered(): Promise<HostModes> {
    const s = await lazyPagesSupport(this.host.host, this.host.driver);
    if (!this.host.driver.lazyPages) return { post_copy: { ok: s.ok, reason: s.reason }, pre_copy: s.pre_copy };
    return {
      post_copy: postCopyOffer(this.host.host, this.opts.permitPostCopy ?? false, s),
      // Reported, never offered: dirty tracking in the kernel is not enough, the engine must be able to pre-dump.
      pre_copy: !s.pre_copy.ok
        ? s.pre_copy
        : { ok: false, reason: `the ${this.host.host} engine driver cannot pre-dump (Docker's checkpoint API has no pre-dump)` },
    };
  }
}
