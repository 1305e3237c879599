/**
 * Another release of Ferry for the development cloud's services (rolling-upgrade tests, as
 * OpenStack's grenade job runs the previous release and upgrades it one service at a time): a
 * git revision of this repository unpacked under the state dir, with this checkout's
 * node_modules, built with this checkout's TypeScript. Only its `dist/` is used: the dev cloud
 * itself (namespaces, engines, brokers, config files) stays this checkout's code, and starts
 * the release's services with the command lines they understand (`dist/cmd/<service>.js
 * --config-file FILE`, unchanged since the first release).
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, stateDir } from './layout.js';
import { run } from './proc.js';

export const releasesDir = path.join(stateDir, 'releases');

export interface Release {
  /** The full commit hash. */
  commit: string;
  /** What the revision was asked for as (a tag, a branch, a hash). */
  revision: string;
  /** The unpacked tree: `dist/cmd/*.js` are its services. */
  dir: string;
}

/** The programs the dev cloud runs from a release. */
const SERVICE_ENTRIES = ['api', 'conductor', 'compute', 'manage'];

/** Written into a release's tree once it is built: a tree without it is rebuilt. */
const BUILT_MARKER = '.ferry-release.json';

/** The commit `revision` names in this repository, or null when git does not know it. */
export async function resolveRevision(revision: string): Promise<string | null> {
  const r = await run('git', ['-C', repoRoot, 'rev-parse', '--verify', '--quiet', `${revision}^{commit}`], { allowFail: true });
  const commit = r.stdout.trim();
  return r.code === 0 && /^[0-9a-f]{40}$/.test(commit) ? commit : null;
}

/** The runtime dependencies (package.json) that differ between two trees, as "name: ours -> theirs". */
export function dependencyChanges(oursDir: string, theirsDir: string): string[] {
  const deps = (dir: string) =>
    (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
  const ours = deps(oursDir);
  const theirs = deps(theirsDir);
  const names = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].sort();
  return names.filter((n) => ours[n] !== theirs[n]).map((n) => `${n}: ${ours[n] ?? 'none'} -> ${theirs[n] ?? 'none'}`);
}

/** Whether `dir` holds the release of `commit`, built. */
function builtRelease(dir: string, commit: string): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, BUILT_MARKER), 'utf8')) as { commit?: string };
    return m.commit === commit && fs.existsSync(path.join(dir, 'dist', 'cmd', 'conductor.js'));
  } catch {
    return false;
  }
}

/**
 * The release `revision` unpacked and built under `<state dir>/releases/<commit>` (kept: a
 * second call with the same commit reuses it). Refuses a revision git does not know, and one
 * whose runtime dependencies differ from this checkout's (it would need its own node_modules).
 */
export async function prepareRelease(revision: string, log: (s: string) => void): Promise<Release> {
  const commit = await resolveRevision(revision);
  if (!commit) throw new Error(`git does not know the revision "${revision}" in ${repoRoot} (a tag missing from the clone? git fetch --tags)`);
  const dir = path.join(releasesDir, commit);
  const release = { commit, revision, dir };
  if (builtRelease(dir, commit)) {
    writeMarker(release); // the name asked for this time is the one `status` shows
    return release;
  }
  log(`unpacking ${revision} (${commit.slice(0, 12)}) into ${dir}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  await run('bash', ['-c', 'set -o pipefail; git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', 'archive', repoRoot, commit, dir]);
  const changed = dependencyChanges(repoRoot, dir);
  if (changed.length) {
    throw new Error(`${revision} needs other dependencies than this checkout (${changed.join(', ')}): its services cannot run on this checkout's node_modules`);
  }
  // This checkout's node_modules (itself a link in a worktree): same dependencies, checked above.
  fs.symlinkSync(fs.realpathSync(path.join(repoRoot, 'node_modules')), path.join(dir, 'node_modules'));
  log(`building ${revision} with tsc`);
  const tsc = await run(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.json')], {
    cwd: dir,
    timeoutMs: 600_000,
    allowFail: true,
  });
  if (tsc.code !== 0) {
    // A newer TypeScript or @types may find fault with old code; tsc still emits its JavaScript, which is the release.
    const missing = SERVICE_ENTRIES.filter((e) => !fs.existsSync(path.join(dir, 'dist', 'cmd', `${e}.js`)));
    const errors = `${tsc.stdout}${tsc.stderr}`.trim().split('\n').slice(0, 5).join(' | ');
    if (missing.length) throw new Error(`building ${revision} failed (no dist/cmd/${missing.join('.js, ')}.js): ${errors}`);
    log(`tsc reported errors in ${revision} (this checkout's TypeScript is newer?); its emitted JavaScript is used: ${errors}`);
  }
  writeMarker(release);
  return release;
}

function writeMarker(r: Release): void {
  fs.writeFileSync(path.join(r.dir, BUILT_MARKER), `${JSON.stringify({ commit: r.commit, revision: r.revision, written_at: new Date().toISOString() })}\n`);
}

/** A release prepared before (by its directory), or null when that directory holds none. */
export function readRelease(dir: string): Release | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, BUILT_MARKER), 'utf8')) as { commit: string; revision: string };
    return { commit: m.commit, revision: m.revision, dir };
  } catch {
    return null;
  }
}
