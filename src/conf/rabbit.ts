/** [oslo_messaging_rabbit] options: how the RabbitMQ driver uses the brokers of transport_url. */
import { intOpt } from './opts.js';

export const rabbitOpts = {
  failback_interval: intOpt(
    0,
    'While connected to a later host of transport_url, seconds between attempts to move back to an earlier one (0: stay until that connection drops). Set it when the hosts are independent brokers, not nodes of one cluster, so that every service ends up on the same broker. Ferry\'s own option.',
    0,
  ),
};
