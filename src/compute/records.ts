/**
 * What one compute agent remembers of its part in each migration, one small JSON file per
 * migration (<work_dir>/migrations/<id>/record.json), written atomically. It is what makes
 * every step repeatable: a step that already happened answers from here instead of running
 * twice, and an agent that restarts finds the migrations it left unfinished.
 *
 * `stage` is this host's own progress, not the migration's status (the conductor owns that):
 *   source: checked -> frozen (checkpoint taken, container stopped) -> sent -> (removed at cleanup)
 *   target: checked -> prepared (image, shell) -> received (all parts) -> restored
 *   either: rolled_back
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidInput, InvalidStageTransition } from '../common/errors.js';
import { MIGRATION_ID_RE } from './datachannel/protocol.js';
import type { ContainerSpec } from './driver.js';
import type { LiveMigrationResult, MemoryModeName, PostMigrationResult, PreMigrationResult } from './steps.js';

export type Stage = 'checked' | 'prepared' | 'frozen' | 'sent' | 'received' | 'restored' | 'rolled_back';

export interface AgentRecord {
  migration_id: string;
  role: 'source' | 'target';
  stage: Stage;
  /** The peer host: the target for a source record, the source for a target record. */
  peer_host: string | null;
  container_id: string | null;
  container_name: string | null;
  spec: ContainerSpec | null;
  checkpoint_name: string | null;
  /** How this host moves the memory (absent in records written before post-copy: stop-and-copy). */
  mode?: MemoryModeName;
  /** Source, post-copy: where its page server waits for the target. */
  page_server?: { address: string; port: number; host?: string | null; token?: string | null } | null;
  /** Source, post-copy: the PID of CRIU's page server (in the engine's namespace), for the operator. */
  page_server_pid?: number | null;
  /** Source, post-copy: the PID of the page carrier holding the connection to that page server. */
  page_carrier_pid?: number | null;
  created_volumes: string[];
  image_loaded: boolean;
  live?: LiveMigrationResult;
  pre?: Omit<PreMigrationResult, 'upload'>;
  post?: PostMigrationResult;
  received?: { part: string; bytes: number; sha256: string; entries: number }[];
  updated_at: string;
}

/**
 * Which stage may follow which on one host (a stage may also be set again: steps repeat). A
 * source that resumes after a restart and finds its container still running was never frozen:
 * frozen -> checked. Every change goes through `advance`.
 */
const NEXT_STAGE: Record<Stage, readonly Stage[]> = {
  checked: ['prepared', 'frozen', 'rolled_back'],
  prepared: ['received', 'rolled_back'],
  frozen: ['sent', 'checked', 'rolled_back'],
  sent: ['rolled_back'],
  received: ['restored', 'rolled_back'],
  restored: [],
  rolled_back: [],
};

export function canAdvance(from: Stage, to: Stage): boolean {
  return from === to || NEXT_STAGE[from].includes(to);
}

/** Move the record to `to`; InvalidStageTransition when `to` cannot follow its stage. */
export function advance(r: AgentRecord, to: Stage): void {
  if (!canAdvance(r.stage, to)) {
    throw new InvalidStageTransition(`migration ${r.migration_id} cannot go from ${r.stage} to ${to} on this host (${r.role})`, {
      migration_id: r.migration_id,
      from: r.stage,
      to,
    });
  }
  r.stage = to;
}

/** Stages after which nothing more happens on this host for the migration. */
export function isSettled(r: AgentRecord): boolean {
  return r.stage === 'restored' || r.stage === 'rolled_back';
}

/** Records hold the container's spec, environment included: only the agent's user reads them. */
const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;

export class AgentRecordStore {
  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: PRIVATE_DIR_MODE });
    // Also a folder an older agent made with the umask's mode.
    fs.chmodSync(root, PRIVATE_DIR_MODE);
  }

  /** The record's folder; refuses IDs that are not plain names (they become paths). */
  dir(id: string): string {
    if (!MIGRATION_ID_RE.test(id)) throw new InvalidInput(`bad migration id ${JSON.stringify(id)}`);
    return path.join(this.root, id);
  }

  load(id: string): AgentRecord | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir(id), 'record.json'), 'utf8')) as AgentRecord;
    } catch {
      return null;
    }
  }

  save(r: AgentRecord): void {
    r.updated_at = new Date().toISOString();
    fs.mkdirSync(this.dir(r.migration_id), { recursive: true, mode: PRIVATE_DIR_MODE });
    const f = path.join(this.dir(r.migration_id), 'record.json');
    // A stale .tmp keeps its old mode through writeFileSync: start from none.
    fs.rmSync(`${f}.tmp`, { force: true });
    fs.writeFileSync(`${f}.tmp`, JSON.stringify(r, null, 1), { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    fs.renameSync(`${f}.tmp`, f);
  }

  create(id: string, role: AgentRecord['role'], peer: string | null): AgentRecord {
    return {
      migration_id: id,
      role,
      stage: 'checked',
      peer_host: peer,
      container_id: null,
      container_name: null,
      spec: null,
      checkpoint_name: null,
      created_volumes: [],
      image_loaded: false,
      updated_at: '',
    };
  }

  remove(id: string): void {
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }

  all(): AgentRecord[] {
    const out: AgentRecord[] = [];
    for (const id of fs.readdirSync(this.root)) {
      if (!MIGRATION_ID_RE.test(id)) continue;
      const r = this.load(id);
      if (r) out.push(r);
    }
    return out;
  }
}
