/** [database] options: where the conductor keeps its records. */
import { strOpt } from './opts.js';

export const databaseOpts = {
  connection: strOpt('sqlite:////var/lib/ferry/ferry.sqlite', 'Database URL; sqlite:////ABS/PATH is the embedded default.', {
    secret: true,
  }),
};
