/** The message bus: oslo.messaging's rabbit wire protocol. One import for services. */
import type { FerryConfig } from '../conf/index.js';
import { Notifier } from './notifier.js';
import { Transport, type TransportOptions } from './transport.js';

export { Transport } from './transport.js';
export type { TransportOptions, ExchangeSpec, QueueSpec, ConsumerSpec, Delivery, Consumer, PublishRequest } from './transport.js';
export { RequestContext, generateRequestId } from '../common/context.js';
export type { RequestContextInit } from '../common/context.js';
export { RPCClient } from './rpc/client.js';
export type { Target, RPCClientOptions, PrepareOptions, ContextLike } from './rpc/client.js';
export { RPCServer, selectEndpoint } from './rpc/server.js';
export type { Endpoint, EndpointTarget, ServerTarget, RPCServerOptions } from './rpc/server.js';
export { Notifier, PRIORITIES, exceptionPayload } from './notifier.js';
export type { NotifierOptions, Priority } from './notifier.js';
export { NotificationListener } from './listener.js';
export type { Notification, NotificationHandler, ListenerOptions, NotificationResult } from './listener.js';
export { serializeFailure, deserializeFailure } from './failure.js';
export { parseTransportUrl } from './url.js';

/** The transport a service's config describes (`[DEFAULT] transport_url`, `control_exchange`, `[oslo_messaging_rabbit]`, which the URL's query overrides). */
export function transportFromConfig(conf: FerryConfig, options: TransportOptions = {}): Transport {
  return Transport.fromUrl(conf.DEFAULT.transport_url, {
    exchange: conf.DEFAULT.control_exchange,
    rabbit: conf.oslo_messaging_rabbit,
    ...options,
  });
}

/**
 * The notifier of the unversioned notifications a service's config describes
 * (`[oslo_messaging_notifications]`); it sends nothing when `[notifications] notification_format`
 * is `versioned`.
 */
export function notifierFromConfig(conf: FerryConfig, transport: Transport, publisherId: string): Notifier {
  const n = conf.oslo_messaging_notifications;
  const off = conf.notifications.notification_format === 'versioned';
  return new Notifier(transport, { publisherId, driver: off ? 'noop' : (n.driver as 'messagingv2' | 'noop'), topics: n.topics });
}

/**
 * The notifier of the versioned notifications (Nova's split): same driver and envelope, on
 * `[notifications] versioned_notifications_topics`; it sends nothing when `notification_format`
 * is `unversioned`.
 */
export function versionedNotifierFromConfig(conf: FerryConfig, transport: Transport, publisherId: string): Notifier {
  const off = conf.notifications.notification_format === 'unversioned';
  const driver = off ? 'noop' : (conf.oslo_messaging_notifications.driver as 'messagingv2' | 'noop');
  return new Notifier(transport, { publisherId, driver, topics: conf.notifications.versioned_notifications_topics });
}
