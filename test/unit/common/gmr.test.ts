/**
 * The Guru Meditation report's builder: what it says of the process and the event loop, the
 * sections a service adds, and above all that no secret of the configuration gets into it.
 */
import { describe, expect, it } from '@jest/globals';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildReport, MASK, maskedConfig, maskUrlCredentials, packageVersion } from '../../../src/common/gmr.js';
import { defaultConfig } from '../../../src/conf/index.js';

function secretConfig() {
  const conf = defaultConfig();
  conf.DEFAULT.transport_url = 'rabbit://ferry:s3cr3t-bus@10.0.0.1:5672,ferry:s3cr3t-bus2@10.0.0.2:5672/ferry?ssl_key_password=k3y';
  conf.database.connection = 'mysql+pymysql://ferry:s3cr3t-db@db.example:3306/ferry';
  conf.keystone_authtoken.password = 's3cr3t-ks';
  return conf;
}

describe('masking', () => {
  it('masks the password of every host of a URL and keeps users, hosts and path', () => {
    expect(maskUrlCredentials('rabbit://u:p@h1:5672,u2:p2@h2:5672/vh')).toBe(`rabbit://u:${MASK}@h1:5672,u2:${MASK}@h2:5672/vh`);
    expect(maskUrlCredentials('mysql+pymysql://ferry:pa/ss@db:3306/ferry')).toBe(`mysql+pymysql://ferry:${MASK}@db:3306/ferry`);
    expect(maskUrlCredentials('rabbit://h1:5672/')).toBe('rabbit://h1:5672/');
    expect(maskUrlCredentials('sqlite:////var/lib/ferry/ferry.sqlite')).toBe('sqlite:////var/lib/ferry/ferry.sqlite');
    expect(maskUrlCredentials('rabbit://u:p@h/?ssl_key_password=x')).toBe(`rabbit://u:${MASK}@h/?${MASK}`);
    expect(maskUrlCredentials('not a url')).toBe(MASK);
  });

  it('masks secret options and keeps the others', () => {
    const m = maskedConfig(secretConfig());
    expect(m.DEFAULT.transport_url).toBe(`rabbit://ferry:${MASK}@10.0.0.1:5672,ferry:${MASK}@10.0.0.2:5672/ferry?${MASK}`);
    expect(m.database.connection).toBe(`mysql+pymysql://ferry:${MASK}@db.example:3306/ferry`);
    expect(m.keystone_authtoken.password).toBe(MASK);
    expect(m.DEFAULT.control_exchange).toBe('ferry');
    expect(m.api.bind_port).toBe(9517);
  });
});

describe('buildReport', () => {
  it('tells versions, process, event loop, the service sections and the masked config', async () => {
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    await new Promise((r) => setTimeout(r, 50));
    const text = await buildReport({
      service: 'ferry-conductor',
      conf: secretConfig(),
      loopDelay: h,
      sections: [
        { title: 'Open migrations', render: () => ['m-1 running/transfer'] },
        { title: 'Broken', render: () => Promise.reject(new Error('database gone')) },
        { title: 'Empty', render: () => [] },
      ],
      now: new Date('2026-01-02T03:04:05Z'),
    });
    h.disable();
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(text).toContain('ferry-conductor report generated at 2026-01-02T03:04:05.000Z');
    expect(text).toContain(`ferry: ${packageVersion()}`);
    expect(text).toContain(`node: ${process.version}`);
    expect(text).toContain(`pid: ${process.pid}`);
    expect(text).toMatch(/uptime: \d+\.\d s/);
    expect(text).toMatch(/delay: mean [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms/);
    expect(text).toMatch(/active resources: \d+/);
    const under = (title: string) => `==== ${title} ====\n${'='.repeat(72)}\n`;
    expect(text).toContain(`${under('Open migrations')}m-1 running/transfer`);
    expect(text).toContain(`${under('Broken')}(could not be gathered: database gone)`);
    expect(text).toContain(`${under('Empty')}(none)`);
    expect(text).toContain('[keystone_authtoken]');
    expect(text).toContain(`  password = ${MASK}`);
    expect(text).toContain('  control_exchange = ferry');
    for (const secret of ['s3cr3t', 'k3y']) expect(text).not.toContain(secret);
  });
});
