/** The Ferry config files the development cloud writes for its services. */
import fs from 'node:fs';
import path from 'node:path';
import { writeIfChanged } from './files.js';
import { ensureHostCert, pkiDir } from './certs.js';
import { credentials } from './keystone.js';
import { FERRY_PORTS, KEYSTONE, hostDirs, hostNetns, repoRoot, stateDir } from './layout.js';
import { rabbitConfigLines, transportUrl } from './rabbit.js';
import { cloudHosts, conductorNames, databaseUrl, readShape } from './shape.js';

export const etcDir = path.join(stateDir, 'etc');

export function configFiles(): Record<string, string> {
  const files: Record<string, string> = { controller: path.join(etcDir, 'ferry.conf') };
  for (const h of cloudHosts()) files[h] = computeConfigFile(h);
  // Conductors beyond the first (the controller's) have their own file: their own host name.
  for (const c of conductorNames(readShape().conductors).slice(1)) files[c.configKey] = path.join(etcDir, `ferry-${c.configKey}.conf`);
  return files;
}

export function computeConfigFile(host: string): string {
  return path.join(etcDir, `ferry-${host}.conf`);
}

function common(host: string): string[] {
  const svc = credentials.service;
  return [
    '[DEFAULT]',
    `host = ${host}`,
    `transport_url = ${transportUrl()}`,
    'control_exchange = ferry',
    `state_path = ${path.join(stateDir, 'ferry')}`,
    '',
    '[keystone_authtoken]',
    `www_authenticate_uri = ${KEYSTONE.authUrl}`,
    `auth_url = ${KEYSTONE.authUrl}`,
    `username = ${svc.username}`,
    `password = ${svc.password}`,
    `project_name = ${svc.project_name}`,
    `user_domain_name = ${svc.user_domain_name}`,
    `project_domain_name = ${svc.project_domain_name}`,
    `region_name = ${KEYSTONE.region}`,
    '',
    '[oslo_messaging_notifications]',
    'driver = messagingv2',
    'topics = notifications',
    '',
    ...rabbitConfigLines(),
    '',
  ];
}

export function writeConfigFiles(): Record<string, string> {
  fs.mkdirSync(etcDir, { recursive: true });
  const files = configFiles();
  const controller = (host: string, index: number) =>
    [
      ...common(host),
      '[api]',
      'bind_host = 127.0.0.1',
      `bind_port = ${FERRY_PORTS.api}`,
      // Two processes share the port, as a region runs the API several times over.
      'workers = 2',
      `region_name = ${KEYSTONE.region}`,
      `policy_file = ${path.join(repoRoot, 'etc/ferry/policy.yaml')}`,
      '',
      '[database]',
      `connection = ${databaseUrl(readShape(), index)}`,
      '',
      '[conductor]',
      'max_concurrent_migrations_per_host = 1',
      'service_down_time = 15',
      // One machine: a host that went quiet is restarted by hand or by a test within seconds, so
      // notice a lost answer fast and give up (status error) sooner than a real region would.
      'call_monitor_timeout = 10',
      'step_retry_deadline = 60',
      // A conductor that dies hands its migrations over within seconds here.
      'claim_lease_seconds = 15',
      '',
    ].join('\n');
  for (const [i, c] of conductorNames(readShape().conductors).entries()) writeIfChanged(files[c.configKey], controller(c.host, i));
  for (const h of cloudHosts()) {
    const d = hostDirs(h);
    // The data channel's mutual TLS: a CA under the state dir and a certificate per host (made once).
    const tls = ensureHostCert(pkiDir(stateDir), h);
    writeIfChanged(
      files[h],
      [
        ...common(h),
        '[compute]',
        `docker_url = unix://${d.socket}`,
        `docker_root = ${d.dataRoot}`,
        'migration_bind_host = 127.0.0.1',
        `migration_port = ${FERRY_PORTS.migration[h]}`,
        `work_dir = ${path.join(stateDir, 'ferry', h)}`,
        'report_interval = 5',
        // containerd's own checkpoint skips Docker's content-store round trip (npm run bench: Redis 1M keys 6.5 s -> 4.5 s downtime).
        'fast_checkpoint = true',
        `containerd_address = ${path.join(d.execRoot, 'containerd', 'containerd.sock')}`,
        // Each engine runs in its own network namespace: post-copy's page server listens there.
        `engine_netns = /run/netns/${hostNetns(h)}`,
        // The development cloud offers post-copy (opt-in per migration); its risk is in docs/operations.md.
        'permit_post_copy = true',
        // The disk pre-copy is on by default, as in a deployment; FERRY_DEVCLOUD_DISK_PRECOPY=0 at `up` or `restart` (both write this file) turns it off.
        ...(process.env.FERRY_DEVCLOUD_DISK_PRECOPY === '0' ? ['disk_precopy = false'] : []),
        `data_channel_cert_file = ${tls.cert_file}`,
        `data_channel_key_file = ${tls.key_file}`,
        `data_channel_ca_file = ${tls.ca_file}`,
        '',
      ].join('\n'),
    );
  }
  return files;
}
