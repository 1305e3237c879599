/**
 * With the embedded SQLite, one conductor only: a SQLite file is local to one machine and
 * serialises every writer, so several conductors would gain nothing and could not see each
 * other's liveness. A lock file beside the database names the conductor that uses it; a second
 * one refuses to start. A lock left by a process that is gone (SIGKILL) is taken over.
 */
import fs from 'node:fs';
import { ConfigError } from '../common/errors.js';

interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
}

function holder(file: string): LockInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    process.kill(info.pid, 0);
    // A PID reused by an unrelated process does not hold the lock.
    const cmdline = fs.readFileSync(`/proc/${info.pid}/cmdline`, 'utf8');
    return cmdline.includes('conductor') ? info : null;
  } catch {
    return null;
  }
}

/** Take the single-conductor lock of SQLite database `dbFile`; returns its release. Throws ConfigError when another conductor holds it. */
export function lockSingleConductor(dbFile: string, host: string): { file: string; release: () => void } {
  const file = `${dbFile}.conductor.lock`;
  const mine: LockInfo = { pid: process.pid, host, started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      return {
        file,
        release: () => {
          if (holder(file)?.pid === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const other = holder(file);
      if (other && other.pid !== process.pid) {
        throw new ConfigError(
          `another ferry-conductor (PID ${other.pid}, host ${other.host}, since ${other.started_at}) uses the SQLite database ${dbFile}: ` +
            'with SQLite a single conductor runs; for several, use MariaDB ([database] connection = mysql+pymysql://USER:PASS@HOST/ferry)',
        );
      }
      fs.rmSync(file, { force: true }); // left by a conductor that is gone
    }
  }
  throw new ConfigError(`could not take the single-conductor lock ${file}`);
}
