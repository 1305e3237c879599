/**
 * SIGHUP's work, without the signal: the mutable options are applied in place and the others
 * left for a restart (oslo.config's mutate_config_files), logging follows `debug`, the service's
 * own reloads run, and the policy file's new rules are enforced by the same Policy object the
 * API holds. A config or policy file that no longer loads changes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { reloadPolicy } from '../../../src/api/server.js';
import { reloadService } from '../../../src/cmd/service.js';
import { RequestContext } from '../../../src/common/context.js';
import { configureLogging, currentLogLevel, getLogger } from '../../../src/common/log.js';
import { defaultConfig, loadConfig, mutateConfig } from '../../../src/conf/index.js';
import { POLICY } from '../../../src/identity/policies.js';
import { Policy } from '../../../src/identity/policy.js';

const savedEnvLevel = process.env.FERRY_LOG_LEVEL;
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-reload-'));
});
afterEach(() => {
  process.env.FERRY_LOG_LEVEL = savedEnvLevel;
});
afterAll(() => {
  configureLogging({ debug: false, log_file: '', log_dir: '', use_stderr: false }, 'test');
  fs.rmSync(dir, { recursive: true, force: true });
});

function logLines(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('mutateConfig', () => {
  it('applies mutable options in place and lists the others as ignored, secrets masked', () => {
    const conf = defaultConfig();
    const defaultGroup = conf.DEFAULT;
    const fresh = defaultConfig();
    fresh.DEFAULT.debug = true;
    fresh.healthcheck.disable_by_file_path = '/etc/ferry/disabled';
    fresh.DEFAULT.host = 'elsewhere';
    fresh.DEFAULT.transport_url = 'rabbit://u:new-secret@h/';
    const { changed, ignored } = mutateConfig(conf, fresh);
    expect(changed.map((c) => `${c.group}.${c.name}`).sort()).toEqual(['DEFAULT.debug', 'healthcheck.disable_by_file_path']);
    expect(conf.DEFAULT).toBe(defaultGroup);
    expect(conf.DEFAULT.debug).toBe(true);
    expect(conf.DEFAULT.host).not.toBe('elsewhere');
    expect(ignored.map((c) => `${c.group}.${c.name}`).sort()).toEqual(['DEFAULT.host', 'DEFAULT.transport_url']);
    expect(JSON.stringify(ignored)).not.toContain('new-secret');
  });
});

describe('reloadService', () => {
  it('re-reads the files: debug takes effect, host needs a restart, reload hooks run even after one fails', async () => {
    delete process.env.FERRY_LOG_LEVEL;
    const confFile = path.join(dir, 'ferry.conf');
    const base = `[DEFAULT]\nlog_dir = ${dir}\nhost = first\n`;
    fs.writeFileSync(confFile, `${base}debug = false\n`);
    const conf = loadConfig([confFile]);
    configureLogging(conf.DEFAULT, 'ferry-test');
    const logFile = path.join(dir, 'ferry-test.log');
    const log = getLogger('ferry-test');
    expect(currentLogLevel()).toBe('info');

    fs.writeFileSync(confFile, `[DEFAULT]\nlog_dir = ${dir}\nhost = second\ndebug = true\n`);
    const ran: string[] = [];
    await reloadService('ferry-test', conf, [confFile], [() => Promise.reject(new Error('policy broken')), () => void ran.push('second')], log);
    expect(conf.DEFAULT.debug).toBe(true);
    expect(conf.DEFAULT.host).toBe('first');
    expect(currentLogLevel()).toBe('debug');
    expect(ran).toEqual(['second']);
    const lines = logLines(logFile);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'SIGHUP: mutable option changed', option: 'debug', old: false, new: true }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: expect.stringContaining('not mutable'), option: 'host' }));
    expect(lines).toContainEqual(expect.objectContaining({ msg: expect.stringContaining('reload failed'), err: 'policy broken' }));

    // A file that no longer parses: nothing changes.
    fs.writeFileSync(confFile, `${base}debug = maybe\n`);
    await reloadService('ferry-test', conf, [confFile], [], log);
    expect(conf.DEFAULT.debug).toBe(true);
    expect(logLines(logFile).at(-1)).toMatchObject({ msg: expect.stringContaining('nothing changed') });
  });
});

describe('policy reload', () => {
  const member = new RequestContext({ user_id: 'u', project_id: 'p', roles: ['member'] });

  it('the same Policy object enforces the re-read file; a broken file leaves the rules in force', () => {
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, '');
    const held = Policy.load(file);
    expect(held.check(POLICY.migrationGetAll, member)).toBe(false);

    fs.writeFileSync(file, `"${POLICY.migrationGetAll}": "role:member"\n`);
    held.replaceRules(Policy.load(file));
    expect(held.check(POLICY.migrationGetAll, member)).toBe(true);
    expect(held.describe(POLICY.migrationGetAll)).toEqual({ check_str: 'role:member', source: file });

    fs.writeFileSync(file, `"${POLICY.migrationGetAll}": "rule:no_such_rule"\n`);
    expect(() => held.replaceRules(Policy.load(file))).toThrow(/no_such_rule/);
    expect(held.check(POLICY.migrationGetAll, member)).toBe(true);
  });

  it('SIGHUP applies changed [oslo_policy] options: the rules are built again with them', async () => {
    const confFile = path.join(dir, 'ferry-policy.conf');
    const policyFile = path.join(dir, 'policy-opts.yaml');
    fs.writeFileSync(policyFile, '');
    const base = `[DEFAULT]\nlog_dir = ${dir}\n[api]\npolicy_file = ${policyFile}\n`;
    fs.writeFileSync(confFile, `${base}[oslo_policy]\nenforce_new_defaults = true\n`);
    const conf = loadConfig([confFile]);
    const log = getLogger('ferry-test');
    const held = Policy.load(conf.api.policy_file, { ...conf.oslo_policy, logger: log });
    expect(held.describe(POLICY.migrationGet)?.check_str).toBe('rule:project_reader_or_admin');
    const systemAdmin = new RequestContext({ user_id: 'u', system_scope: 'all', roles: ['admin'] });
    expect(held.check(POLICY.migrationGetAll, systemAdmin)).toBe(true);

    fs.writeFileSync(confFile, `${base}[oslo_policy]\nenforce_new_defaults = false\nenforce_scope = true\n`);
    await reloadService('ferry-test', conf, [confFile], [() => reloadPolicy(held, conf, log)], log);
    expect(conf.oslo_policy).toEqual({ enforce_new_defaults: false, enforce_scope: true });
    expect(held.options).toEqual({ enforce_new_defaults: false, enforce_scope: true });
    expect(held.describe(POLICY.migrationGet)?.check_str).toBe('(rule:project_reader_or_admin) or (rule:admin_api)');
    expect(held.check(POLICY.migrationGetAll, systemAdmin)).toBe(false);
  });
});
