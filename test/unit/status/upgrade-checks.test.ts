/**
 * `ferry-status upgrade check`, one check at a time, on made-up records (the command itself runs
 * against the development cloud in test/integration/devcloud/status.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { SERVICE_VERSION } from '../../../src/common/service-version.js';
import { COMPUTE_RPC_VERSION } from '../../../src/compute/methods.js';
import type { HostRecord, ServiceRecord } from '../../../src/conductor/repository.js';
import type { RunningServices } from '../../../src/conductor/upgrade.js';
import { SCHEMA_VERSION } from '../../../src/db/schema.js';
import {
  CheckCode,
  checkOldAgents,
  checkOptions,
  checkPolicyFile,
  checkSchema,
  checkServiceVersions,
  formatTable,
  SERVICES_SCHEMA_VERSION,
  worst,
} from '../../../src/status/upgrade-checks.js';

const NOW = Date.parse('2026-12-07T10:00:00.000Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const AUTO = { compute: 'auto', conductor: 'auto' };

function svc(binary: 'ferry-compute' | 'ferry-conductor', host: string, version = SERVICE_VERSION, updatedSecondsAgo = 1): ServiceRecord {
  return { binary, host, topic: binary, service_version: version, rpc_version: null, updated_at: ago(updatedSecondsAgo) };
}

function host(name: string, updatedSecondsAgo = 1): HostRecord {
  return { name, facts: {} as HostRecord['facts'], containers: 0, updated_at: ago(updatedSecondsAgo), status: 'enabled', disabled_reason: null };
}

const running = (services: ServiceRecord[], hosts: HostRecord[] = []): RunningServices => ({ services, hosts, now: NOW, serviceDownTimeS: 30 });

const at = (version: number, oldestCode = 1) => ({ version, oldestCode });

describe('database schema check', () => {
  it("succeeds at the code's version", () => {
    expect(checkSchema(at(SCHEMA_VERSION))).toMatchObject({ name: 'Database schema', code: CheckCode.Success });
  });

  it('fails behind, naming ferry-manage db sync and both versions', () => {
    const r = checkSchema(at(SCHEMA_VERSION - 1));
    expect(r.code).toBe(CheckCode.Failure);
    expect(r.details).toMatch(new RegExp(`at version ${SCHEMA_VERSION - 1}, this release needs ${SCHEMA_VERSION}: run "ferry-manage db sync"`));
  });

  it('warns ahead while the newer schema still admits this release (expand-only upgrade in progress)', () => {
    expect(checkSchema(at(SCHEMA_VERSION + 2, SCHEMA_VERSION))).toMatchObject({
      code: CheckCode.Warning,
      details: expect.stringMatching(new RegExp(`schema ${SCHEMA_VERSION + 2} is newer than this Ferry's \\(${SCHEMA_VERSION}\\).*upgrade is in progress`)),
    });
  });

  it('fails ahead past a contract step (this ferry-status is older) and when the database cannot be read', () => {
    expect(checkSchema(at(SCHEMA_VERSION + 1, SCHEMA_VERSION + 1))).toMatchObject({
      code: CheckCode.Failure,
      details: expect.stringMatching(
        new RegExp(
          `schema ${SCHEMA_VERSION + 1} needs code of schema ${SCHEMA_VERSION + 1} or later and this Ferry is at ${SCHEMA_VERSION}.*run the upgraded one`,
        ),
      ),
    });
    expect(checkSchema(new Error('no database at /x'))).toMatchObject({ code: CheckCode.Failure, details: 'cannot read the database: no database at /x' });
  });
});

describe('service versions check', () => {
  it('succeeds when every running service is at this release, and says what auto stands for', () => {
    const r = checkServiceVersions(SCHEMA_VERSION, running([svc('ferry-conductor', 'ctl'), svc('ferry-compute', 'c1')]), AUTO);
    expect(r.code).toBe(CheckCode.Success);
    expect(r.details).toMatch(/all 2 running service\(s\) at service version/);
    expect(r.details).toContain(`ferry-compute RPC ${COMPUTE_RPC_VERSION} (auto)`);
  });

  it('warns when a running service is older than this release (a rolling upgrade under way), naming it', () => {
    const r = checkServiceVersions(SCHEMA_VERSION, running([svc('ferry-conductor', 'ctl'), svc('ferry-compute', 'c1', SERVICE_VERSION - 1)]), {
      compute: '1.1',
      conductor: 'auto',
    });
    expect(r.code).toBe(CheckCode.Warning);
    expect(r.details).toMatch(new RegExp(`ferry-compute on c1 \\(${SERVICE_VERSION - 1}\\) run an older service version`));
    expect(r.details).toContain('ferry-compute RPC 1.1 (pinned)');
  });

  it('fails when a running service is older than the oldest supported', () => {
    const r = checkServiceVersions(SCHEMA_VERSION, running([svc('ferry-compute', 'c1', 0)]), AUTO);
    expect(r.code).toBe(CheckCode.Failure);
    expect(r.details).toMatch(/ferry-compute on c1 \(0\) run a service version older than the oldest this release works with/);
  });

  it('leaves out services that stopped (no refresh within service_down_time)', () => {
    expect(checkServiceVersions(SCHEMA_VERSION, running([svc('ferry-compute', 'c1', 0, 31)]), AUTO).code).toBe(CheckCode.Success);
  });

  it('warns about a newer service (this ferry-status is old) and when the schema has no records yet', () => {
    expect(checkServiceVersions(SCHEMA_VERSION, running([svc('ferry-compute', 'c1', SERVICE_VERSION + 1)]), AUTO)).toMatchObject({
      code: CheckCode.Warning,
      details: expect.stringMatching(/newer service version than this ferry-status/),
    });
    expect(checkServiceVersions(SERVICES_SCHEMA_VERSION - 1, running([]), AUTO)).toMatchObject({
      code: CheckCode.Warning,
      details: expect.stringMatching(/has no service records yet: run "ferry-manage db sync"/),
    });
  });
});

describe('old agents check', () => {
  it('warns, naming the up hosts whose heartbeats carry no version; down ones are left out', () => {
    const r = checkOldAgents(SCHEMA_VERSION, running([svc('ferry-compute', 'c1')], [host('c1'), host('c2'), host('c3', 60)]));
    expect(r.code).toBe(CheckCode.Warning);
    expect(r.details).toMatch(/^c2 report no service version/);
  });

  it('succeeds when every up host reports its version, or none is up', () => {
    expect(checkOldAgents(SCHEMA_VERSION, running([svc('ferry-compute', 'c1')], [host('c1')]))).toMatchObject({
      code: CheckCode.Success,
      details: 'all 1 up compute host(s) report their service version',
    });
    expect(checkOldAgents(SCHEMA_VERSION, running([], [host('c9', 99)])).details).toBe('no compute host is up');
  });
});

describe('policy file check', () => {
  it('succeeds without a file, and with known rules and helper rules that others use', () => {
    expect(checkPolicyFile('/etc/ferry/policy.yaml', null).code).toBe(CheckCode.Success);
    const text = '"owner": "project_id:%(project_id)s"\n"ferry:migration:get": "rule:owner or rule:admin_api"\n';
    expect(checkPolicyFile('p.yaml', text)).toMatchObject({ code: CheckCode.Success, details: 'p.yaml: 2 rule(s), all known' });
  });

  it('warns about rules Ferry does not have and nothing uses (removed or misspelled)', () => {
    const r = checkPolicyFile('p.yaml', '"ferry:migraton:get": "role:admin"\n');
    expect(r.code).toBe(CheckCode.Warning);
    expect(r.details).toMatch(/"ferry:migraton:get" are not Ferry's and no other rule uses them/);
  });

  it('fails on a file ferry-api would refuse, or cannot read', () => {
    expect(checkPolicyFile('p.yaml', '"ferry:migration:get": "rule:nowhere"\n')).toMatchObject({
      code: CheckCode.Failure,
      details: expect.stringMatching(/refers to rule:nowhere, which is not defined; ferry-api will not start with it/),
    });
    expect(checkPolicyFile('p.yaml', new Error('EACCES')).code).toBe(CheckCode.Failure);
  });

  it('counts the rules left on a deprecated default while [oslo_policy] enforce_new_defaults is false, file or not', () => {
    const off = { enforce_new_defaults: false, enforce_scope: false };
    const none = checkPolicyFile('/etc/ferry/policy.yaml', null, off);
    expect(none.code).toBe(CheckCode.Warning);
    expect(none.details).toBe(
      '3 rule(s) still let callers through with their deprecated default ([oslo_policy] enforce_new_defaults = false): ' +
        '"ferry:migration:get", "ferry:migration:get_all", "ferry:container:get_all": make sure the new defaults suit your users ' +
        '(see "ferry-manage policy sample"), or copy the old default into the policy file, then set enforce_new_defaults = true',
    );
    // A rule the file sets is the operator's own: not counted.
    const pinned = checkPolicyFile('p.yaml', '"ferry:migration:get": "rule:admin_api"\n"ferry:container:get_all": "rule:admin_api"\n', off);
    expect(pinned.details).toMatch(/^1 rule\(s\) still let callers through with their deprecated default .*: "ferry:migration:get_all": /);
    // Both kinds of problem in one answer.
    const both = checkPolicyFile('p.yaml', '"ferry:migraton:get": "role:admin"\n', off);
    expect(both.details).toMatch(/are not Ferry's .*; 3 rule\(s\) still let callers through/);
    // With the new defaults enforced there is nothing to count.
    expect(checkPolicyFile('/etc/ferry/policy.yaml', null, { enforce_new_defaults: true, enforce_scope: true }).code).toBe(CheckCode.Success);
  });
});

describe('options check', () => {
  it('succeeds with nothing ignored and upgrade levels at auto or at this release', () => {
    expect(checkOptions([], AUTO)).toEqual({ name: 'Configuration options', code: CheckCode.Success, details: null });
    expect(checkOptions([], { compute: COMPUTE_RPC_VERSION, conductor: 'auto' }).code).toBe(CheckCode.Success);
    // keystonemiddleware's own options in its section are not Ferry's to judge.
    expect(checkOptions(['f.conf: option [keystone_authtoken] memcached_servers is not used by Ferry; ignored'], AUTO).code).toBe(CheckCode.Success);
  });

  it('warns about ignored options and about a pin below this release', () => {
    const r = checkOptions(['f.conf: option [conductor] bogus is not used by Ferry; ignored'], { compute: '1.0', conductor: 'auto' });
    expect(r.code).toBe(CheckCode.Warning);
    expect(r.details).toMatch(/\[conductor\] bogus .*removed or misspelled/);
    expect(r.details).toMatch(/\[upgrade_levels\] compute = 1\.0 holds calls below this release's/);
  });
});

describe('the report', () => {
  it('exits with the worst result', () => {
    const ok = { name: 'a', code: CheckCode.Success, details: null };
    expect(worst([])).toBe(0);
    expect(worst([ok, { ...ok, code: CheckCode.Warning }])).toBe(1);
    expect(
      worst([
        { ...ok, code: CheckCode.Failure },
        { ...ok, code: CheckCode.Warning },
      ]),
    ).toBe(2);
  });

  it("prints oslo.upgradecheck's table, details wrapped inside the box", () => {
    const text = formatTable([
      { name: 'Database schema', code: CheckCode.Success, details: null },
      { name: 'Policy file', code: CheckCode.Warning, details: `${'word '.repeat(30)}/a/very/long/path/${'x'.repeat(80)}` },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines.slice(0, 7)).toEqual([
      `+${'-'.repeat(62)}+`,
      `| ${'Upgrade Check Results'.padEnd(60)} |`,
      `+${'-'.repeat(62)}+`,
      `| ${'Check: Database schema'.padEnd(60)} |`,
      `| ${'Result: Success'.padEnd(60)} |`,
      `| ${'Details: None'.padEnd(60)} |`,
      `+${'-'.repeat(62)}+`,
    ]);
    expect(lines).toContain(`| ${'Result: Warning'.padEnd(60)} |`);
    for (const l of lines) expect(l.length).toBe(64);
  });
});
