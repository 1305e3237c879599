/**
 * [oslo_messaging_rabbit] options: how the RabbitMQ driver uses the brokers of transport_url.
 * As in oslo.messaging, a query parameter of transport_url named like one of these options
 * (`?ssl=1&ssl_ca_file=/etc/ferry/rabbit-ca.pem`) overrides it: src/bus/tls.ts.
 */
import { boolOpt, intOpt, strOpt, type GroupValues } from './opts.js';

export const rabbitOpts = {
  failback_interval: intOpt(
    0,
    "While connected to a later host of transport_url, seconds between attempts to move back to an earlier one (0: stay until that connection drops). Set it when the hosts are independent brokers, not nodes of one cluster, so that every service ends up on the same broker. Ferry's own option.",
    0,
  ),
  ssl: boolOpt(
    false,
    "Connect to RabbitMQ over TLS (amqps). The ports of transport_url are used as written (5672 when none is given, as oslo.messaging does): write the brokers' TLS port, usually 5671. The broker's certificate must chain to ssl_ca_file (the system's CAs when empty) and name the host as written in transport_url (DNS or IP subjectAltName).",
  ),
  ssl_ca_file: strOpt('', "PEM file of the CA(s) that sign the brokers' certificates (with ssl). Empty: the system's trusted CAs."),
  ssl_cert_file: strOpt('', 'PEM client certificate presented to the brokers (with ssl), for brokers that ask for one; needs ssl_key_file.'),
  ssl_key_file: strOpt('', 'PEM private key of ssl_cert_file (with ssl); empty: read from ssl_cert_file.'),
  ssl_version: strOpt(
    '',
    'TLS version to use (with ssl): TLSv1_2 or TLSv1_3 pins that version; SSLv23 or empty negotiates the highest both sides speak (at least TLS 1.2). SSLv2, SSLv3, TLSv1 and TLSv1_1 are refused.',
  ),
  rabbit_quorum_queue: boolOpt(
    false,
    'Declare the shared queues (RPC topic and server queues, notification queues) as quorum queues (x-queue-type: quorum): replicated over the nodes of a RabbitMQ cluster (3.8 or later), they survive the loss of a minority of its nodes. Quorum queues are durable, and so is the topic exchange they are bound to, as in oslo.messaging. Every service and oslo.messaging peer of the exchange must agree on this option: RabbitMQ refuses to redeclare a queue with another type. Changing it on a running cloud needs the old queues deleted.',
  ),
  rabbit_transient_quorum_queue: boolOpt(
    false,
    "Declare the transient queues too (each process's reply queue and its fanout queues) as quorum queues, durable, with their fanout exchanges durable; as oslo.messaging 2023.2 and later. Off: they stay classic queues on the node the process is connected to, and are declared again on another node when that one fails.",
  ),
  rabbit_quorum_delivery_limit: intOpt(
    0,
    'With rabbit_quorum_queue (or rabbit_transient_quorum_queue): a message redelivered more than this many times is dropped, or dead-lettered if a policy says so (x-delivery-limit). 0: no limit.',
    0,
  ),
  rabbit_quorum_max_memory_length: intOpt(
    0,
    'With rabbit_quorum_queue: at most this many messages of a quorum queue kept in memory (x-max-in-memory-length; RabbitMQ 3.10 and later keep messages on disk and ignore it, RabbitMQ 4 refuses it). 0: not set.',
    0,
  ),
  rabbit_quorum_max_memory_bytes: intOpt(
    0,
    'With rabbit_quorum_queue: at most this many bytes of a quorum queue kept in memory (x-max-in-memory-bytes; ignored from RabbitMQ 3.10, refused by RabbitMQ 4). 0: not set.',
    0,
  ),
  rabbit_transient_queues_ttl: intOpt(
    1800,
    'Seconds after which an unused reply or fanout queue is deleted by the broker (x-expires), so that the queues of processes that died do not pile up. 0: never.',
    0,
  ),
  ssl_enforce_fips_mode: boolOpt(false, 'Switch OpenSSL to FIPS mode before connecting (with ssl). Refused at start when this Node.js has no FIPS provider.'),
};

export type RabbitValues = GroupValues<typeof rabbitOpts>;
