/** [database] options: where the conductor keeps its records. */
import { strOpt } from './opts.js';

export const databaseOpts = {
  connection: strOpt(
    'sqlite:////var/lib/ferry/ferry.sqlite',
    'Database URL: sqlite:////ABS/PATH (the embedded default, one conductor) or mysql+pymysql://USER:PASS@HOST[:PORT]/DBNAME (MariaDB/MySQL, several conductors).',
    {
      secret: true,
    },
  ),
};
