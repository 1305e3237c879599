/**
 * Keystone for the development cloud: SQLite, fernet tokens, served by keystone-wsgi-public
 * on 127.0.0.1:5000, with admin, demo (member of demo), demo-reader (only the reader role in demo)
 * and the `ferry` service user.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { KeystoneClient } from '../identity/keystone.js';
import { KEYSTONE, stateDir } from './layout.js';
import { run, runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';
import type { CloudCredentials } from './status.js';

const dir = path.join(stateDir, 'keystone');
const confFile = path.join(dir, 'keystone.conf');
const pidFile = path.join(stateDir, 'run', 'keystone.pid');
const MARKER = 'keystone-wsgi-public';

export const credentials: Record<'admin' | 'demo' | 'reader' | 'service', CloudCredentials> = {
  admin: { username: 'admin', password: KEYSTONE.adminPassword, project_name: 'admin', user_domain_name: 'Default', project_domain_name: 'Default' },
  demo: { username: 'demo', password: KEYSTONE.demoPassword, project_name: 'demo', user_domain_name: 'Default', project_domain_name: 'Default' },
  // The secure-RBAC reader: sees the demo project's migrations, changes nothing. The demo user's password.
  reader: { username: 'demo-reader', password: KEYSTONE.demoPassword, project_name: 'demo', user_domain_name: 'Default', project_domain_name: 'Default' },
  service: { username: 'ferry', password: KEYSTONE.servicePassword, project_name: 'service', user_domain_name: 'Default', project_domain_name: 'Default' },
};

function writeConf() {
  fs.mkdirSync(path.join(dir, 'fernet-keys'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'credential-keys'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    confFile,
    [
      '[DEFAULT]',
      `log_file = ${path.join(stateDir, 'log', 'keystone-app.log')}`,
      '[database]',
      `connection = sqlite:///${path.join(dir, 'keystone.db')}`,
      '[token]',
      'provider = fernet',
      'expiration = 14400',
      '[fernet_tokens]',
      `key_repository = ${path.join(dir, 'fernet-keys')}`,
      '[credential]',
      `key_repository = ${path.join(dir, 'credential-keys')}`,
      '[identity]',
      // Development only: cheap password hashing keeps token issue fast on 2 cores.
      'password_hash_rounds = 4',
      // The admin project: tokens say is_admin_project true only there (false elsewhere), as Ferry's [api] admin_project_name expects.
      '[resource]',
      'admin_project_name = admin',
      'admin_project_domain_name = Default',
      '',
    ].join('\n'),
  );
}

async function manage(args: string[]) {
  return run('keystone-manage', ['--config-file', confFile, ...args], { timeoutMs: 300_000 });
}

/** Find a project, user or role by name, or create it; its ID. */
async function ensure(ks: KeystoneClient, kind: 'projects' | 'users' | 'roles', name: string, body: Record<string, unknown>): Promise<string> {
  const found = await ks.request('GET', `/${kind}?name=${encodeURIComponent(name)}`);
  const list = (found.json as Record<string, { id: string }[]>)[kind];
  if (list.length > 0) return list[0].id;
  const single = kind.slice(0, -1);
  const made = await ks.request('POST', `/${kind}`, { body: { [single]: { name, ...body } } });
  if (made.status !== 201) throw new Error(`creating Keystone ${single} ${name}: HTTP ${made.status} ${JSON.stringify(made.json)}`);
  return (made.json as Record<string, { id: string }>)[single].id;
}

async function provision(log: (s: string) => void) {
  const ks = new KeystoneClient({ authUrl: KEYSTONE.authUrl, credentials: credentials.admin });
  const service = await ensure(ks, 'projects', 'service', { domain_id: 'default', description: 'Service users' });
  const demo = await ensure(ks, 'projects', 'demo', { domain_id: 'default', description: 'A tenant' });
  const member = await ensure(ks, 'roles', 'member', {});
  const admin = await ensure(ks, 'roles', 'admin', {});
  const reader = await ensure(ks, 'roles', 'reader', {});
  const demoUser = await ensure(ks, 'users', 'demo', { domain_id: 'default', password: KEYSTONE.demoPassword, default_project_id: demo });
  const readerUser = await ensure(ks, 'users', 'demo-reader', { domain_id: 'default', password: KEYSTONE.demoPassword, default_project_id: demo });
  const ferryUser = await ensure(ks, 'users', 'ferry', { domain_id: 'default', password: KEYSTONE.servicePassword, default_project_id: service });
  for (const [project, user, role] of [
    [demo, demoUser, member],
    [demo, readerUser, reader],
    [service, ferryUser, admin],
  ]) {
    const r = await ks.request('PUT', `/projects/${project}/users/${user}/roles/${role}`);
    if (r.status !== 204) throw new Error(`granting a Keystone role: HTTP ${r.status}`);
  }
  log('Keystone users: admin (admin), demo (member of demo), demo-reader (reader of demo), ferry (admin in service)');
}

/**
 * Keystone's threads write the SQLite file concurrently; in the default rollback-journal mode
 * they collide ("database is locked", HTTP 500). WAL lets readers and a writer coexist.
 */
function useWal() {
  const db = new Database(path.join(dir, 'keystone.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
  } finally {
    db.close();
  }
}

export function keystoneRunning(): boolean {
  return runningPid(pidFile, MARKER) !== null;
}

export async function startKeystone(log: (s: string) => void): Promise<void> {
  const bootstrapped = path.join(dir, 'bootstrapped');
  if (!fs.existsSync(bootstrapped)) {
    log('creating Keystone database (SQLite), fernet keys and the admin user (about 30 s)');
    fs.rmSync(dir, { recursive: true, force: true });
    writeConf();
    await manage(['db_sync']);
    useWal();
    await manage(['fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root']);
    await manage(['credential_setup', '--keystone-user', 'root', '--keystone-group', 'root']);
    await manage([
      'bootstrap',
      '--bootstrap-password',
      KEYSTONE.adminPassword,
      '--bootstrap-admin-url',
      KEYSTONE.authUrl,
      '--bootstrap-internal-url',
      KEYSTONE.authUrl,
      '--bootstrap-public-url',
      KEYSTONE.authUrl,
      '--bootstrap-region-id',
      KEYSTONE.region,
    ]);
    fs.writeFileSync(bootstrapped, new Date().toISOString());
  }
  if (!keystoneRunning()) {
    writeConf(); // also brings settings added since the cloud was made
    useWal(); // also converts a database made before this setting existed
    log('starting Keystone on 127.0.0.1:5000');
    startDaemon({
      name: 'keystone',
      cmd: 'keystone-wsgi-public',
      args: ['--host', '127.0.0.1', '--port', String(KEYSTONE.port)],
      pidFile,
      logFile: path.join(stateDir, 'log', 'keystone.log'),
      marker: MARKER,
      env: { ...process.env, OS_KEYSTONE_CONFIG_FILES: confFile },
    });
  }
  await waitFor('Keystone to answer on 127.0.0.1:5000', async () => (await fetch(KEYSTONE.authUrl)).status === 200, 60_000);
  await provision(log);
}

export async function stopKeystone(): Promise<void> {
  await stopDaemon(pidFile, MARKER, 10_000);
}

export async function keystoneState(): Promise<'up' | 'down'> {
  if (!keystoneRunning()) return 'down';
  try {
    return (await fetch(KEYSTONE.authUrl)).status === 200 ? 'up' : 'down';
  } catch {
    return 'down';
  }
}
