#!/usr/bin/python3
"""A real Python oslo.messaging peer for Ferry's bus interop tests.

Run with /usr/bin/python3 (Debian's python3-oslo.messaging). Every mode prints JSON lines
on stdout; logs go to stderr.

  rpc-server --url U --exchange E --topic T --server S [--version V] [--namespace N]
      Serves the TestEndpoint below; prints {"event": "ready"} once consuming, then one
      {"event": "cast"|"called", ...} line per request it handles.
  client --url U --exchange E
      Reads one JSON command per stdin line, answers one JSON line each:
        {"op": "call"|"cast", "topic", "method", "args", "ctx"?, "server"?, "version"?,
         "namespace"?, "fanout"?, "timeout"?, "call_monitor_timeout"?}
        {"op": "notify", "publisher_id", "event_type", "priority", "payload", "ctx"?, "topics"?}
      Answer: {"ok": true, "result": ...} or {"ok": false, "error": {...}}.
  listen --url U --exchange E --topics a,b [--priorities info,error] [--pool P]
      Prints {"event": "ready"} then one JSON line per notification received.
"""
import argparse
import json
import logging
import sys
import threading
import time

from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging
from oslo_messaging.rpc import dispatcher as rpc_dispatcher

LOG = logging.getLogger('oslo_peer')
_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + '\n')
        sys.stdout.flush()


CONFIG_FILES = []


def make_conf(exchange):
    # The global CONF, as a real service uses: some oslo.messaging options (metrics) are
    # registered only there. --config-file: the service's own options ([oslo_messaging_rabbit]).
    conf = cfg.CONF
    conf([f'--config-file={f}' for f in CONFIG_FILES], project='oslo_peer')
    oslo_messaging.set_transport_defaults(control_exchange=exchange)
    return conf


class MigrationNotFound(Exception):
    """Same class name as Ferry's registry entry: Ferry must rebuild it as its own class."""


class TestEndpoint(object):
    def __init__(self, server_name, version, namespace):
        self.server_name = server_name
        self.target = oslo_messaging.Target(version=version, namespace=namespace)

    def echo(self, ctxt, **kwargs):
        emit({'event': 'called', 'method': 'echo', 'args': kwargs, 'ctxt': ctxt})
        return {'args': kwargs, 'ctxt': ctxt, 'server': self.server_name}

    def whoami(self, ctxt):
        return self.server_name

    def add(self, ctxt, a, b):
        return a + b

    def record(self, ctxt, **kwargs):
        # A cast target: the test reads the event line.
        emit({'event': 'cast', 'method': 'record', 'args': kwargs, 'ctxt': ctxt,
              'server': self.server_name})

    def fail_value(self, ctxt, text):
        raise ValueError(text)

    def fail_not_found(self, ctxt, migration_id):
        raise MigrationNotFound('Migration %s could not be found.' % migration_id)

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return 'slept %s' % seconds


def run_rpc_server(a):
    conf = make_conf(a.exchange)
    transport = oslo_messaging.get_rpc_transport(conf, url=a.url)
    target = oslo_messaging.Target(topic=a.topic, server=a.server)
    endpoint = TestEndpoint(a.server, a.version, a.namespace)
    server = oslo_messaging.get_rpc_server(transport, target, [endpoint],
                                           executor='threading')
    server.start()
    # start() returns once the listener's queues are declared and consumed.
    emit({'event': 'ready'})
    try:
        for _line in sys.stdin:  # run until stdin closes
            pass
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


def error_json(e):
    out = {'python_class': type(e).__name__, 'str': str(e)}
    if isinstance(e, oslo_messaging.RemoteError):
        out.update(exc_type=e.exc_type, value=e.value)
    return out


def make_ctx(d):
    """A plain dict, or with "_oslo": true an oslo.context RequestContext (what Nova sends)."""
    d = dict(d or {})
    if d.pop('_oslo', False):
        return oslo_context.RequestContext(**d)
    return d


def run_client(a):
    conf = make_conf(a.exchange)
    transport = oslo_messaging.get_rpc_transport(
        conf, url=a.url,
        allowed_remote_exmods=a.allowed_exmods.split(',') if a.allowed_exmods else None)
    notif_transport = oslo_messaging.get_notification_transport(conf, url=a.url)
    emit({'event': 'ready'})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        try:
            op = cmd['op']
            ctx = make_ctx(cmd.get('ctx'))
            if op in ('call', 'cast'):
                target = oslo_messaging.Target(topic=cmd['topic'])
                client = oslo_messaging.get_rpc_client(transport, target)
                prep = {}
                for k in ('server', 'version', 'namespace', 'fanout', 'timeout',
                          'call_monitor_timeout'):
                    if cmd.get(k) is not None:
                        prep[k] = cmd[k]
                if prep:
                    client = client.prepare(**prep)
                if op == 'call':
                    res = client.call(ctx, cmd['method'], **cmd.get('args', {}))
                else:
                    res = client.cast(ctx, cmd['method'], **cmd.get('args', {}))
                emit({'ok': True, 'result': res})
            elif op == 'notify':
                notifier = oslo_messaging.Notifier(
                    notif_transport, publisher_id=cmd['publisher_id'],
                    driver='messagingv2', topics=cmd.get('topics') or ['notifications'])
                getattr(notifier, cmd['priority'])(ctx, cmd['event_type'], cmd['payload'])
                emit({'ok': True, 'result': None})
            else:
                emit({'ok': False, 'error': {'python_class': 'BadCommand', 'str': op}})
        except Exception as e:  # the answer carries what Python saw
            emit({'ok': False, 'error': error_json(e)})
    transport.cleanup()
    notif_transport.cleanup()


class ListenEndpoint(object):
    def __init__(self, priorities):
        for p in priorities:
            setattr(self, p, self._make(p))

    @staticmethod
    def _make(priority):
        def handler(ctxt, publisher_id, event_type, payload, metadata):
            emit({'event': 'notification', 'priority': priority, 'ctxt': ctxt,
                  'publisher_id': publisher_id, 'event_type': event_type,
                  'payload': payload, 'metadata': metadata})
            return oslo_messaging.NotificationResult.HANDLED
        return handler


def run_listen(a):
    conf = make_conf(a.exchange)
    transport = oslo_messaging.get_notification_transport(conf, url=a.url)
    priorities = a.priorities.split(',')
    targets = [oslo_messaging.Target(topic=t) for t in a.topics.split(',')]
    listener = oslo_messaging.get_notification_listener(
        transport, targets, [ListenEndpoint(priorities)], executor='threading',
        pool=a.pool)
    listener.start()
    emit({'event': 'ready'})
    try:
        for _line in sys.stdin:
            pass
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['rpc-server', 'client', 'listen'])
    p.add_argument('--url', required=True)
    p.add_argument('--exchange', required=True)
    p.add_argument('--topic')
    p.add_argument('--server')
    p.add_argument('--version', default='1.0')
    p.add_argument('--namespace', default=None)
    p.add_argument('--topics', default='notifications')
    p.add_argument('--priorities', default='audit,debug,info,warn,error,critical,sample')
    p.add_argument('--pool', default=None)
    p.add_argument('--allowed-exmods', default='')
    p.add_argument('--config-file', default=None)
    a = p.parse_args()
    if a.config_file:
        CONFIG_FILES.append(a.config_file)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    assert rpc_dispatcher  # imported so the module is loaded as in a real service
    {'rpc-server': run_rpc_server, 'client': run_client, 'listen': run_listen}[a.mode](a)


if __name__ == '__main__':
    main()
