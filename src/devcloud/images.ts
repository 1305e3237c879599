/**
 * The demo and test images, built locally (no registry is reachable): a rootfs folder with
 * busybox (and redis-server with its libraries), imported with `docker import`.
 *   ferry/counter  prints an increasing number every second and serves it over HTTP on 8080
 *   ferry/stream   streams an increasing sequence to each TCP client on 9000 (one per line)
 *   ferry/redis    redis-server on 6379, no persistence
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DOCKER_CLI, hostDirs, stateDir } from './layout.js';
import { docker } from './hosts.js';
import { run } from './proc.js';

export const IMAGES = {
  counter: 'ferry/counter:latest',
  stream: 'ferry/stream:latest',
  redis: 'ferry/redis:latest',
};

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'sleep', 'usleep', 'cat', 'mv', 'mkdir', 'httpd', 'nc', 'ls', 'ps', 'seq', 'wget', 'date', 'rm', 'touch', 'kill'];

const COUNTER_SCRIPT = `#!/bin/sh
# Counts once per COUNTER_INTERVAL seconds; the count is on stdout and at http://IP:8080/
mkdir -p /www
httpd -p 8080 -h /www
i=0
while :; do
  i=$((i+1))
  echo "$i" > /www/.next && mv /www/.next /www/index.html
  echo "$i"
  sleep "\${COUNTER_INTERVAL:-1}"
done
`;

const STREAM_SERVER = `#!/bin/sh
# Each client that connects to 9000 gets its own sequence 1, 2, 3, ... one number a line.
exec nc -ll -p "\${STREAM_PORT:-9000}" -e /bin/seqstream
`;

const SEQSTREAM = `#!/bin/sh
i=0
while :; do
  i=$((i+1))
  echo "$i" || exit 0
  usleep "\${STREAM_INTERVAL_US:-100000}"
done
`;

function busyboxRootfs(dir: string) {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['bin', 'tmp', 'www', 'data', 'etc']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n');
}

function script(dir: string, rel: string, text: string) {
  fs.writeFileSync(path.join(dir, rel), text, { mode: 0o755 });
}

async function copyWithLibraries(dir: string, binaries: string[]) {
  const libs = new Set<string>();
  for (const bin of binaries) {
    const real = fs.realpathSync(bin);
    fs.mkdirSync(path.join(dir, path.dirname(bin)), { recursive: true });
    fs.copyFileSync(real, path.join(dir, bin));
    fs.chmodSync(path.join(dir, bin), 0o755);
    const out = (await run('ldd', [real])).stdout;
    for (const m of out.matchAll(/(\/\S+\.so[^\s]*)/g)) libs.add(m[1]);
  }
  for (const lib of libs) {
    const target = path.join(dir, lib);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), target);
  }
}

interface Recipe {
  scripts: Record<string, string>; // path in the rootfs -> text (executable)
  binaries: string[]; // host binaries copied with the libraries ldd lists
  changes: string[]; // `docker import -c` instructions
}

const RECIPES: Record<keyof typeof IMAGES, Recipe> = {
  counter: { scripts: { 'bin/counter': COUNTER_SCRIPT }, binaries: [], changes: ['CMD ["/bin/counter"]', 'EXPOSE 8080'] },
  stream: {
    scripts: { 'bin/stream-server': STREAM_SERVER, 'bin/seqstream': SEQSTREAM },
    binaries: [],
    changes: ['CMD ["/bin/stream-server"]', 'EXPOSE 9000'],
  },
  redis: {
    scripts: {},
    binaries: ['/usr/bin/redis-server', '/usr/bin/redis-cli'],
    changes: [
      'CMD ["/usr/bin/redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/data", "--enable-debug-command", "local"]',
      'EXPOSE 6379',
      'WORKDIR /data',
    ],
  },
};

async function buildRootfs(kind: keyof typeof IMAGES): Promise<string> {
  const dir = path.join(stateDir, 'images', kind);
  const recipe = RECIPES[kind];
  busyboxRootfs(dir);
  for (const [rel, text] of Object.entries(recipe.scripts)) script(dir, rel, text);
  if (recipe.binaries.length) await copyWithLibraries(dir, recipe.binaries);
  return dir;
}

/** The recipe label of an image on a host ('' when absent): a changed recipe means a rebuild. */
async function imageRecipe(host: string, ref: string): Promise<string> {
  const r = await docker(host, ['image', 'inspect', '-f', '{{index .Config.Labels "ferry.recipe"}}', ref], { allowFail: true });
  return r.code === 0 ? r.stdout.trim() : '';
}

function recipeHash(kind: keyof typeof IMAGES): string {
  const text = JSON.stringify([kind, APPLETS, RECIPES[kind]]);
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Build and import the test images into `host` (skipped when it already has them). */
export async function ensureImages(host: string, log: (s: string) => void): Promise<void> {
  for (const kind of Object.keys(IMAGES) as (keyof typeof IMAGES)[]) {
    const ref = IMAGES[kind];
    const recipe = recipeHash(kind);
    if ((await imageRecipe(host, ref)) === recipe) continue;
    const dir = await buildRootfs(kind);
    const args = [...RECIPES[kind].changes, `LABEL ferry.recipe=${recipe}`].flatMap((c) => ['-c', c]);
    // tar streams the rootfs straight into `docker import` on the engine's socket.
    const cmd = `tar -C '${dir}' --numeric-owner -c . | ${DOCKER_CLI} -H unix://'${hostDirs(host).socket}' import ${args
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ')} - ${ref}`;
    await run('bash', ['-o', 'pipefail', '-c', cmd], { timeoutMs: 300_000 });
    log(`image ${ref} built and loaded into ${host}`);
  }
}
