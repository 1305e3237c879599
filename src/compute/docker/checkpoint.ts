/**
 * Checkpoint on the source and restore on the target, through Docker (API 1.41, experimental).
 * - Docker's API: POST /containers/{id}/checkpoints {CheckpointID, Exit: true}; the images land
 *   in <DockerRootDir>/containers/<id>/checkpoints/<name>/ (the default dir, so the source can
 *   roll back with a plain `start?checkpoint=<name>`).
 * - Fast path ([compute] fast_checkpoint): containerd's own checkpoint with an image path
 *   (`ctr ... tasks checkpoint --exit --image-path DIR`), which skips the content-store round trip
 *   (docs/platform-facts.md: 0.28 s instead of 4.6 s for Redis with 1M keys). Docker then sees the container
 *   exit, exactly as after its own checkpoint, and starts it from the same directory.
 * - Restore: the checkpoint is placed in the target's checkpoints dir, then start?checkpoint=<name>.
 *   Docker tars that folder into containerd's content store and containerd unpacks it again for
 *   runc (about 40 MB/s here: 1.5 s at 94 MB). startFromImages avoids the round trip: Docker gets a
 *   stand-in folder holding only what runc itself reads (descriptors.json), and CRIU reads the
 *   images where they are, named by `images-dir` in /etc/criu/runc.conf (which overrides what runc
 *   passes; docs/platform-facts.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { CheckpointFailed, InvalidInput, RestoreFailed } from '../../common/errors.js';
import { engineMessage } from './engineerror.js';
import { run } from './exec.js';
import { withLazyRuncConf } from './runcconf.js';
import { containerRunning, waitStopped } from './stopped.js';
import { sleep } from '../../common/sleep.js';

/**
 * Where a container's checkpoint lives. The directory is removed and replaced when a
 * checkpoint is placed, so neither part may climb: a container ID is 64 hex digits and a
 * checkpoint name one path component of Docker's alphabet (checkpointName's output).
 */
export function checkpointDir(dockerRoot: string, containerId: string, name: string): string {
  if (!/^[0-9a-f]{64}$/.test(containerId)) throw new InvalidInput(`not a full container ID: ${JSON.stringify(containerId)}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) throw new InvalidInput(`not a checkpoint name: ${JSON.stringify(name)}`);
  return path.join(dockerRoot, 'containers', containerId, 'checkpoints', name);
}

/** Checkpoint names Docker accepts, derived from the migration ID. */
export function checkpointName(migrationId: string): string {
  return `ferry-${migrationId.replace(/[^A-Za-z0-9_.-]/g, '-')}`.slice(0, 100);
}

/**
 * The engine's error, plus CRIU's own reason: Docker only names the log file
 * (".../criu-dump.log"), so its last Error lines are read and added when the file is there.
 */
function errText(e: unknown): string {
  const msg = engineMessage(e);
  const logPath = /(\/\S+criu-(?:dump|restore)\.log)/.exec(msg)?.[1];
  if (!logPath) return msg;
  try {
    const reasons = fs
      .readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => /Error|error/.test(l))
      .slice(-3)
      .map((l) => l.replace(/^\(\s*[\d.]+\)\s*/, '').trim());
    return reasons.length ? `${msg} | CRIU: ${reasons.join(' | ')}` : msg;
  } catch {
    return msg;
  }
}

export async function dockerCheckpoint(docker: Docker, containerId: string, name: string): Promise<void> {
  try {
    const c = docker.getContainer(containerId) as unknown as { createCheckpoint(o: Record<string, unknown>): Promise<unknown> };
    await c.createCheckpoint({ CheckpointID: name, Exit: true });
  } catch (e) {
    throw new CheckpointFailed(`checkpoint of ${containerId.slice(0, 12)} failed: ${errText(e)}`, { container: containerId });
  }
}

/** A fast checkpoint that returned: the images are complete and the container's tasks are gone. */
export interface FastCheckpointDone {
  /** The `ctr` call: containerd, runc and CRIU's dump. */
  ctr_ms: number;
  /**
   * Resolves once Docker shows the container exited (it learns of the exit from containerd's
   * event, some 60-100 ms later); rejects after 10 s. Nothing of the migration needs Docker's view
   * until a later step, so the caller waits for it outside the freeze.
   */
  exitSeen: Promise<void>;
}

export async function fastCheckpoint(opts: {
  docker: Docker;
  containerdAddress: string;
  dockerRoot: string;
  workDir: string;
  containerId: string;
  name: string;
}): Promise<FastCheckpointDone> {
  const dir = checkpointDir(opts.dockerRoot, opts.containerId, opts.name);
  const work = path.join(opts.workDir, 'criu-work', `${opts.containerId.slice(0, 12)}-${opts.name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(work, { recursive: true });
  const t0 = Date.now();
  const r = await run(
    'ctr',
    ['-a', opts.containerdAddress, '-n', 'moby', 'tasks', 'checkpoint', '--exit', '--image-path', dir, '--work-path', work, opts.containerId],
    { timeoutMs: 600_000 },
  );
  if (r.code !== 0) {
    let criuLog = '';
    try {
      criuLog = fs
        .readFileSync(path.join(work, 'dump.log'), 'utf8')
        .split('\n')
        .filter((l) => /Error|error/.test(l))
        .slice(-5)
        .join(' | ');
    } catch {
      /* no log */
    }
    fs.rmSync(dir, { recursive: true, force: true });
    throw new CheckpointFailed(`fast checkpoint of ${opts.containerId.slice(0, 12)} failed: ${(r.stderr || r.stdout).trim()} ${criuLog}`.trim(), {
      container: opts.containerId,
    });
  }
  const ctrMs = Date.now() - t0;
  fs.rmSync(work, { recursive: true, force: true });
  return { ctr_ms: ctrMs, exitSeen: exitSeen(opts.docker, opts.containerId) };
}

/** Until Docker no longer shows the container running (after containerd ended its task behind Docker's back). */
async function exitSeen(docker: Docker, containerId: string): Promise<void> {
  if (!(await waitStopped(containerRunning(docker.getContainer(containerId)), { timeoutMs: 10_000, intervalMs: 20 }))) {
    throw new CheckpointFailed(`container ${containerId.slice(0, 12)} still running 10 s after its fast checkpoint`, { container: containerId });
  }
}

/**
 * Start from a checkpoint. Docker 20.10 uploads the checkpoint into containerd's content store
 * and fails with "already exists" when a blob of the same digest is still there (e.g. from the
 * checkpoint just taken on this host, until containerd's GC has run): retry for a few seconds.
 */
export async function startFromCheckpoint(docker: Docker, containerId: string, name: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await startOnce(docker, containerId, name);
      return;
    } catch (e) {
      if (attempt >= 20 || !/already exists/.test((e as Error).message)) throw e;
      await sleep(250);
    }
  }
}

