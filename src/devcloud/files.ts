/**
 * Configuration files of the development cloud's services. `devcloud up` runs again while those
 * services run (and restart: the fault tests restart agents), so a file is replaced in one step
 * and only when its text changes: a service never reads a half-written or truncated file.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Writes `text` to `file` by rename, unless it already holds exactly that. Returns whether it wrote. */
export function writeIfChanged(file: string, text: string, mode = 0o644): boolean {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
  return true;
}
