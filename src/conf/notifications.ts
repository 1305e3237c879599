/** [oslo_messaging_notifications] options: how and where notifications are sent. */
import { listOpt, strOpt } from './opts.js';

export const notificationOpts = {
  driver: strOpt('messagingv2', 'messagingv2, or noop to send nothing.', { choices: ['messagingv2', 'noop'] }),
  topics: listOpt(['notifications'], 'Topics notifications are sent to (as <topic>.<priority>).'),
};
