/** [DEFAULT] options: host name, message bus, control exchange, state path, and oslo.log's logging options. */
import os from 'node:os';
import { boolOpt, intOpt, strOpt } from './opts.js';

export const defaultOpts = {
  host: strOpt(os.hostname(), 'Name of this host as the other services know it (the compute host name).', {
    sampleDefault: "<this machine's host name>",
  }),
  transport_url: strOpt('rabbit://guest:guest@127.0.0.1:5672/', 'Message bus URL: rabbit://USER:PASS@HOST:PORT[,USER:PASS@HOST:PORT...]/VHOST', {
    secret: true,
  }),
  control_exchange: strOpt('ferry', 'Topic exchange that Ferry RPC and notifications use.'),
  rpc_response_timeout: intOpt(60, 'Seconds an RPC call waits for its reply.', 1),
  executor_thread_pool_size: intOpt(
    64,
    "RPC requests a service handles at once; further ones wait on the bus, unacknowledged, until one ends (oslo.messaging's option).",
    1,
  ),
  state_path: strOpt('/var/lib/ferry', 'Where Ferry keeps its state (database, work files).'),
  debug: boolOpt(false, "Log at debug level instead of info (oslo.log's option). FERRY_LOG_LEVEL in the environment wins over it.", {
    mutable: true,
  }),
  log_file: strOpt(
    '',
    "Write the log to this file instead of stderr (oslo.log's option); a relative name is taken in log_dir. SIGHUP reopens it (after logrotate).",
  ),
  log_dir: strOpt('', 'Directory of log_file; with log_dir alone the file is <log_dir>/<service name>.log, as oslo.log does.'),
  use_stderr: boolOpt(false, 'Log to stderr as well when a log file is set (without one, the log always goes to stderr).'),
};
