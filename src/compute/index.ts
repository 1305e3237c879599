/** Building the compute side's migration engine from the configuration (with the faults installed only where they are allowed: faults.ts). */
import type { FerryConfig } from '../conf/index.js';
import { MigrationAgent } from './agent.js';
import { loadTlsMaterial } from './datachannel/tls.js';
import { DockerDriver } from './docker/driver.js';
import { withFaultInjection } from './faults.js';

export function createAgent(conf: FerryConfig, extra: { port?: number } = {}): MigrationAgent {
  const c = conf.compute;
  const driver = new DockerDriver({
    host: conf.DEFAULT.host,
    dockerUrl: c.docker_url,
    dockerRoot: c.docker_root,
    workDir: c.work_dir,
    criuBinary: conf.criu.binary,
    criuMinVersion: conf.criu.min_version,
    sharedStoragePaths: c.shared_storage_paths,
    fabricNetworks: c.fabric_networks,
    fastCheckpoint: c.fast_checkpoint,
    fastRestore: c.fast_restore,
    containerdAddress: c.containerd_address,
    maxImageBytes: c.max_image_bytes,
    maxImageManifestBytes: c.max_image_manifest_bytes,
    engineNetns: c.engine_netns || undefined,
  });
  return new MigrationAgent(
    withFaultInjection({
      driver,
      workDir: c.work_dir,
      bindHost: c.migration_bind_host,
      advertiseHost: c.migration_host || undefined,
      port: extra.port ?? c.migration_port,
      maxTransferBytes: c.max_transfer_bytes,
      channel: {
        tls: c.data_channel_insecure
          ? null
          : loadTlsMaterial({ cert_file: c.data_channel_cert_file, key_file: c.data_channel_key_file, ca_file: c.data_channel_ca_file }),
        tokenTtlMs: c.data_channel_token_ttl * 1000,
        compression: c.migration_compression === 'gzip' ? 'gzip' : 'identity',
        bandwidthBytesPerSec: c.migration_bandwidth * 1024 * 1024,
        maxTransferEntries: c.max_transfer_entries,
      },
      diskPrecopy: c.disk_precopy ? { maxRounds: c.disk_precopy_max_rounds } : null,
      permitPostCopy: c.permit_post_copy,
      postCopyTimeoutMs: c.post_copy_timeout * 1000,
      lazyRestoreTimeoutMs: c.lazy_restore_timeout * 1000,
      postCopyStallMs: c.post_copy_stall_timeout * 1000,
    }),
  );
}

export { MigrationAgent } from './agent.js';
export type * from './steps.js';
export type * from './driver.js';