async function startOnce(docker: Docker, containerId: string, name: string): Promise<void> {
  // dockerode would also send its options as a JSON body, which the engine refuses on start:
  // dial the bare request with the query string.
  const modem = docker.modem as unknown as { dial(o: Record<string, unknown>, cb: (err: unknown, data: unknown) => void): void };
  try {
    await new Promise<void>((resolve, reject) => {
      modem.dial(
        {
          path: `/containers/${encodeURIComponent(containerId)}/start?`,
          method: 'POST',
          options: { _query: { checkpoint: name }, _body: {} }, // empty body is dropped
          statusCodes: { 204: true, 304: 'container already started', 404: 'no such container', 500: 'server error' },
        },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  } catch (e) {
    throw new RestoreFailed(`restore of ${containerId.slice(0, 12)} from checkpoint ${name} failed: ${errText(e)}`, { container: containerId });
  }
}

/** What runc itself reads from a checkpoint folder on restore (the container's stdio); CRIU reads the rest. */
const RUNC_FILE = 'descriptors.json';

/** Docker's name for the stand-in folder of checkpoint `name` during startFromImages. */
export function standInName(name: string): string {
  return `${name}.start`;
}

/** Whether startFromImages can start from this checkpoint folder (runc.conf takes plain paths only). */
export function canStartFromImages(images: string): boolean {
  return /^\/[A-Za-z0-9_./:-]+$/.test(images) && fs.existsSync(path.join(images, RUNC_FILE)) && fs.existsSync(path.join(images, 'inventory.img'));
}

/**
 * Start from checkpoint `name` (placed in the container's checkpoints folder) without its images
 * passing through containerd's content store: Docker starts from a stand-in folder with runc's
 * descriptors.json only, while runc.conf says `images-dir <the real folder>` for this one CRIU
 * run. runc.conf is one file for the machine, so this holds its lock exclusively until Docker's
 * start returned (other checkpoints and restores wait meanwhile). Returns how long the lock took.
 */
export async function startFromImages(docker: Docker, dockerRoot: string, containerId: string, name: string): Promise<{ lock_ms: number }> {
  const images = checkpointDir(dockerRoot, containerId, name);
  const standIn = checkpointDir(dockerRoot, containerId, standInName(name));
  fs.rmSync(standIn, { recursive: true, force: true });
  fs.mkdirSync(standIn, { recursive: true, mode: 0o700 });
  fs.copyFileSync(path.join(images, RUNC_FILE), path.join(standIn, RUNC_FILE));
  const t0 = Date.now();
  let lockMs = 0;
  try {
    await withLazyRuncConf([`images-dir ${images}`], async () => {
      lockMs = Date.now() - t0;
      await startFromCheckpoint(docker, containerId, standInName(name));
    });
  } finally {
    fs.rmSync(standIn, { recursive: true, force: true });
  }
  return { lock_ms: lockMs };
}
