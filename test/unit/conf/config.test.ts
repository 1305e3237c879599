import { describe, expect, it } from '@jest/globals';
import { applyIni, configFilesFromArgv, configWarnings, defaultConfig, sampleConfig } from '../../../src/conf/index.js';

describe('config loader', () => {
  it('parses typed options over the defaults', () => {
    const c = applyIni(
      defaultConfig(),
      ['[DEFAULT]', 'host = compute7', '[compute]', 'migration_port = 9600', 'fast_checkpoint = true', '[oslo_messaging_notifications]', 'topics = a, b'].join(
        '\n',
      ),
      'test.conf',
    );
    expect(c.DEFAULT.host).toBe('compute7');
    expect(c.compute.migration_port).toBe(9600);
    expect(c.compute.fast_checkpoint).toBe(true);
    expect(c.oslo_messaging_notifications.topics).toEqual(['a', 'b']);
    expect(c.api.bind_port).toBe(9517); // untouched default
  });

  it('says which file, group and option hold a bad value', () => {
    expect(() => applyIni(defaultConfig(), '[compute]\nmigration_port = many\n', '/etc/ferry/ferry.conf')).toThrow(
      '/etc/ferry/ferry.conf [compute] migration_port: "many" is not an integer',
    );
    expect(() => applyIni(defaultConfig(), '[oslo_messaging_notifications]\ndriver = log\n', 'f')).toThrow(/not one of messagingv2, noop/);
  });

  it('ignores options of other libraries with a warning, as oslo.config does', () => {
    const c = applyIni(defaultConfig(), '[keystone_authtoken]\nmemcached_servers = 127.0.0.1:11211\nusername = svc\n[other]\nx = 1\n', 'f');
    expect(c.keystone_authtoken.username).toBe('svc');
    expect(configWarnings.some((w) => w.includes('[keystone_authtoken] memcached_servers'))).toBe(true);
  });

  it('takes --config-file from argv, repeatable, and nothing else', () => {
    expect(configFilesFromArgv(['--config-file', 'a.conf', '--config-file=b.conf'])).toEqual(['a.conf', 'b.conf']);
    expect(() => configFilesFromArgv(['--config-file'])).toThrow('option --config-file needs a value');
    expect(() => configFilesFromArgv(['--config-fle', 'a.conf'])).toThrow('unknown option --config-fle');
    expect(() => configFilesFromArgv(['a.conf'])).toThrow('unexpected argument "a.conf"');
  });

  it('documents every option in the sample', () => {
    const s = sampleConfig();
    expect(s).toContain('[keystone_authtoken]');
    expect(s).toMatch(/#max_concurrent_migrations_per_host = 1/);
  });
});
