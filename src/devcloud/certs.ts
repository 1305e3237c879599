/**
 * The data channel's certificates for a development cloud (and for tests): a CA, and for each
 * compute host a P-256 key and a certificate whose CN and DNS subjectAltName are the host's
 * name, for both server and client use (mutual TLS). Made with the openssl CLI; kept as long
 * as they exist, so `up` on a warm cloud changes nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface HostCertFiles {
  cert_file: string;
  key_file: string;
  ca_file: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.toString().trim() || err.message}`);
  }
}

/** Make (once) the CA in `dir`: ca.key, ca.crt. */
export function ensureCa(dir: string, commonName = 'Ferry data channel CA'): { ca_file: string; ca_key: string } {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKey = path.join(dir, 'ca.key');
  const caCrt = path.join(dir, 'ca.crt');
  if (!fs.existsSync(caKey) || !fs.existsSync(caCrt)) {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        caKey,
        '-out',
        caCrt,
        '-days',
        '3650',
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    fs.chmodSync(caKey, 0o600);
  }
  return { ca_file: caCrt, ca_key: caKey };
}

/**
 * Make (once) `<host>.key` and `<host>.crt`, signed by the CA in `dir`. `extraNames` adds
 * subjectAltNames (`DNS:localhost`, `IP:127.0.0.1`: clients that dial an address check it
 * against an IP name).
 */
export function ensureHostCert(dir: string, host: string, extraNames: string[] = []): HostCertFiles {
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(host)) throw new Error(`not a host name: ${host}`);
  for (const n of extraNames) if (!/^(DNS:[A-Za-z0-9.-]+|IP:[0-9A-Fa-f.:]+)$/.test(n)) throw new Error(`not a subjectAltName: ${n}`);
  const { ca_file, ca_key } = ensureCa(dir);
  const key = path.join(dir, `${host}.key`);
  const crt = path.join(dir, `${host}.crt`);
  if (!fs.existsSync(key) || !fs.existsSync(crt)) {
    const csr = path.join(dir, `${host}.csr`);
    const ext = path.join(dir, `${host}.ext`);
    fs.writeFileSync(
      ext,
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${[`DNS:${host}`, ...extraNames].join(',')}\n`,
    );
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${host}`], dir);
    openssl(['x509', '-req', '-in', csr, '-CA', ca_file, '-CAkey', ca_key, '-CAcreateserial', '-out', crt, '-days', '825', '-extfile', ext], dir);
    fs.chmodSync(key, 0o600);
    fs.rmSync(csr, { force: true });
    fs.rmSync(ext, { force: true });
  }
  return { cert_file: crt, key_file: key, ca_file };
}

/** Where a development cloud keeps its data channel CA and host certificates. */
export function pkiDir(stateDir: string): string {
  return path.join(stateDir, 'pki');
}
