import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../../src/common/errors.js';
import { applyIni, loadConfig } from '../../../src/conf/index.js';
import { busTlsFromOpts, describeTlsError, isCertificateError, rabbitDefaults, rabbitOptsWithQuery } from '../../../src/bus/tls.js';
import { Transport } from '../../../src/bus/transport.js';
import { transportFromConfig } from '../../../src/bus/index.js';
import { parseTransportUrl } from '../../../src/bus/url.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bus-tls-'));
const ca = path.join(dir, 'ca.pem');
fs.writeFileSync(ca, 'not read until a dial\n');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const withQuery = (url: string) => rabbitOptsWithQuery(rabbitDefaults(), parseTransportUrl(url));

describe('transport_url query overrides [oslo_messaging_rabbit], as oslo.messaging does', () => {
  test.each(['1', 'true', 'True', 'yes', 'on'])('?ssl=%s turns TLS on', (v) => {
    expect(withQuery(`rabbit://h:5671/?ssl=${v}`).ssl).toBe(true);
  });
  test('?ssl=0 turns off what the config turned on', () => {
    const conf = { ...rabbitDefaults(), ssl: true };
    expect(rabbitOptsWithQuery(conf, parseTransportUrl('rabbit://h/?ssl=0')).ssl).toBe(false);
  });
  test('every rabbit option can come from the query, typed like the option', () => {
    const o = withQuery(`rabbit://h:5671,h2:5671/v?ssl=true&ssl_ca_file=${ca}&ssl_version=TLSv1_2&failback_interval=7`);
    expect(o).toMatchObject({ ssl: true, ssl_ca_file: ca, ssl_version: 'TLSv1_2', failback_interval: 7 });
  });
  test('a bad value is a ConfigError naming the parameter', () => {
    expect(() => withQuery('rabbit://h/?ssl=maybe')).toThrow(ConfigError);
    expect(() => withQuery('rabbit://h/?ssl=maybe')).toThrow(/transport_url query parameter ssl/);
    expect(() => withQuery('rabbit://h/?failback_interval=-1')).toThrow(ConfigError);
  });
  test('unknown parameters are ignored (a warning), like unknown config options', () => {
    expect(withQuery('rabbit://h/?heartbeat_rate=3')).toEqual(rabbitDefaults());
  });
  test('no query: the config values as they are; the port stays as written (5672 by default, as oslo)', () => {
    expect(withQuery('rabbit://h/')).toEqual(rabbitDefaults());
    expect(parseTransportUrl('rabbit://h/?ssl=1').hosts[0].port).toBe(5672);
  });
});

