/**
 * Notification options. [oslo_messaging_notifications]: how and where oslo.messaging sends them;
 * [notifications]: which of Ferry's two formats are sent (Nova's options of the same names).
 */
import { listOpt, strOpt } from './opts.js';

export const notificationOpts = {
  driver: strOpt('messagingv2', 'messagingv2, or noop to send nothing.', { choices: ['messagingv2', 'noop'] }),
  topics: listOpt(['notifications'], 'Topics notifications are sent to (as <topic>.<priority>).'),
};

export const NOTIFICATION_FORMATS = ['unversioned', 'versioned', 'both'] as const;
export type NotificationFormat = (typeof NOTIFICATION_FORMATS)[number];

export const notificationFormatOpts = {
  notification_format: strOpt(
    'both',
    'Which notifications are sent: unversioned (the original ones, on [oslo_messaging_notifications] topics), versioned (declared payload objects with versions, on versioned_notifications_topics), or both.',
    { choices: [...NOTIFICATION_FORMATS] },
  ),
  versioned_notifications_topics: listOpt(['versioned_notifications'], 'Topics the versioned notifications are sent to (as <topic>.<priority>).'),
};
