/**
 * RabbitMQ over TLS, configured as oslo.messaging configures it: `[oslo_messaging_rabbit] ssl`,
 * `ssl_ca_file`, `ssl_cert_file`, `ssl_key_file`, `ssl_version`, `ssl_enforce_fips_mode`, each
 * of which a query parameter of transport_url of the same name overrides (oslo.messaging's
 * ConfigOptsProxy: `rabbit://ferry:pw@rabbit:5671/ferry?ssl=1`). Ports stay as written; a host
 * without one is 5672 even with TLS, as in oslo.messaging.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls, { type SecureVersion } from 'node:tls';
import { ConfigError } from '../common/errors.js';
import { getLogger } from '../common/log.js';
import { rabbitOpts, type RabbitValues } from '../conf/rabbit.js';
import type { Opt } from '../conf/opts.js';
import type { TransportUrl } from './url.js';

const log = getLogger('bus.tls');

/** What a transport needs to dial brokers over TLS. Files are read again at each dial, so renewed certificates are picked up. */
export interface BusTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
}

/** The option defaults, for callers without a config file. */
export function rabbitDefaults(): RabbitValues {
  const out: Record<string, unknown> = {};
  for (const [k, opt] of Object.entries(rabbitOpts)) out[k] = opt.default;
  return out as RabbitValues;
}

/**
 * `base` with transport_url's query applied on top: a parameter named like an
 * [oslo_messaging_rabbit] option replaces it (parsed as the option is, a bad value is a
 * ConfigError); any other parameter is ignored with a warning, as an unknown config option is.
 */
export function rabbitOptsWithQuery(base: RabbitValues, url: TransportUrl): RabbitValues {
  const out: Record<string, unknown> = { ...base };
  const opts = rabbitOpts as Record<string, Opt<unknown>>;
  for (const [name, raw] of Object.entries(url.query)) {
    const opt = opts[name];
    if (!opt) {
      log.warn({ parameter: name }, 'transport_url query parameter is not used by Ferry; ignored');
      continue;
    }
    out[name] = opt.parse(raw.trim(), `transport_url query parameter ${name}`);
  }
  return out as RabbitValues;
}

const VERSIONS: Record<string, { minVersion?: SecureVersion; maxVersion?: SecureVersion }> = {
  '': {},
  sslv23: {}, // oslo's "negotiate the best": Node's default range (TLS 1.2 and up)
  tls: {},
  tlsv1_2: { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' },
  tlsv1_3: { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
};

function readable(file: string, what: string): void {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw new ConfigError(`[oslo_messaging_rabbit] ${what} ${file} cannot be read: ${(e as Error).message}`);
  }
}

/** The TLS settings the options describe; undefined when `ssl` is off (the other ssl_* options are then unused, as in oslo.messaging). */
export function busTlsFromOpts(o: RabbitValues): BusTls | undefined {
  if (!o.ssl) return undefined;
  const version = VERSIONS[o.ssl_version.trim().toLowerCase()];
  if (!version) {
    throw new ConfigError(
      `[oslo_messaging_rabbit] ssl_version "${o.ssl_version}" is not supported: use TLSv1_2, TLSv1_3 or SSLv23 (older protocols are refused)`,
    );
  }
  if (o.ssl_key_file && !o.ssl_cert_file) throw new ConfigError('[oslo_messaging_rabbit] ssl_key_file is set without ssl_cert_file');
  if (o.ssl_ca_file) readable(o.ssl_ca_file, 'ssl_ca_file');
  if (o.ssl_cert_file) readable(o.ssl_cert_file, 'ssl_cert_file');
  if (o.ssl_key_file) readable(o.ssl_key_file, 'ssl_key_file');
  if (o.ssl_enforce_fips_mode && crypto.getFips() !== 1) {
    try {
      crypto.setFips(true);
      // An OpenSSL whose FIPS provider loads but offers no TLS cipher would leave the bus (and every
      // other TLS channel of the process) unable to connect: that is not FIPS mode available.
      tls.createSecureContext({});
    } catch (e) {
      try {
        crypto.setFips(false);
      } catch {
        /* it never went on */
      }
      throw new ConfigError(
        `[oslo_messaging_rabbit] ssl_enforce_fips_mode: OpenSSL FIPS mode is not available to this Node.js (${(e as Error).message}); use a FIPS-enabled build or set it to false`,
      );
    }
    log.info('OpenSSL FIPS mode enforced');
  }
  return {
    ...(o.ssl_ca_file ? { caFile: o.ssl_ca_file } : {}),
    ...(o.ssl_cert_file ? { certFile: o.ssl_cert_file, keyFile: o.ssl_key_file || o.ssl_cert_file } : {}),
    ...version,
  };
}

/** Socket options for amqplib's `amqps` connect. Server certificates are always verified (chain and host name). */
export function tlsSocketOptions(t: BusTls): Record<string, unknown> {
  return {
    rejectUnauthorized: true,
    ...(t.caFile ? { ca: fs.readFileSync(t.caFile) } : {}),
    ...(t.certFile ? { cert: fs.readFileSync(t.certFile), key: fs.readFileSync(t.keyFile ?? t.certFile) } : {}),
    ...(t.minVersion ? { minVersion: t.minVersion } : {}),
    ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
  };
}

/** Node's codes for a server certificate that does not verify. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** Whether a dial failed on the broker's certificate: retrying cannot help until someone changes a certificate or the CA file. */
export function isCertificateError(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? '';
  return UNTRUSTED.has(code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID';
}

/** A dial error said plainly, naming the broker and what to check. */
export function describeTlsError(e: Error, label: string, t: BusTls): string {
  const code = (e as { code?: string }).code ?? '';
  const ca = t.caFile ? `ssl_ca_file ${t.caFile}` : "the system's trusted CAs (ssl_ca_file is empty)";
  if (UNTRUSTED.has(code)) return `RabbitMQ ${label}: its TLS certificate is not signed by a CA in ${ca} (${code}: ${e.message})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `RabbitMQ ${label}: its TLS certificate does not name this host (${e.message})`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `RabbitMQ ${label}: its TLS certificate is not valid now (${code})`;
  if (/wrong version number|packet length too long|unknown protocol/i.test(e.message) || code === 'ECONNRESET') {
    return `RabbitMQ ${label}: no TLS handshake (${code || e.message}); is this the broker's TLS port?`;
  }
  return `RabbitMQ ${label} over TLS: ${e.message}`;
}