describe('busTlsFromOpts', () => {
  const base = rabbitDefaults();
  test('off by default: plain AMQP, the ssl_* options unused', () => {
    expect(busTlsFromOpts(base)).toBeUndefined();
    expect(busTlsFromOpts({ ...base, ssl_ca_file: '/nonexistent' })).toBeUndefined();
  });
  test("on without a CA file: the system CAs, Node's default versions", () => {
    expect(busTlsFromOpts({ ...base, ssl: true })).toEqual({});
  });
  test('CA, client certificate (key read from the certificate file when not given)', () => {
    expect(busTlsFromOpts({ ...base, ssl: true, ssl_ca_file: ca, ssl_cert_file: ca })).toEqual({ caFile: ca, certFile: ca, keyFile: ca });
    expect(busTlsFromOpts({ ...base, ssl: true, ssl_cert_file: ca, ssl_key_file: ca })).toEqual({ certFile: ca, keyFile: ca });
  });
  test('an unreadable file is refused at start, naming the option', () => {
    expect(() => busTlsFromOpts({ ...base, ssl: true, ssl_ca_file: path.join(dir, 'missing.pem') })).toThrow(/ssl_ca_file .*missing\.pem cannot be read/);
    expect(() => busTlsFromOpts({ ...base, ssl: true, ssl_key_file: ca })).toThrow(/ssl_key_file is set without ssl_cert_file/);
  });
  test.each([
    ['', {}],
    ['SSLv23', {}],
    ['TLSv1_2', { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }],
    ['tlsv1_3', { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }],
  ])('ssl_version %s', (v, expected) => {
    expect(busTlsFromOpts({ ...base, ssl: true, ssl_version: v })).toEqual(expected);
  });
  test.each(['TLSv1', 'TLSv1_1', 'SSLv3', 'SSLv2', 'TLS9'])('ssl_version %s is refused', (v) => {
    expect(() => busTlsFromOpts({ ...base, ssl: true, ssl_version: v })).toThrow(ConfigError);
  });
  test('ssl_enforce_fips_mode: FIPS on with working TLS, or a clear refusal that leaves TLS working', () => {
    // In a process of its own: FIPS mode is process-wide, and a half-working one would break every
    // later TLS test in this worker (OpenSSL here turns FIPS on, then has no TLS cipher).
    const script = `
      import tls from 'node:tls';
      import { busTlsFromOpts } from './dist/bus/tls.js';
      let outcome;
      try { busTlsFromOpts(${JSON.stringify({ ...base, ssl: true, ssl_enforce_fips_mode: true })}); outcome = 'on'; }
      catch (e) { outcome = e.message; }
      let ctx = 'ok';
      try { tls.createSecureContext({}); } catch (e) { ctx = e.message; }
      console.log(JSON.stringify({ outcome, ctx }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const { outcome, ctx } = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { outcome: string; ctx: string };
    expect(ctx).toBe('ok');
    if (outcome !== 'on') expect(outcome).toMatch(/ssl_enforce_fips_mode: OpenSSL FIPS mode is not available/);
  });
});

describe('a transport takes its TLS settings from the config and the URL', () => {
  test('plain unless asked', () => {
    expect(Transport.fromUrl('rabbit://h:5672/').tls).toBeUndefined();
  });
  test('?ssl=1 alone', () => {
    expect(Transport.fromUrl(`rabbit://h:5671/?ssl=1&ssl_ca_file=${ca}`).tls).toEqual({ caFile: ca });
  });
  test('[oslo_messaging_rabbit] ssl and its files, from a config file', () => {
    const conf = applyIni(
      loadConfig([]),
      `[DEFAULT]\ntransport_url = rabbit://u:p@h1:5671,u:p@h2:5674/v\n[oslo_messaging_rabbit]\nssl = true\nssl_ca_file = ${ca}\nfailback_interval = 5\n`,
      'test.conf',
    );
    expect(conf.oslo_messaging_rabbit).toMatchObject({ ssl: true, ssl_ca_file: ca, failback_interval: 5 });
    expect(transportFromConfig(conf).tls).toEqual({ caFile: ca });
  });
  test('a bad option fails when the transport is made, before any dial', () => {
    expect(() => Transport.fromUrl('rabbit://h/?ssl=1&ssl_version=SSLv3')).toThrow(ConfigError);
  });
});

describe('TLS dial errors are said plainly', () => {
  const err = (code: string, message: string) => Object.assign(new Error(message), { code });
  test('an untrusted certificate names the broker and the CA file; it counts as a certificate error', () => {
    const e = err('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain');
    expect(isCertificateError(e)).toBe(true);
    expect(describeTlsError(e, '127.0.0.1:5671', { caFile: ca })).toBe(
      `RabbitMQ 127.0.0.1:5671: its TLS certificate is not signed by a CA in ssl_ca_file ${ca} (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain)`,
    );
  });
  test('a wrong host name, a plain port', () => {
    expect(describeTlsError(err('ERR_TLS_CERT_ALTNAME_INVALID', "IP: 127.0.0.2 is not in the cert's list"), 'h:1', {})).toMatch(/does not name this host/);
    expect(describeTlsError(err('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), 'h:5672', {})).toMatch(/is this the broker's TLS port\?/);
    expect(isCertificateError(err('ECONNREFUSED', 'connect ECONNREFUSED'))).toBe(false);
  });
});
