/** [healthcheck] options: ferry-api's /healthcheck, as oslo.middleware's healthcheck middleware reads them. */
import { boolOpt, strOpt } from './opts.js';

export const healthcheckOpts = {
  disable_by_file_path: strOpt(
    '',
    'While this file exists, /healthcheck answers 503 "DISABLED BY FILE" (oslo.middleware\'s disable_by_file), so that a load balancer takes this ferry-api out before maintenance. Empty: never.',
    { mutable: true },
  ),
  detailed: boolOpt(
    false,
    'Answer /healthcheck?detail with the detail (checks, versions, pid) to anyone; without it only an admin token gets the detail. Shows versions to unauthenticated callers: keep it off on public endpoints.',
    { mutable: true },
  ),
};
