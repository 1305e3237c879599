/**
 * One change to the dev cloud's services at a time across processes (tests, helpers and the
 * CLI restart services concurrently): an exclusive lock file holding its owner's PID; a lock
 * whose owner died is taken over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../common/sleep.js';
import { stateDir } from './layout.js';
import { pidAlive } from './proc.js';

const lockFile = path.join(stateDir, 'run', 'services.lock');

function tryTake(): boolean {
  try {
    fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const owner = Number(fs.readFileSync(lockFile, { encoding: 'utf8', flag: 'a+' }).trim());
    if (!owner || !pidAlive(owner)) fs.rmSync(lockFile, { force: true });
    return false;
  }
}

/** Run `fn` while holding the services lock (waits up to `timeoutMs` for it). */
export async function withServicesLock<T>(fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  while (!tryTake()) {
    if (Date.now() > deadline) throw new Error(`the dev cloud's services are locked by another process (${lockFile})`);
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}
