/**
 * The operator's signals on real Ferry processes, as built (dist/cmd): a ferry-conductor and a
 * ferry-api on a private RabbitMQ node (127.0.0.1:5697, distribution 25697; never the dev
 * cloud's, whose queues they would share) and a SQLite database in a temp dir.
 *
 * - SIGUSR2 by PID: the Guru Meditation report on stderr, with the process's pid, versions, the
 *   conductor's open migrations and the config with the bus and Keystone passwords masked.
 * - SIGHUP by PID: ferry-api re-reads its config file: `debug` and
 *   `[healthcheck] disable_by_file_path` apply without a restart (/healthcheck turns 503
 *   DISABLED BY FILE), the policy file is read again, and a broken policy file is refused
 *   while the API keeps serving.
 * - Logs go to the files `log_dir` names, not to stderr.
 * Every wait polls with a deadline of at least 30 s; nothing depends on timing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { sleep } from '../../../src/common/sleep.js';
import { repoRoot } from '../../helpers/cloud.js';
import { PrivateRabbit } from '../../helpers/private-rabbit.js';

jest.setTimeout(300_000);

const pexec = promisify(execFile);
const KEYSTONE_PASSWORD = 'ops-test-keystone-s3cret';
const WAIT_MS = 60_000;

interface Service {
  proc: ChildProcess;
  stderr: () => string;
  logFile: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = WAIT_MS): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not seen in ${ms} ms`);
    await sleep(200);
  }
}

function logLines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The service's environment as an operator has it: no test-only log level, so the config decides. */
function serviceEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['FERRY_FAULTS', 'FERRY_ENABLE_FAULTS', 'NODE_OPTIONS', 'FERRY_LOG_LEVEL']) delete env[k];
  return env;
}

