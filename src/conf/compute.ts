/** [compute] options: the compute agent beside one host's engine (engine address, data channel, staging, checkpoint path, limits). */
import { boolOpt, intOpt, listOpt, strOpt } from './opts.js';

export const computeOpts = {
  docker_url: strOpt('unix:///var/run/docker.sock', 'Docker Engine API of this host (unix:// or tcp://).'),
  docker_root: strOpt('', 'DockerRootDir of the engine; empty = ask the engine (docker info).'),
  migration_bind_host: strOpt('127.0.0.1', 'Address the migration data channel listens on.'),
  migration_host: strOpt('', "Address peers use to reach this host's data channel; default migration_bind_host."),
  migration_port: intOpt(9518, 'Port of the migration data channel.', 1),
  work_dir: strOpt('/var/lib/ferry/compute', 'Where checkpoints and archives are staged.'),
  max_transfer_bytes: intOpt(64 * 1024 * 1024 * 1024, 'Largest migration payload accepted.', 1),
  max_transfer_entries: intOpt(
    200_000,
    'Most entries (files, directories, links) one migration may declare, all parts together; a target refuses a plan past it (HTTP 413 on the data channel).',
    1,
  ),
  max_image_bytes: intOpt(16 * 1024 * 1024 * 1024, 'Largest image archive (docker save) a target loads for a migration.', 1),
  max_image_manifest_bytes: intOpt(
    1024 * 1024,
    'Largest manifest.json or index.json in an image archive a target loads: it reads each whole to take the tags out, so a larger one is refused (HTTP 413-like transfer_quota_exceeded).',
    1,
  ),
  data_channel_cert_file: strOpt(
    '',
    "PEM certificate of this host for the migration data channel, signed by the deployment CA; its CN and DNS subjectAltName are this host's name ([DEFAULT] host).",
  ),
  data_channel_key_file: strOpt('', 'PEM private key of data_channel_cert_file.'),
  data_channel_ca_file: strOpt('', "PEM certificate of the CA that signs every compute host's data channel certificate; peers must present one from it."),
  data_channel_insecure: boolOpt(false, 'Run the data channel over plain HTTP without host authentication (bearer tokens only). Development only.'),
  data_channel_token_ttl: intOpt(600, 'Seconds a data channel grant or plan stays valid (each received part extends the plan by as much).', 10),
  migration_compression: strOpt('none', 'Compress each part on the data channel: none or gzip (node:zlib, level 1); the target may answer none.', {
    choices: ['none', 'gzip'],
  }),
  migration_bandwidth: intOpt(0, "Cap of one migration's transfer in MiB/s, all parts together (0 = unlimited), as Nova's live_migration_bandwidth.", 0),
  report_interval: intOpt(10, 'Seconds between heartbeats to the conductor.', 1),
  shared_storage_paths: listOpt([], 'Host paths that are shared storage (bind mounts under them may move).'),
  fast_checkpoint: boolOpt(false, 'Checkpoint through containerd directly (skips the content store round trip).'),
  fast_restore: boolOpt(
    true,
    "Restore without copying the checkpoint through containerd's content store: Docker starts from a stand-in folder and CRIU reads the images in place (images-dir in /etc/criu/runc.conf, under its lock held exclusively for each restore).",
  ),
  containerd_address: strOpt('/run/docker/containerd/containerd.sock', "Socket of the Docker engine's containerd (namespace moby), used by fast_checkpoint."),
  engine_netns: strOpt(
    '',
    "Network namespace (/run/netns/NAME) the Docker engine runs in when it is not the agent's own; post-copy's page server then listens there behind a relay. Empty on ordinary hosts.",
  ),
  disk_precopy: boolOpt(
    true,
    'Send the writable layer and local volumes of a container leaving this host while it still runs, in rounds, so that the freeze moves only what changed since the last round (blocks of large files); the target checks its copy before the restore. Off: they move in the freeze (a target that refuses the rounds gets them so too).',
  ),
  disk_precopy_max_rounds: intOpt(
    4,
    'Most disk pre-copy rounds while the container runs (they also stop when a round sends no less than the one before); the freeze sends one more.',
    1,
  ),
  permit_post_copy: boolOpt(
    false,
    'Let migrations from or to this host move memory after the restore (post-copy, lazy pages): downtime no longer grows with memory, but if the source host fails before every page arrived, the container is lost. Asked per migration ("post_copy": true) or by force-complete.',
  ),
  lazy_restore_timeout: intOpt(
    45,
    "Seconds a post-copy target's `docker start --checkpoint` may take; then the agent ends the lazy-pages daemon and CRIU's restore by PID so that the rollback can remove the shell.",
    5,
  ),
  post_copy_timeout: intOpt(600, 'Seconds a post-copy target waits for all of its memory pages before it gives up (the migration then ends in error).', 10),
  post_copy_stall_timeout: intOpt(
    30,
    'Seconds a post-copy target waits while no page arrives (a stopped lazy-pages daemon, a stuck peer) before it ends the post-copy by PID; the migration then ends in error with the source frozen and whole.',
    5,
  ),
  live_migration_completion_timeout: intOpt(
    0,
    'Seconds a migration may take from its acceptance before live_migration_timeout_action applies (0 = no limit); read by the conductor, checked between steps.',
    0,
  ),
  live_migration_timeout_action: strOpt(
    'abort',
    'What happens when live_migration_completion_timeout passes: abort, or force_complete (switch to post-copy, where permitted, if the container is not frozen yet).',
    {
      choices: ['abort', 'force_complete'],
    },
  ),
  fabric_networks: listOpt(['ferry-fabric'], 'Docker networks shared by all hosts: a container on one keeps its IP, MAC and TCP connections.'),
};
