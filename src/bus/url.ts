/**
 * `transport_url` parsing, as oslo.messaging reads it:
 * `rabbit://user:pass@host:port[,user:pass@host2:port2]/vhost`. Several hosts are tried in
 * the order listed (a cluster's nodes, or independent brokers: docs/operations.md). User and
 * password are percent-decoded; an empty path is the default vhost `/`.
 */
import { ConfigError } from '../common/errors.js';

export interface BrokerHost {
  hostname: string;
  port: number;
  username: string;
  password: string;
}

export interface TransportUrl {
  driver: 'rabbit';
  hosts: BrokerHost[];
  virtualHost: string;
  query: Record<string, string>;
}

const DEFAULT_PORT = 5672;

export function parseTransportUrl(url: string): TransportUrl {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(url.trim());
  if (!m) throw new ConfigError(`invalid transport_url: ${redact(url)}`);
  const scheme = m[1].toLowerCase();
  // `kombu` is oslo's old alias of the rabbit driver.
  if (scheme !== 'rabbit' && scheme !== 'kombu') {
    throw new ConfigError(`unsupported transport driver "${scheme}" (only rabbit): ${redact(url)}`);
  }
  const netloc = m[2];
  if (!netloc) throw new ConfigError(`transport_url has no host: ${redact(url)}`);
  const hosts = netloc.split(',').map((part) => parseHost(part, url));
  const path = m[3] ?? '';
  const vhostRaw = path.length > 1 ? decode(path.slice(1), url) : '';
  const query: Record<string, string> = {};
  if (m[4]) for (const [k, v] of new URLSearchParams(m[4].slice(1))) query[k] = v;
  return { driver: 'rabbit', hosts, virtualHost: vhostRaw === '' ? '/' : vhostRaw, query };
}

function parseHost(part: string, url: string): BrokerHost {
  let userinfo = '';
  let hostport = part;
  const at = part.lastIndexOf('@');
  if (at >= 0) {
    userinfo = part.slice(0, at);
    hostport = part.slice(at + 1);
  }
  let username = 'guest';
  let password = 'guest';
  if (at >= 0) {
    const colon = userinfo.indexOf(':');
    username = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, url);
    password = colon >= 0 ? decode(userinfo.slice(colon + 1), url) : '';
  }
  let hostname: string;
  let portStr: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d*))?$/.exec(hostport);
  if (v6) {
    hostname = v6[1];
    portStr = v6[2];
  } else {
    const colon = hostport.lastIndexOf(':');
    hostname = colon >= 0 ? hostport.slice(0, colon) : hostport;
    portStr = colon >= 0 ? hostport.slice(colon + 1) : undefined;
  }
  if (!hostname) throw new ConfigError(`transport_url host without a name: ${redact(url)}`);
  let port = DEFAULT_PORT;
  if (portStr !== undefined && portStr !== '') {
    if (!/^\d+$/.test(portStr) || Number(portStr) < 1 || Number(portStr) > 65535) {
      throw new ConfigError(`transport_url has a bad port "${portStr}": ${redact(url)}`);
    }
    port = Number(portStr);
  }
  return { hostname, port, username, password };
}

function decode(s: string, url: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConfigError(`transport_url has bad percent-encoding: ${redact(url)}`);
  }
}

/** The URL with passwords hidden, for logs and error messages. */
export function redact(url: string): string {
  return url.replace(/([/,])([^:/@,]*):([^@/,]*)@/g, '$1$2:***@');
}

/**
 * The hosts to try, in this order, when moving back from host `current` (an index into
 * `hosts`): every host listed before it, first first. Services that share a transport_url
 * thus all end up on the first broker that answers.
 */
export function failbackCandidates(current: number): number[] {
  return Array.from({ length: Math.max(0, current) }, (_, i) => i);
}

/** One host as a loggable `host:port` label. */
export function hostLabel(h: BrokerHost): string {
  return h.hostname.includes(':') ? `[${h.hostname}]:${h.port}` : `${h.hostname}:${h.port}`;
}
