/**
 * Horizon (Debian's openstack-dashboard) in the development cloud: Django's server on
 * 127.0.0.1, against the dev cloud's Keystone, with Ferry's panel (installed by
 * scripts/install.sh). Its settings are a module of the dev cloud's own that extends Horizon's,
 * so nothing under /etc is changed; pid file and log like the other services.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeIfChanged } from './files.js';
import { HORIZON, KEYSTONE, stateDir } from './layout.js';
import { runningPid, startDaemon, stopDaemon, waitFor } from './proc.js';

const PYTHON = '/usr/bin/python3';
const MANAGE = '/usr/share/openstack-dashboard/manage.py';
const dir = path.join(stateDir, 'horizon');
const SETTINGS_MODULE = 'ferry_devcloud_horizon_settings';
const pidFile = path.join(stateDir, 'run', 'horizon.pid');
const logFile = path.join(stateDir, 'log', 'horizon.log');
/** In the command line of our server only: tells it from any other runserver by PID reuse. */
const MARKER = `runserver 127.0.0.1:${HORIZON.port}`;

export const horizonUrl = `http://127.0.0.1:${HORIZON.port}`;

/** Whether this machine has Horizon and Ferry's panel (scripts/install.sh installs both). */
export function horizonInstalled(): boolean {
  return fs.existsSync(MANAGE) && fs.existsSync(PYTHON);
}

function writeSettings() {
  fs.mkdirSync(dir, { recursive: true });
  const py = [
    '# Horizon settings of the Ferry development cloud (written by ferry-devcloud up).',
    'from openstack_dashboard.settings import *  # noqa: F401,F403',
    '',
    `OPENSTACK_KEYSTONE_URL = ${JSON.stringify(KEYSTONE.authUrl)}`,
    `OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'`,
    "ALLOWED_HOSTS = ['127.0.0.1', 'localhost']",
    // Compressed online, on first use, into the dev cloud's own folder (Debian's package
    // ships no offline bundle); later pages reuse it instead of compiling SCSS every time.
    'COMPRESS_OFFLINE = False',
    'COMPRESS_ENABLED = True',
    `COMPRESS_ROOT = ${JSON.stringify(path.join(dir, 'static'))}`,
    // Sessions live in the cache: the compressor's entries must not evict them (locmem keeps 300).
    "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache', 'OPTIONS': {'MAX_ENTRIES': 100000}}}",
    'DEBUG = False',
    // Plain-HTTP development server: the session cookie must not require HTTPS.
    'SESSION_COOKIE_SECURE = False',
    'CSRF_COOKIE_SECURE = False',
    // A token from the dev cloud's Keystone lasts 4 h; a short session would log the tests out.
    'SESSION_TIMEOUT = 14400',
    `SECRET_KEY = ${JSON.stringify(`ferry-devcloud-horizon-${stateDir}`)}  # throwaway, development only`,
    // Rows in progress refresh every second (Horizon's default is 2.5 s).
    "HORIZON_CONFIG['ajax_poll_interval'] = 1000",
    '',
  ].join('\n');
  writeIfChanged(path.join(dir, `${SETTINGS_MODULE}.py`), py);
}

export function horizonPid(): number | null {
  return runningPid(pidFile, MARKER);
}

async function answers(): Promise<boolean> {
  try {
    const r = await fetch(`${horizonUrl}/auth/login/`, { redirect: 'manual' });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** Start Horizon unless it runs; waits until its login page answers. */
export async function startHorizon(log: (s: string) => void): Promise<void> {
  if (!horizonInstalled()) {
    log('Horizon is not installed (scripts/install.sh installs openstack-dashboard): skipped');
    return;
  }
  writeSettings();
  if (horizonPid() === null) {
    log(`starting Horizon on ${horizonUrl}`);
    startDaemon({
      name: 'horizon',
      cmd: PYTHON,
      args: [MANAGE, 'runserver', `127.0.0.1:${HORIZON.port}`, '--insecure', '--noreload'],
      pidFile,
      logFile,
      marker: MARKER,
      cwd: dir,
      env: { ...process.env, PYTHONPATH: dir, DJANGO_SETTINGS_MODULE: SETTINGS_MODULE, PYTHONUNBUFFERED: '1' },
    });
  }
  await waitFor(`Horizon on ${horizonUrl} (log: ${logFile})`, answers, 90_000, 500);
}

export async function stopHorizon(): Promise<void> {
  await stopDaemon(pidFile, MARKER, 10_000);
}

export async function horizonState(): Promise<'up' | 'down'> {
  return horizonPid() !== null && (await answers()) ? 'up' : 'down';
}