describe('operator signals on real services', () => {
  let dir: string;
  let confFile: string;
  let baseConf: string;
  let apiPort: number;
  let rabbit: PrivateRabbit;
  const services: Service[] = [];
  let conductor: Service;
  let api: Service;

  function start(name: 'conductor' | 'api', service: string): Service {
    const proc = spawn(process.execPath, [path.join(repoRoot, `dist/cmd/${name}.js`), '--config-file', confFile], {
      env: serviceEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const s = { proc, stderr: () => err, logFile: path.join(dir, `${service}.log`) };
    services.push(s);
    return s;
  }

  async function started(s: Service, msg: string): Promise<void> {
    await waitFor(`"${msg}" in ${s.logFile}`, () => {
      if (s.proc.exitCode !== null) throw new Error(`exited with ${s.proc.exitCode}: ${s.stderr()}`);
      return logLines(s.logFile).some((l) => l.msg === msg);
    });
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ops-'));
    rabbit = new PrivateRabbit({ port: 5697, distPort: 25697, nodeName: 'ferryops@localhost' });
    await rabbit.start();
    apiPort = await freePort();
    confFile = path.join(dir, 'ferry.conf');
    fs.writeFileSync(path.join(dir, 'policy.yaml'), '');
    baseConf = [
      '[DEFAULT]',
      'host = ops-test',
      `transport_url = ${rabbit.transportUrl}`,
      `state_path = ${dir}`,
      `log_dir = ${dir}`,
      '[database]',
      `connection = sqlite:///${path.join(dir, 'ferry.sqlite')}`,
      '[api]',
      'bind_host = 127.0.0.1',
      `bind_port = ${apiPort}`,
      'register_endpoints = false',
      `policy_file = ${path.join(dir, 'policy.yaml')}`,
      '[keystone_authtoken]',
      'www_authenticate_uri = http://127.0.0.1:9/v3',
      'auth_url = http://127.0.0.1:9/v3',
      `password = ${KEYSTONE_PASSWORD}`,
      '',
    ].join('\n');
    fs.writeFileSync(confFile, baseConf);
    await pexec(process.execPath, [path.join(repoRoot, 'dist/cmd/manage.js'), '--config-file', confFile, 'db', 'sync'], { env: serviceEnv() });
    conductor = start('conductor', 'ferry-conductor');
    api = start('api', 'ferry-api');
    await started(conductor, 'ferry-conductor started');
    await started(api, 'ferry-api started');
  });

  afterAll(async () => {
    for (const s of services) {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) continue;
      let timer: NodeJS.Timeout | undefined;
      const exited = new Promise((r) => s.proc.once('exit', r));
      s.proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
      clearTimeout(timer);
      if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    }
    await rabbit?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('logs to the files log_dir names, at info, and no log line to stderr', () => {
    for (const s of [conductor, api]) {
      const lines = logLines(s.logFile);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.every((l) => typeof l.level === 'number' && l.level >= 30)).toBe(true);
      // (Node's own warnings may still go to stderr.)
      expect(s.stderr()).not.toContain('"level":');
    }
  });

  it("SIGUSR2 writes the conductor's report: pid, versions, open migrations, masked config", async () => {
    process.kill(conductor.proc.pid!, 'SIGUSR2');
    // The configuration's last group closes the report.
    const report = await waitFor('the report on stderr', () => {
      const e = conductor.stderr();
      return /\[oslo_messaging_rabbit\][\s\S]*ssl_enforce_fips_mode = /.test(e) && e;
    });
    expect(report).toContain('ferry-conductor report generated at');
    expect(report).toContain(`pid: ${conductor.proc.pid}`);
    expect(report).toContain(`node: ${process.version}`);
    expect(report).toMatch(/ferry: \d+\.\d+\.\d+/);
    expect(report).toMatch(/delay: mean [\d.]+ ms/);
    expect(report).toMatch(/active resources: \d+/);
    expect(report).toMatch(/==== Open migrations ====\n=+\n\(none\)/);
    expect(report).toContain('transport_url = rabbit://guest:***@127.0.0.1:5697/');
    expect(report).toContain('  password = ***');
    expect(report).not.toContain('guest:guest');
    expect(report).not.toContain(KEYSTONE_PASSWORD);
    // Still serving: the process did not stop on the signal.
    expect(conductor.proc.exitCode).toBeNull();
  });

  it('SIGHUP applies debug and disable_by_file_path to ferry-api without a restart, and re-reads the policy file', async () => {
    const hc = () => fetch(`http://127.0.0.1:${apiPort}/healthcheck`).then(async (r) => ({ status: r.status, text: await r.text() }));
    expect(await hc()).toEqual({ status: 200, text: 'OK' });
    const flag = path.join(dir, 'maintenance');
    fs.writeFileSync(flag, '');
    // The file alone changes nothing while no path is configured.
    expect((await hc()).status).toBe(200);

    fs.writeFileSync(confFile, `${baseConf.replace('[DEFAULT]\n', '[DEFAULT]\ndebug = true\n')}[healthcheck]\ndisable_by_file_path = ${flag}\n`);
    process.kill(api.proc.pid!, 'SIGHUP');
    await waitFor('/healthcheck disabled by file', async () => {
      const r = await hc();
      return r.status === 503 && r.text === 'DISABLED BY FILE';
    });
    const lines = await waitFor('the policy reload line', () => {
      const l = logLines(api.logFile);
      return l.some((x) => x.msg === 'SIGHUP: policy reloaded') && l;
    });
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'SIGHUP: mutable option changed', option: 'debug', new: true }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'SIGHUP: logging reconfigured', log_level: 'debug', log_file: api.logFile }));
    fs.rmSync(flag);
    expect(await hc()).toEqual({ status: 200, text: 'OK' });

    // A policy file that does not load is refused; the rules in force stay and the API serves on.
    fs.writeFileSync(path.join(dir, 'policy.yaml'), '"ferry:migration:get_all": "rule:no_such_rule"\n');
    process.kill(api.proc.pid!, 'SIGHUP');
    const failed = await waitFor('the refused policy', () => logLines(api.logFile).find((x) => x.msg === 'SIGHUP: reload failed; the previous state stays'));
    expect(String(failed.err)).toContain('no_such_rule');
    expect(await hc()).toEqual({ status: 200, text: 'OK' });
    expect(api.proc.exitCode).toBeNull();
  });
});
