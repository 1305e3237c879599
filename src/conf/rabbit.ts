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
  ssl_enforce_fips_mode: boolOpt(false, 'Switch OpenSSL to FIPS mode before connecting (with ssl). Refused at start when this Node.js has no FIPS provider.'),
};

export type RabbitValues = GroupValues<typeof rabbitOpts>;
