/**
 * Whether CRIU on this host can read the resource limits of a container's processes.
 *
 * CRIU dumps each process's rlimits with prlimit64(pid, ...). The kernel allows that on another
 * task only when the caller's uid and gid equal all of the task's real, effective and saved ids,
 * or when the caller has CAP_SYS_RESOURCE. Root without that capability (as on some sandboxed
 * hosts) therefore cannot dump a process that runs as another user, and Docker reports only
 * "criu failed: type NOTIFY errno 0" from inside the freeze. Ferry's CRIU patch
 * (scripts/criu/) reads the limits from /proc/PID/limits instead, and a build with it says so in
 * `criu --version`. Without either, the source's pre-check refuses such a container up front,
 * naming the process and what to change.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Refusal } from '../driver.js';
import type { CriuStatus } from './criu.js';

/** Linux's CAP_SYS_RESOURCE bit in /proc/PID/status's Cap* masks. */
const CAP_SYS_RESOURCE = 24n;

export interface ProcessCredentials {
  pid: number;
  /** Real, effective and saved uid. */
  uids: number[];
  /** Real, effective and saved gid. */
  gids: number[];
}

/** True when a CapEff hex mask (as /proc/PID/status prints it) holds CAP_SYS_RESOURCE. */
export function hasSysResource(capEffHex: string): boolean {
  if (!/^[0-9a-fA-F]{1,16}$/.test(capEffHex)) return false;
  return ((BigInt(`0x${capEffHex}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

/** The effective capability mask of this process (CRIU runs under dockerd, with the same root). */
export function ownCapEff(procRoot = '/proc'): string {
  const status = fs.readFileSync(path.join(procRoot, 'self', 'status'), 'utf8');
  return /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status)?.[1] ?? '';
}

function idsOf(status: string, key: 'Uid' | 'Gid'): number[] {
  const m = new RegExp(`^${key}:\\s*(\\d+)\\s+(\\d+)\\s+(\\d+)`, 'm').exec(status);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
}

function parentOf(stat: string): number | null {
  // The command name (field 2) may hold spaces and parentheses: the fields after its last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(rest[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null; // the process ended meanwhile
  }
}

/** Whether CRIU here can dump another user's processes: root has CAP_SYS_RESOURCE, or the CRIU in use carries Ferry's patch. */
export function canReadForeignLimits(capEffHex: string, criu: Pick<CriuStatus, 'readsLimitsFromProc'>): boolean {
  return hasSysResource(capEffHex) || criu.readsLimitsFromProc;
}

/** The credentials of a container's init process and all its descendants, read from /proc. */
export function processTree(initPid: number, procRoot = '/proc'): ProcessCredentials[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readOrNull(path.join(procRoot, entry, 'stat'));
    const ppid = stat ? parentOf(stat) : null;
    if (ppid === null) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: ProcessCredentials[] = [];
  const pending = [initPid];
  const seen = new Set<number>();
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const status = readOrNull(path.join(procRoot, String(pid), 'status'));
    if (status) out.push({ pid, uids: idsOf(status, 'Uid'), gids: idsOf(status, 'Gid') });
    pending.push(...(children.get(pid) ?? []));
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** The refusal for a container with processes whose limits CRIU cannot read here, else null. */
export function foreignCredentialsRefusal(args: {
  container: string;
  host: string;
  processes: ProcessCredentials[];
  canReadForeignLimits: boolean;
}): Refusal | null {
  if (args.canReadForeignLimits) return null;
  const foreign = args.processes.filter((p) => [...p.uids, ...p.gids].some((id) => id !== 0));
  if (foreign.length === 0) return null;
  const first = foreign[0];
  const more = foreign.length > 1 ? ` and ${foreign.length - 1} more` : '';
  return {
    reason: 'foreign_credentials',
    message:
      `container ${args.container} runs processes as another user than root (pid ${first.pid}: uid ${first.uids.join('/')}, ` +
      `gid ${first.gids.join('/')}${more}): CRIU on ${args.host} cannot read their resource limits, since it is not built with ` +
      "Ferry's rlimits patch and root there lacks CAP_SYS_RESOURCE; run its processes as root, install the patched CRIU " +
      '(scripts/install.sh), or give the host that capability',
  };
}
