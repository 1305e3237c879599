/**
 * Mutual TLS of the data channel: every compute host has a key and a certificate signed by
 * the deployment's CA, whose CN (and DNS subjectAltName) is the host's name as the conductor
 * knows it ([DEFAULT] host). The server accepts only clients with a certificate from that CA
 * and binds each upload to the migration's source host (and each image export to its target
 * host) by that name; the client accepts only a server whose certificate names the host it
 * means to reach, whatever address it dials (an IP is never what is checked).
 * Without TLS ([compute] data_channel_insecure = true) only the bearer tokens protect the
 * channel, and nothing binds a transfer to a host.
 */
import fs from 'node:fs';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import tls from 'node:tls';
import { ConfigError } from '../../common/errors.js';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export interface TlsFiles {
  cert_file: string;
  key_file: string;
  ca_file: string;
}

/** Read this host's certificate, key and the CA; a clear ConfigError when one is missing. */
export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const read = (opt: keyof TlsFiles): Buffer => {
    const file = files[opt];
    if (!file) {
      throw new ConfigError(
        `[compute] data_channel_${opt} is not set: the migration data channel uses mutual TLS by default; ` +
          'give each compute host a key and certificate from the deployment CA (docs/operations.md, "Data channel certificates") ' +
          'or set [compute] data_channel_insecure = true to run it over plain HTTP',
      );
    }
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new ConfigError(`[compute] data_channel_${opt} = ${file}: ${(e as Error).message}`);
    }
  };
  return { cert: read('cert_file'), key: read('key_file'), ca: read('ca_file') };
}

/** The names a certificate vouches for: its CN and its DNS subjectAltNames. */
export function certificateNames(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'> | null | undefined): string[] {
  if (!cert || !cert.subject) return [];
  const names = new Set<string>();
  const cn = cert.subject.CN as string | string[] | undefined;
  for (const n of Array.isArray(cn) ? cn : cn ? [cn] : []) names.add(n);
  for (const entry of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+?)\s*$/.exec(entry);
    if (m) names.add(m[1]);
  }
  return [...names];
}

/** Names of the authenticated client on a TLS socket (empty when it showed no valid certificate). */
export function peerNames(socket: TLSSocket): string[] {
  if (!socket.authorized) return [];
  return certificateNames(socket.getPeerCertificate());
}

/** Client-side options: our certificate, the CA, and the host name the server must prove. */
export function clientTlsOptions(material: TlsMaterial, expectedHost: string): tls.ConnectionOptions {
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    // SNI must not be an IP (RFC 6066); the identity check below is what matters.
    servername: expectedHost,
    checkServerIdentity: (_dialled, cert) => tls.checkServerIdentity(expectedHost, cert),
    rejectUnauthorized: true,
  };
}
