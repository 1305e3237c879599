/**
 * Peak RSS of Ferry's services (and, for context, the engines) while migrations run: VmRSS
 * sampled from /proc/PID/status every 100 ms, attributed to the current label
 * ("<method>/<workload>"), plus each process's VmHWM (its lifetime peak) at the end.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Watched {
  name: string;
  pid: number;
}

export interface MemoryReport {
  /** name -> label -> peak VmRSS bytes seen while that label was current. */
  peak_rss: Record<string, Record<string, number>>;
  /** name -> VmHWM bytes at the end (peak since the process started). */
  hwm: Record<string, number | null>;
  pids: Record<string, number>;
}

export function readStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function readPid(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** containerd started by a dockerd: its child process named containerd. */
function childNamed(ppid: number, comm: string): number | null {
  try {
    for (const c of fs.readFileSync(`/proc/${ppid}/task/${ppid}/children`, 'utf8').trim().split(/\s+/)) {
      if (!c) continue;
      if (fs.readFileSync(`/proc/${c}/comm`, 'utf8').trim() === comm) return Number(c);
    }
  } catch {
    /* gone */
  }
  return null;
}

/** Ferry's services from .devcloud/run/*.pid, the engines' dockerd and containerd, and this process. */
export function watchedProcesses(stateDir: string): Watched[] {
  const run = path.join(stateDir, 'run');
  const out: Watched[] = [];
  for (const name of ['ferry-api', 'ferry-conductor', 'ferry-compute-compute1', 'ferry-compute-compute2']) {
    const pid = readPid(path.join(run, `${name}.pid`));
    if (pid) out.push({ name, pid });
  }
  out.push({ name: 'bench (engine in-process)', pid: process.pid });
  for (const h of ['compute1', 'compute2']) {
    const d = readPid(path.join(run, `dockerd-${h}.pid`));
    if (!d) continue;
    out.push({ name: `dockerd-${h}`, pid: d });
    const c = childNamed(d, 'containerd');
    if (c) out.push({ name: `containerd-${h}`, pid: c });
  }
  return out;
}

export class MemorySampler {
  private timer: NodeJS.Timeout | null = null;
  private label: string | null = null;
  private readonly peak: Record<string, Record<string, number>> = {};
  private procs: Watched[];

  constructor(private readonly stateDir: string) {
    this.procs = watchedProcesses(stateDir);
  }

  start(everyMs = 100): void {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  /** Samples go to `label` until the next call; null pauses attribution. */
  setLabel(label: string | null): void {
    // A service restarted by another test has a new PID: look them up again.
    if (label) this.procs = watchedProcesses(this.stateDir);
    this.label = label;
  }

  private sample(): void {
    if (!this.label) return;
    for (const p of this.procs) {
      const rss = readStatusKb(p.pid, 'VmRSS');
      if (rss === null) continue;
      const byLabel = (this.peak[p.name] ??= {});
      byLabel[this.label] = Math.max(byLabel[this.label] ?? 0, rss);
    }
  }

  stop(): MemoryReport {
    if (this.timer) clearInterval(this.timer);
    const hwm: Record<string, number | null> = {};
    const pids: Record<string, number> = {};
    for (const p of watchedProcesses(this.stateDir)) {
      hwm[p.name] = readStatusKb(p.pid, 'VmHWM');
      pids[p.name] = p.pid;
    }
    return { peak_rss: this.peak, hwm, pids };
  }
}
