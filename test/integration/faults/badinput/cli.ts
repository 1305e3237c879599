/**
 * Bad input on the command lines: ferry-manage, the services' and the bench's options, and the
 * real `openstack` CLI with Ferry's plugin against the dev cloud. Each gets exit status 2 (a
 * usage error) or 1 (the request was refused) with one message that says what to fix, and
 * nothing changes on any host. The commands run together before the checks (the openstack CLI
 * takes seconds to start), between two snapshots of the cloud.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cloud, repoRoot } from '../../../helpers/cloud.js';
import { osEnv } from '../../osc/helpers.js';
import { expectUnchanged, snapshot, type Tally, type World } from './world.js';

export interface CliFixtures {
  running: string;
  exited: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, cwd: os.tmpdir(), timeout: 60_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Node's own environment without jest's or Ferry's test settings. */
function nodeEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('FERRY_') || k === 'NODE_OPTIONS' || k === 'NODE_ENV') delete env[k];
  return env;
}

const node = (script: string, args: string[]) => () => run(process.execPath, [path.join(repoRoot, 'dist/cmd', script), ...args], nodeEnv());
const openstack =
  (args: string[], env: () => NodeJS.ProcessEnv = () => osEnv('admin')) =>
  () =>
    run('/usr/bin/openstack', args, env());

interface CliCase {
  title: string;
  cmd: () => Promise<Run>;
  code: 1 | 2;
  /** What stderr must say (all of it, for the one-line cases). */
  stderr: RegExp;
  /** stderr is exactly one line (the openstack CLI's CommandError, or a service's). */
  oneLine?: boolean;
  check?: () => void;
}

/** Run `fns` with at most `n` at a time. */
async function limited<T>(fns: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(fns.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < fns.length) {
        const i = next++;
        out[i] = await fns[i]();
      }
    }),
  );
  return out;
}

