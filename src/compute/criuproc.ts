/**
 * Ending CRIU processes by PID, checked against reuse: a post-copy source's CRIU must be
 * SIGKILLed (never sent an end of stream) to leave the frozen container whole.
 */
import fs from 'node:fs';

function commOf(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** SIGKILL `pid`; false when there was no such process (already gone) or it may not be signalled. */
export function sigkill(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL `pid` if it is still a process named `comm`; true if it was. */
export function killIfNamed(pid: number, comm: string): boolean {
  return commOf(pid) === comm && sigkill(pid);
}

/** SIGKILL `pid` if it is still a CRIU process (the PID may have been reused); true if it was. */
export function killCriu(pid: number): boolean {
  return killIfNamed(pid, 'criu');
}

/**
 * A source's page server left by an earlier run of the agent: CRIU first (so that the
 * carrier's closing is no end of stream it would act on), then the carrier. Returns what was ended.
 */
export function endOrphanedPageServer(criuPid: number, carrierPid: number | null): string[] {
  const ended: string[] = [];
  if (killCriu(criuPid)) ended.push(`criu ${criuPid}`);
  // The carrier runs as node (under nsenter, which execs it).
  if (carrierPid && killIfNamed(carrierPid, 'node')) ended.push(`page carrier ${carrierPid}`);
  return ended;
}
