/**
 * Moving received trees into place on the target: rename when on the same filesystem (no
 * copy), `cp -a` otherwise; merging into an existing directory (overlay UpperDir, volume data).
 */
import fs from 'node:fs';
import path from 'node:path';
import { runOk } from './exec.js';

async function moveEntry(src: string, dst: string): Promise<void> {
  try {
    fs.renameSync(src, dst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await runOk('cp', ['-a', '--', src, dst]);
    fs.rmSync(src, { recursive: true, force: true });
  }
}

/** Replace `dst` (a directory) with `src`. */
export async function replaceDir(src: string, dst: string): Promise<void> {
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  await moveEntry(src, dst);
}

function copyMeta(src: string, dst: string) {
  const st = fs.lstatSync(src);
  fs.chownSync(dst, st.uid, st.gid);
  fs.chmodSync(dst, st.mode & 0o7777);
  fs.utimesSync(dst, st.atime, st.mtime);
}

/**
 * Merge the tree `src` into the directory `dst`: entries of src win; directories present on
 * both sides are merged recursively (a symlink in dst is never followed). src is consumed.
 */
export async function mergeInto(src: string, dst: string): Promise<void> {
  fs.mkdirSync(dst, { recursive: true });
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name);
    const d = path.join(dst, name);
    const ss = fs.lstatSync(s);
    const ds = fs.lstatSync(d, { throwIfNoEntry: false });
    if (ds && ss.isDirectory() && ds.isDirectory()) {
      await mergeInto(s, d);
      continue;
    }
    if (ds) fs.rmSync(d, { recursive: true, force: true });
    await moveEntry(s, d);
  }
  copyMeta(src, dst);
}

/** Empty a directory (keeps the directory itself). */
export function emptyDir(dir: string): void {
  for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
}

/** Bytes used by the files under `dir` (apparent sizes). */
export function treeBytes(dir: string): number {
  let total = 0;
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const q = path.join(p, e.name);
      if (e.isDirectory()) walk(q);
      else if (e.isFile()) total += fs.statSync(q).size;
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return total;
}
