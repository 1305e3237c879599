/** [criu] options: which CRIU binary the hosts use and the oldest version accepted. */
import { strOpt } from './opts.js';

export const criuOpts = {
  binary: strOpt('criu', 'CRIU executable (found in PATH when not absolute).'),
  min_version: strOpt('4.2', 'Oldest CRIU accepted by pre-checks.'),
};
