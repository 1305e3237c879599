/**
 * The development cloud's Keystone for the identity and API integration tests: from
 * `ferry-devcloud status --json` when the CLI is built, else the cloud's fixed defaults
 * (src/devcloud/layout.ts), so these tests also run against a cloud brought up by hand.
 * FERRY_TEST_KEYSTONE_URL points them at another Keystone with the same users.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KEYSTONE } from '../../../src/devcloud/layout.js';
import type { CloudCredentials } from '../../../src/devcloud/status.js';
import { cloud, repoRoot } from '../../helpers/cloud.js';

export interface KeystoneCloud {
  authUrl: string;
  region: string;
  admin: CloudCredentials;
  demo: CloudCredentials;
  /** Only the reader role in the demo project (src/devcloud/keystone.ts). */
  reader: CloudCredentials;
  service: CloudCredentials;
}

function creds(username: string, password: string, project: string): CloudCredentials {
  return { username, password, project_name: project, user_domain_name: 'Default', project_domain_name: 'Default' };
}

let cached: KeystoneCloud | undefined;

export function keystoneCloud(): KeystoneCloud {
  if (cached) return cached;
  try {
    if (!fs.existsSync(path.join(repoRoot, 'dist/cmd/devcloud.js'))) throw new Error('ferry-devcloud is not built');
    const k = cloud().keystone;
    cached = { authUrl: k.auth_url, region: KEYSTONE.region, admin: k.admin, demo: k.demo, reader: k.reader, service: k.service };
  } catch {
    cached = {
      authUrl: KEYSTONE.authUrl,
      region: KEYSTONE.region,
      admin: creds('admin', KEYSTONE.adminPassword, 'admin'),
      demo: creds('demo', KEYSTONE.demoPassword, 'demo'),
      reader: creds('demo-reader', KEYSTONE.demoPassword, 'demo'),
      service: creds('ferry', KEYSTONE.servicePassword, 'service'),
    };
  }
  if (process.env.FERRY_TEST_KEYSTONE_URL) cached = { ...cached, authUrl: process.env.FERRY_TEST_KEYSTONE_URL };
  return cached;
}