export function cliCases(fx: () => CliFixtures, tally: Tally): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-badinput-'));
  const conf = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const missingDb = path.join(dir, 'no-db-here', 'ferry.sqlite');
  const cases: CliCase[] = [
    {
      title: 'ferry-manage with an unknown command -> 2 and the usage',
      cmd: node('manage.js', ['explode']),
      code: 2,
      stderr: /^ferry-manage: unknown command "explode"\nusage: ferry-manage /,
    },
    {
      title: 'ferry-manage with an unknown option -> 2',
      cmd: node('manage.js', ['--frobnicate', 'host', 'list']),
      code: 2,
      stderr: /^ferry-manage: unknown option --frobnicate\n/,
    },
    {
      title: 'ferry-manage --config-file without a file -> 2',
      cmd: node('manage.js', ['--config-file']),
      code: 2,
      stderr: /^ferry-manage: option --config-file needs a value\n/,
    },
    {
      title: 'ferry-manage with a stray argument ("host list extra") -> 2',
      cmd: node('manage.js', ['host', 'list', 'extra']),
      code: 2,
      stderr: /^ferry-manage: unknown command "host list extra"\n/,
    },
    {
      title: 'ferry-manage with a config file that does not exist -> 1 naming it',
      cmd: node('manage.js', ['--config-file', path.join(dir, 'nope.conf'), 'host', 'list']),
      code: 1,
      oneLine: true,
      stderr: /^ferry-manage: cannot read config file .*nope\.conf: ENOENT/,
    },
    {
      title: 'ferry-manage with an option value of the wrong type -> 1 naming file, group and option',
      cmd: node('manage.js', ['--config-file', conf('badint.conf', '[conductor]\nservice_down_time = soon\n'), 'host', 'list']),
      code: 1,
      oneLine: true,
      stderr: /^ferry-manage: .*badint\.conf \[conductor\] service_down_time: "soon" is not an integer$/,
    },
    {
      title: 'ferry-manage with a broken section header -> 1 naming the line',
      cmd: node('manage.js', [
        '--config-file',
        conf('badsection.conf', `[database]\nconnection = sqlite:///${missingDb}\n[conductor\nservice_down_time = 5\n`),
        'host',
        'list',
      ]),
      code: 1,
      oneLine: true,
      stderr: /^ferry-manage: .*badsection\.conf line 3: "\[conductor" is not a section header/,
    },
    {
      title: 'ferry-manage with a database URL it cannot use -> 1, the password not repeated',
      cmd: node('manage.js', ['--config-file', conf('pg.conf', '[database]\nconnection = postgresql://ferry:s3cret@db/ferry\n'), 'host', 'list']),
      code: 1,
      oneLine: true,
      stderr:
        /^ferry-manage: \[database\] connection "postgresql:\/\/ferry:\*\*\*@db\/ferry": unsupported database "postgresql"; use sqlite:\/\/\/\/ABS\/PATH or mysql\+pymysql:\/\/USER:PASS@HOST\[:PORT\]\/DBNAME$/,
    },
    {
      title: 'ferry-manage with a MariaDB that does not answer -> 1 naming it, without the password',
      cmd: node('manage.js', ['--config-file', conf('mysql.conf', '[database]\nconnection = mysql+pymysql://ferry:s3cret@127.0.0.1:1/ferry\n'), 'db', 'sync']),
      code: 1,
      oneLine: true,
      stderr: /^ferry-manage: cannot use the database mysql:\/\/ferry@127\.0\.0\.1:1\/ferry: .*ECONNREFUSED/,
    },
    {
      title: 'ferry-manage host list without a database -> 1 saying to run db sync, and no database made',
      cmd: node('manage.js', ['--config-file', conf('nodb.conf', `[database]\nconnection = sqlite:///${missingDb}\n`), 'host', 'list']),
      code: 1,
      oneLine: true,
      stderr: /^ferry-manage: no database at .*no-db-here\/ferry\.sqlite: run "ferry-manage db sync" first$/,
      check: () => expect(fs.existsSync(path.dirname(missingDb))).toBe(false),
    },
    {
      title: 'ferry-conductor with an unknown option -> 2, nothing started',
      cmd: node('conductor.js', ['--bogus']),
      code: 2,
      oneLine: true,
      stderr: /^ferry-conductor: unknown option --bogus$/,
    },
    {
      title: "a second ferry-conductor on the dev cloud's SQLite database -> 1 naming the one that runs, nothing started",
      cmd: () => node('conductor.js', ['--config-file', cloud().config_files.controller])(),
      code: 1,
      oneLine: true,
      stderr:
        /^ferry-conductor: ConfigError: another ferry-conductor \(PID \d+, host controller, since [^)]+\) uses the SQLite database .*ferry\.sqlite: with SQLite a single conductor runs; for several, use MariaDB/,
    },
    {
      title: 'ferry-compute with a config file that does not exist -> 2, nothing started',
      cmd: node('compute.js', ['--config-file', path.join(dir, 'missing.conf')]),
      code: 2,
      oneLine: true,
      stderr: /^ferry-compute: cannot read config file .*missing\.conf: ENOENT/,
    },
    {
      title: 'ferry-api with a bad option value -> 2, nothing started',
      cmd: node('api.js', ['--config-file', conf('badapi.conf', '[api]\nbind_port = eighty\n')]),
      code: 2,
      oneLine: true,
      stderr: /^ferry-api: .*badapi\.conf \[api\] bind_port: "eighty" is not an integer/,
    },
    {
      title: 'ferry-bench --runs abc -> 2 saying what it must be',
      cmd: node('bench.js', ['--runs', 'abc']),
      code: 2,
      stderr: /^ferry-bench: --runs must be a positive integer, not "abc"\nusage: /,
    },
    {
      title: 'ferry-bench with an unknown workload -> 2 listing the known ones',
      cmd: node('bench.js', ['--workloads', 'nosuch']),
      code: 2,
      stderr: /^ferry-bench: unknown workload nosuch \(known: counter, /,
    },
    {
      title: 'openstack container migration list --status bogus -> 2 listing the statuses',
      cmd: openstack(['container', 'migration', 'list', '--status', 'bogus']),
      code: 2,
      stderr: /argument --status: invalid choice: 'bogus' \(choose from 'accepted', /,
    },
    {
      title: 'openstack container migrate without a container -> 2',
      cmd: openstack(['container', 'migrate']),
      code: 2,
      stderr: /the following arguments are required: <container>/,
    },
    {
      title: 'openstack container migrate --timeout soon -> 2',
      cmd: () => openstack(['container', 'migrate', fx().running, '--wait', '--timeout', 'soon'])(),
      code: 2,
      stderr: /argument --timeout: invalid float value: 'soon'/,
    },
    {
      title: 'openstack container migrate of an exited container -> 1, one line with the 409',
      cmd: () => openstack(['container', 'migrate', fx().exited, '--host', 'compute2'])(),
      code: 1,
      oneLine: true,
      stderr: /is exited, not running .*\(HTTP 409, request req-[0-9a-f-]+\)$/,
    },
    {
      title: 'openstack container migrate to the host it is on -> 1, one line with the 400',
      cmd: () => openstack(['container', 'migrate', fx().running, '--host', 'compute1'])(),
      code: 1,
      oneLine: true,
      stderr: /already runs on "compute1".*\(HTTP 400, request req-[0-9a-f-]+\)$/,
    },
    {
      title: 'openstack container migration show of something that is not a UUID -> 1, one line with the 404',
      cmd: openstack(['container', 'migration', 'show', 'not-a-uuid']),
      code: 1,
      oneLine: true,
      stderr: /^Migration not-a-uuid could not be found\. \(HTTP 404, request req-[0-9a-f-]+\)$/,
    },
    {
      title: 'openstack with a wrong password -> 1, one line with the 401',
      cmd: openstack(['container', 'host', 'list'], () => ({ ...osEnv('admin'), OS_PASSWORD: 'not-the-password' })),
      code: 1,
      oneLine: true,
      stderr: /\(HTTP 401\)/,
    },
  ];

  describe('CLI', () => {
    let before: World;
    let after: World;
    let results: Run[] = [];

    beforeAll(async () => {
      before = await snapshot();
      results = await limited(
        cases.map((c) => c.cmd),
        3,
      );
      after = await snapshot();
    }, 240_000);

    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    cases.forEach((c, i) => {
      it(
        c.title,
        tally.counting('CLI', async () => {
          const r = results[i];
          if (r.code !== c.code) throw new Error(`expected exit ${c.code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
          expect(r.stderr.trim()).toMatch(c.stderr);
          if (c.oneLine) expect(r.stderr.trim().split('\n')).toHaveLength(1);
          expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // no stack trace
          c.check?.();
        }),
      );
    });

    it('none of the commands changed anything on any host', () => {
      expectUnchanged(before, after);
    });
  });
}
