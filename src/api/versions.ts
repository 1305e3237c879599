/** Version discovery documents (GET / and GET /v1), in the shape other OpenStack APIs use. */
import type { Request } from 'express';
import type { FerryConfig } from '../conf/index.js';
import { MAX_VERSION, MIN_VERSION } from './microversions.js';

export const API_VERSION = {
  id: 'v1.0',
  status: 'CURRENT',
  /** The newest microversion (see microversions.ts for what each adds). */
  version: MAX_VERSION,
  min_version: MIN_VERSION,
  updated: '2026-11-01T00:00:00Z',
} as const;

export const MEDIA_TYPE = 'application/vnd.openstack.container-migration+json;version=1';

/** Where the API is reached: the configured public endpoint's root, else what the request was sent to. */
export function baseUrl(conf: FerryConfig, req: Request): string {
  if (conf.api.public_endpoint) return conf.api.public_endpoint.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${req.protocol}://${req.get('host') ?? `${conf.api.bind_host}:${conf.api.bind_port}`}`;
}

function version(base: string) {
  return {
    ...API_VERSION,
    links: [{ rel: 'self', href: `${base}/v1/` }],
    'media-types': [{ base: 'application/json', type: MEDIA_TYPE }],
  };
}

export function versionsDocument(conf: FerryConfig, req: Request) {
  return { versions: [version(baseUrl(conf, req))] };
}

export function versionDocument(conf: FerryConfig, req: Request) {
  return { version: version(baseUrl(conf, req)) };
}
