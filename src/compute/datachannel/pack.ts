/**
 * Packing a directory tree into a tar stream on the sending side: GNU tar (native speed,
 * keeps owners, modes, whiteout device nodes and the overlay "opaque" xattr of the rootfs diff).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { PartKind } from './tarsafe.js';

export interface PackedTree {
  stream: Readable;
  /** Resolves when tar has exited successfully; rejects with its stderr otherwise. */
  done: Promise<void>;
  kill(): void;
}

export function tarArgs(dir: string, kind: PartKind): string[] {
  // --sparse: holes travel as a map, not as zeros (the receiver writes them back as holes, tarsafe.ts).
  const args = ['-c', '-f', '-', '--format=posix', '--sparse', '--numeric-owner', '--pax-option=delete=atime,delete=ctime'];
  if (kind === 'rootfs') args.push('--xattrs', '--xattrs-include=trusted.overlay.opaque', '--xattrs-include=user.*');
  else if (kind === 'volume') args.push('--xattrs', '--xattrs-include=user.*');
  args.push('-C', dir, '.');
  return args;
}

export function packTree(dir: string, kind: PartKind): PackedTree {
  const child = spawn('tar', tarArgs(dir, kind), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      // 1 = "some files differ/changed while read": not expected after the freeze, still a failure for safety.
      if (code === 0) resolve();
      else reject(new Error(`tar of ${dir} failed (${code ?? signal}): ${err.trim().slice(-1000)}`));
    });
  });
  done.catch(() => undefined);
  // Take the output at once: Node discards ("flushes") the stdout of a child that exits before
  // anyone read it, and a small tree is packed before the receiver has said "100 Continue".
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  child.stdout.pipe(out);
  return { stream: out, done, kill: () => child.kill('SIGKILL') };
}

/**
 * What the sender declares for a tree before packing it (the receiver's quota): the content
 * bytes of its regular files and its entries, root included, as tar will list them.
 */
export function treeStats(dir: string): { bytes: number; entries: number } {
  let bytes = 0;
  let entries = 1;
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const q = path.join(p, e.name);
      entries++;
      if (e.isDirectory()) walk(q);
      else if (e.isFile()) bytes += fs.lstatSync(q).size;
    }
  };
  walk(dir);
  return { bytes, entries };
}
