/**
 * The demo and test images, built locally (no registry is reachable): a rootfs folder with
 * busybox (and redis-server with its libraries), imported with `docker import`.
 *   ferry/counter  prints an increasing number every second and serves it over HTTP on 8080
 *   ferry/stream   streams an increasing sequence to each TCP client on 9000 (one per line)
 *   ferry/redis    redis-server on 6379, no persistence
 * and two applications nobody here wrote, from the host's Debian packages (scripts/install.sh):
 *   ferry/postgres PostgreSQL 15 on 5432 running as `postgres`, data in the writable layer
 *   ferry/nginx    nginx on 80, master root, workers as nobody (65534)
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
  postgres: 'ferry/postgres:15',
  nginx: 'ferry/nginx:latest',
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

const PG_LIB = '/usr/lib/postgresql/15';
const POSTGRES_UID = 999;

// Runs as postgres; its arguments go to the server. The cluster is made on the first start, in the writable layer (what a
// database migration has to move); the settings are the ones tried by hand (FACTS.md).
const POSTGRES_START = `#!/bin/sh
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
  cat >> "$PGDATA/postgresql.conf" <<EOF
listen_addresses = '*'
unix_socket_directories = '/tmp'
shared_buffers = \${PG_SHARED_BUFFERS:-128MB}
dynamic_shared_memory_type = posix
max_connections = 40
jit = off
EOF
  echo 'host all all 0.0.0.0/0 trust' >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" "$@"
`;

// The master stays root (it binds 80), the workers run as nobody: the non-root processes.
const NGINX_CONF = `user nobody nogroup;
worker_processes 2;
daemon off;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  default_type text/plain;
  server {
    listen 80;
    root /www;
  }
}
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
  /** Host folders copied whole (their executables' and modules' libraries too). */
  trees?: string[];
  /** Other files written as they are (configuration). */
  files?: Record<string, string>;
  /** /etc/passwd and /etc/group lines beyond root's. */
  users?: { passwd: string[]; group: string[] };
  /** Folders created and owned by a uid (a service's data or run directory). */
  owned?: Record<string, number>;
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
  postgres: {
    scripts: { 'bin/postgres-start': POSTGRES_START },
    binaries: [],
    trees: [`${PG_LIB}/bin`, `${PG_LIB}/lib`, '/usr/share/postgresql/15', '/usr/share/zoneinfo'],
    users: { passwd: [`postgres:x:${POSTGRES_UID}:${POSTGRES_UID}:postgres:/var/lib/postgresql:/bin/sh`], group: [`postgres:x:${POSTGRES_UID}:`] },
    owned: { 'var/lib/postgresql': POSTGRES_UID, 'run/postgresql': POSTGRES_UID },
    changes: [
      `ENV PATH=${PG_LIB}/bin:/bin`,
      'ENV PGDATA=/var/lib/postgresql/data',
      'USER postgres',
      'WORKDIR /var/lib/postgresql',
      'CMD ["/bin/postgres-start"]',
      'EXPOSE 5432',
    ],
  },
  nginx: {
    scripts: {},
    binaries: ['/usr/sbin/nginx'],
    files: { 'etc/nginx/nginx.conf': NGINX_CONF, 'www/index.html': 'served by nginx\n' },
    users: { passwd: ['nobody:x:65534:65534:nobody:/nonexistent:/bin/false'], group: ['nogroup:x:65534:'] },
    owned: { 'var/lib/nginx': 65534, 'var/log/nginx': 0, run: 0 },
    changes: ['CMD ["/usr/sbin/nginx", "-e", "stderr", "-c", "/etc/nginx/nginx.conf"]', 'EXPOSE 80'],
  },
};

/** Host files an image is built from; missing ones skip that image (with the reason) instead of failing the cloud. */
function missingOnHost(kind: keyof typeof IMAGES): string[] {
  const r = RECIPES[kind];
  return [...r.binaries, ...(r.trees ?? [])].filter((p) => !fs.existsSync(p));
}

const isElf = (file: string): boolean => {
  const head = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  return head.toString('latin1') === '\x7fELF';
};

// PostgreSQL's JIT (LLVM, ~100 MB of libraries) is off in the image: its files are left out.
const LEFT_OUT = /(^|\/)(bitcode|llvmjit[^/]*)$/;

/** Copy host folders as they are, and the libraries their ELF files (executables, modules) need. */
async function copyTrees(dir: string, trees: string[]) {
  const elves: string[] = [];
  for (const tree of trees) {
    fs.cpSync(tree, path.join(dir, tree), { recursive: true, dereference: true, filter: (src) => !LEFT_OUT.test(src) });
    for (const f of fs.readdirSync(tree, { recursive: true }) as string[]) {
      const full = path.join(tree, f);
      if (!f.split('/').some((x) => LEFT_OUT.test(x)) && fs.statSync(full).isFile() && isElf(full)) elves.push(full);
    }
  }
  const libs = new Set<string>();
  for (const elf of elves) {
    const out = (await run('ldd', [elf], { allowFail: true })).stdout;
    for (const m of out.matchAll(/(\/\S+\.so[^\s]*)/g)) libs.add(m[1]);
  }
  for (const lib of libs) {
    const target = path.join(dir, lib);
    if (fs.existsSync(target)) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), target);
  }
}

async function buildRootfs(kind: keyof typeof IMAGES): Promise<string> {
  const dir = path.join(stateDir, 'images', kind);
  const recipe = RECIPES[kind];
  busyboxRootfs(dir);
  for (const [rel, text] of Object.entries(recipe.scripts)) script(dir, rel, text);
  if (recipe.binaries.length) await copyWithLibraries(dir, recipe.binaries);
  if (recipe.trees) await copyTrees(dir, recipe.trees);
  for (const [rel, text] of Object.entries(recipe.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  if (recipe.users) {
    fs.appendFileSync(path.join(dir, 'etc/passwd'), recipe.users.passwd.map((l) => `${l}\n`).join(''));
    fs.appendFileSync(path.join(dir, 'etc/group'), recipe.users.group.map((l) => `${l}\n`).join(''));
  }
  for (const [rel, uid] of Object.entries(recipe.owned ?? {})) {
    fs.mkdirSync(path.join(dir, rel), { recursive: true });
    fs.chownSync(path.join(dir, rel), uid, uid);
  }
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
    const missing = missingOnHost(kind);
    if (missing.length) {
      log(`image ${ref} skipped: ${missing.join(', ')} missing on this machine (scripts/install.sh installs them)`);
      continue;
    }
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
