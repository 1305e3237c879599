/**
 * The pre-check for processes whose rlimits CRIU cannot read: the capability bit, the process tree
 * read from a /proc laid out in a temporary folder, and the refusal's wording.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from '@jest/globals';
import { judgeCriu } from '../../../src/compute/docker/criu.js';
import { canReadForeignLimits, foreignCredentialsRefusal, hasSysResource, processTree } from '../../../src/compute/docker/rlimits.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A fake /proc: pid -> [ppid, uid, gid, comm]. */
function fakeProc(tasks: Record<number, [number, number, number, string]>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-proc-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'self'));
  for (const [pid, [ppid, uid, gid, comm]] of Object.entries(tasks)) {
    const dir = path.join(root, pid);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'stat'), `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560\n`);
    fs.writeFileSync(path.join(dir, 'status'), `Name:\t${comm}\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${gid}\t${gid}\t${gid}\t${gid}\n`);
  }
  return root;
}

test("CAP_SYS_RESOURCE is bit 24 of CapEff: this sandbox's root lacks it, a full set has it", () => {
  expect(hasSysResource('000001fffeffffff')).toBe(false);
  expect(hasSysResource('000001ffffffffff')).toBe(true);
  expect(hasSysResource('0000000001000000')).toBe(true);
  expect(hasSysResource('')).toBe(false);
  expect(hasSysResource('not-hex')).toBe(false);
});

test("the tree is the init process and its descendants only, with a command name holding ') ('", () => {
  const proc = fakeProc({
    1: [0, 0, 0, 'systemd'],
    500: [1, 0, 0, 'containerd-shim'],
    501: [500, 0, 0, 'sh'],
    502: [501, 999, 999, 'postgres'],
    503: [502, 999, 999, 'postgres: a) (b'],
    600: [1, 1000, 1000, 'someone else'],
  });
  expect(processTree(501, proc)).toEqual([
    { pid: 501, uids: [0, 0, 0], gids: [0, 0, 0] },
    { pid: 502, uids: [999, 999, 999], gids: [999, 999, 999] },
    { pid: 503, uids: [999, 999, 999], gids: [999, 999, 999] },
  ]);
  expect(processTree(9999, proc)).toEqual([]); // ended before it was read
});

test('a root process whose group is not root is refused too (the kernel compares both)', () => {
  const refusal = foreignCredentialsRefusal({
    container: 'web',
    host: 'compute1',
    processes: [{ pid: 7, uids: [0, 0, 0], gids: [33, 33, 33] }],
    canReadForeignLimits: false,
  });
  expect(refusal?.reason).toBe('foreign_credentials');
  expect(refusal?.message).toMatch(/^container web runs processes as another user than root \(pid 7: uid 0\/0\/0, gid 33\/33\/33\): CRIU on compute1/);
});

test('the refusal names the first foreign process and counts the rest; all-root or a capable host passes', () => {
  const processes = [
    { pid: 10, uids: [0, 0, 0], gids: [0, 0, 0] },
    { pid: 11, uids: [33, 33, 33], gids: [33, 33, 33] },
    { pid: 12, uids: [33, 33, 33], gids: [33, 33, 33] },
  ];
  const message = foreignCredentialsRefusal({ container: 'nginx', host: 'compute2', processes, canReadForeignLimits: false })?.message;
  expect(message).toMatch(/\(pid 11: uid 33\/33\/33, gid 33\/33\/33 and 1 more\)/);
  expect(message).toMatch(
    /since it is not built with Ferry's rlimits patch and root there lacks CAP_SYS_RESOURCE; run its processes as root, install the patched CRIU \(scripts\/install\.sh\), or give the host that capability$/,
  );
  expect(foreignCredentialsRefusal({ container: 'nginx', host: 'compute2', processes, canReadForeignLimits: true })).toBeNull();
  expect(foreignCredentialsRefusal({ container: 'c', host: 'h', processes: [processes[0]], canReadForeignLimits: false })).toBeNull();
});

test("Ferry's patched CRIU reads another user's limits without CAP_SYS_RESOURCE; an unpatched or unreadable one does not", () => {
  const lacking = '000001fffeffffff';
  const looksGood = { code: 0, text: 'Looks good.' };
  const patched = judgeCriu('criu', '4.2', { code: 0, text: 'Version: 4.2.1\nFerry-patch: rlimits-from-proc\n' }, looksGood);
  const unpatched = judgeCriu('criu', '4.2', { code: 0, text: 'Version: 4.2.1\n' }, looksGood);
  const otherPatch = judgeCriu('criu', '4.2', { code: 0, text: 'Version: 4.2.1\nFerry-patch: something-else\n' }, looksGood);
  const broken = judgeCriu('criu', '4.2', { code: 0, text: 'Version: 4.2.1\nFerry-patch: rlimits-from-proc\n' }, { code: 1, text: 'Error' });
  const missing = judgeCriu('criu', '4.2', null, null);
  expect(canReadForeignLimits(lacking, patched)).toBe(true);
  expect(canReadForeignLimits(lacking, unpatched)).toBe(false);
  expect(canReadForeignLimits(lacking, otherPatch)).toBe(false);
  expect(canReadForeignLimits(lacking, broken)).toBe(false);
  expect(canReadForeignLimits(lacking, missing)).toBe(false);
  // a host whose root has the capability needs no patch
  expect(canReadForeignLimits('000001ffffffffff', unpatched)).toBe(true);

  const processes = [{ pid: 20, uids: [65534, 65534, 65534], gids: [65534, 65534, 65534] }];
  expect(foreignCredentialsRefusal({ container: 'pg', host: 'compute1', processes, canReadForeignLimits: canReadForeignLimits(lacking, patched) })).toBeNull();
  expect(
    foreignCredentialsRefusal({ container: 'pg', host: 'compute1', processes, canReadForeignLimits: canReadForeignLimits(lacking, unpatched) })?.reason,
  ).toBe('foreign_credentials');
});
