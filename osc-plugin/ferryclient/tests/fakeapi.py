"""A fake Ferry API (the REST contract, in memory) for the plugin's own tests.

Each GET of a migration moves it one step along accepted -> pre-migrating -> running
(checkpoint, transfer) -> post-migrating (restore) -> completed; a container whose name
starts with ``doomed`` ends ``failed`` after the checkpoint instead. A post-copy migration
(``"post_copy": true``, or force-completed before the freeze) goes running (checkpoint,
restore, post-copy with its pages half there) -> post-migrating (cleanup) -> completed.
compute3's agent does not report its modes: post-copy to it is refused (409).
GET /v1 is the version document (microversions ``min_version`` to ``max_version``); every
other request's OpenStack-API-Version header is recorded, and one outside the range is a 406.
"""
import json
import threading
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

STEPS = [
    ('accepted', None, 0),
    ('pre-migrating', 'pre_migration', 10),
    ('running', 'checkpoint', 30),
    ('running', 'transfer', 60),
    ('post-migrating', 'restore', 90),
    ('completed', None, 100),
]
POST_COPY_STEPS = STEPS[:3] + [
    ('running', 'restore', 50),
    ('running', 'post-copy', 70),
    ('post-migrating', 'cleanup', 90),
    ('completed', None, 100),
]
# Redis with 1M keys, as the example: 94.8 MB, half of it there during post-copy.
POST_COPY_MEMORY = 94800000

HOSTS = [
    {'name': 'compute1', 'state': 'up', 'docker_version': '20.10.24', 'criu_version': '4.2.1',
     'criu_ok': True, 'architecture': 'x86_64', 'migration_address': '127.0.0.1:9518',
     'containers': 1, 'updated_at': '2026-05-07T10:00:00Z'},
    {'name': 'compute2', 'state': 'up', 'docker_version': '20.10.24', 'criu_version': '4.2.1',
     'criu_ok': True, 'architecture': 'x86_64', 'migration_address': '127.0.0.1:9519',
     'containers': 0, 'updated_at': '2026-05-07T10:00:00Z'},
    {'name': 'compute3', 'state': 'up', 'docker_version': '20.10.24', 'criu_version': '4.2.1',
     'criu_ok': True, 'architecture': 'x86_64', 'migration_address': '127.0.0.1:9520',
     'containers': 0, 'updated_at': '2026-05-07T10:00:00Z', 'modes': None},
    {'name': 'compute4', 'state': 'down', 'docker_version': None, 'criu_version': None,
     'criu_ok': False, 'architecture': None, 'migration_address': None,
     'containers': 0, 'updated_at': None, 'modes': None},
]
NO_DIRTY_TRACKING = {'ok': False,
                     'reason': 'no memory dirty tracking: iterative pre-copy is impossible'}
for _h in HOSTS[:2]:
    _h.update(status='enabled', disabled_reason=None, memory_used_bytes=300000000,
              memory_total_bytes=25000000000,
              modes={'post_copy': {'ok': True, 'reason': None}, 'pre_copy': NO_DIRTY_TRACKING})
CONTAINERS = {'counter': 'compute1', 'doomed-counter': 'compute1'}


def new_migration(container, host, mode='stop-and-copy'):
    return {
        'uuid': str(uuidlib.uuid4()), 'mode': mode, 'container_id': 'c0ffee' + container,
        'container_name': container, 'source_host': CONTAINERS[container],
        'dest_host': host or 'compute2', 'status': 'accepted', 'phase': None, 'progress': 0,
        'error': None, 'freeze_ms': None, 'checkpoint_ms': None, 'transfer_ms': None,
        'restore_ms': None, 'total_ms': None, 'memory_bytes': None, 'rootfs_bytes': None,
        'volume_bytes': None, 'image_bytes': None, 'transferred_bytes': None,
        'memory_total_bytes': None, 'memory_processed_bytes': None, 'memory_remaining_bytes': None,
        'disk_rounds': None, 'disk_live_bytes': None, 'disk_frozen_bytes': None,
        'connections_preserved': None, 'abort_requested': False, 'request_id': None,
        'user_id': 'u', 'project_id': 'p', 'created_at': '2026-05-07T10:00:00Z',
        'updated_at': '2026-05-07T10:00:00Z', '_step': 0,
    }


class FakeFerry(object):
    def __init__(self):
        self.migrations = {}
        self.requests = []
        # The OpenStack-API-Version header of each recorded request (None: none sent).
        self.versions = []
        self.min_version, self.max_version = '1.0', '1.5'
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.send_header('x-openstack-request-id', 'req-fake-%d' % len(fake.requests))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status, title, message):
                self._send(status, {'error': {'code': status, 'title': title, 'message': message}})

            def _route(self, method):
                url = urlparse(self.path)
                parts = [unquote(p) for p in url.path.strip('/').split('/')]
                length = int(self.headers.get('Content-Length') or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if method == 'GET' and parts == ['v1']:
                    return self._send(200, {'version': {
                        'id': 'v1.0', 'status': 'CURRENT', 'min_version': fake.min_version,
                        'version': fake.max_version}})
                header = self.headers.get('OpenStack-API-Version')
                with fake.lock:
                    fake.requests.append((method, self.path, body))
                    fake.versions.append(header)
                    asked = (header or 'container-migration 1.0').split()[-1]
                    if not fake.max_version:  # a server from before microversions
                        return fake.handle(self, method, parts, parse_qs(url.query), body)
                    key = [tuple(map(int, v.split('.'))) for v in
                           (asked, fake.min_version, fake.max_version)]
                    if not key[1] <= key[0] <= key[2]:
                        return self._error(406, 'Not Acceptable', 'Version %s of the '
                                           'container-migration API is not supported: this '
                                           'server supports %s to %s.' % (
                                               asked, fake.min_version, fake.max_version))
                    return fake.handle(self, method, parts, parse_qs(url.query), body)

            def do_GET(self):
                self._route('GET')

            def do_POST(self):
                self._route('POST')

            def do_DELETE(self):
                self._route('DELETE')

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/v1' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.server.shutdown()
        self.server.server_close()

    def page(self, name, items, paging):
        """Nova's paging: items after `marker`, at most `limit`, and a `next` link when more follow."""
        start = 0
        if 'marker' in paging:
            ids = [i['uuid'] for i in items]
            start = ids.index(paging['marker']) + 1 if paging['marker'] in ids else len(items)
        limit = int(paging.get('limit', 1000))
        body = {name: items[start:start + limit]}
        if start + limit < len(items):
            body[name + '_links'] = [{'rel': 'next', 'href': '%s/%s?limit=%d&marker=%s' % (
                self.url, name, limit, items[start + limit - 1]['uuid'])}]
        return body

    @staticmethod
    def public(m):
        return {k: v for k, v in m.items() if not k.startswith('_')}

    def advance(self, m):
        if m['status'] in ('completed', 'failed', 'cancelled'):
            return
        m['_step'] += 1
        post_copy = m['mode'] == 'post-copy'
        status, phase, progress = (POST_COPY_STEPS if post_copy else STEPS)[m['_step']]
        if m['container_name'].startswith('doomed') and phase == 'transfer':
            m.update(status='failed', phase='rollback', progress=100,
                     error='restore on compute2 failed; rolled back to compute1')
            return
        m.update(status=status, phase=phase, progress=progress)
        if post_copy and phase in ('restore', 'post-copy', 'cleanup'):
            done = {'restore': 2100000, 'post-copy': 45200000}.get(phase, POST_COPY_MEMORY)
            m.update(memory_total_bytes=POST_COPY_MEMORY, memory_processed_bytes=done,
                     memory_remaining_bytes=POST_COPY_MEMORY - done)
        elif status == 'post-migrating':
            m.update(memory_total_bytes=2097152, memory_processed_bytes=2097152,
                     memory_remaining_bytes=0)
        if status == 'completed':
            m.update(freeze_ms=412, checkpoint_ms=150, transfer_ms=120, restore_ms=140,
                     total_ms=2310, memory_bytes=2097152, rootfs_bytes=10240,
                     transferred_bytes=2107392, connections_preserved=True)

    def handle(self, h, method, parts, query, body):
        if parts[:1] != ['v1']:
            return h._error(404, 'Not Found', 'No such resource.')
        rest = parts[1:]
        if method == 'GET' and rest == ['hosts']:
            return h._send(200, {'hosts': HOSTS})
        if method == 'POST' and len(rest) == 3 and rest[0] == 'containers' and rest[2] == 'migrate':
            if rest[1] not in CONTAINERS:
                return h._error(404, 'Not Found', 'Container %s could not be found.' % rest[1])
            m = new_migration(rest[1], (body or {}).get('host'),
                              'post-copy' if (body or {}).get('post_copy') else 'stop-and-copy')
            if m['mode'] == 'post-copy' and m['dest_host'] == 'compute3':
                return h._error(409, 'Conflict', 'post-copy is not possible for this migration: '
                                'compute3 did not report its migration modes (an older agent?)')
            self.migrations[m['uuid']] = m
            return h._send(202, {'migration': self.public(m)})
        if method == 'GET' and rest == ['migrations']:
            paging = {k: query.pop(k)[0] for k in ('limit', 'marker', 'changes-since', 'changes-before',
                                                   'sort_key', 'sort_dir') if k in query}
            ms = [self.public(m) for m in self.migrations.values()
                  if all(m.get(k) == v[0] or (k == 'container' and m['container_name'] == v[0])
                         for k, v in query.items())]
            return h._send(200, self.page('migrations', ms, paging))
        if len(rest) == 2 and rest[0] == 'migrations':
            m = self.migrations.get(rest[1])
            if not m:
                return h._error(404, 'Not Found', 'Migration %s could not be found.' % rest[1])
            if method == 'GET':
                self.advance(m)
                return h._send(200, {'migration': self.public(m)})
            if method == 'DELETE':
                m.update(status='cancelled', abort_requested=True)
                return h._send(202, {'migration': self.public(m)})
        if method == 'POST' and len(rest) == 3 and rest[0] == 'migrations' and rest[2] == 'action':
            m = self.migrations.get(rest[1])
            if not m:
                return h._error(404, 'Not Found', 'Migration %s could not be found.' % rest[1])
            if body != {'force_complete': None}:
                return h._error(400, 'Bad Request', 'The request body must name an action: '
                                '{"force_complete": null}')
            if m['status'] in ('completed', 'failed', 'cancelled', 'error'):
                return h._error(409, 'Conflict', 'migration %s is already %s; there is nothing '
                                'to complete' % (m['uuid'], m['status']))
            if m['mode'] != 'post-copy' and m['_step'] >= 2:
                return h._error(409, 'Conflict', 'migration %s is %s (%s): its container is '
                                'already frozen and copied stop-and-copy' % (
                                    m['uuid'], m['status'], m['phase']))
            m['mode'] = 'post-copy'
            return h._send(202, {'migration': self.public(m)})
        if method == 'POST' and len(rest) == 3 and rest[0] == 'hosts' and rest[2] == 'evacuate':
            e = {'uuid': str(uuidlib.uuid4()), 'host': rest[1], 'target_host': None,
                 'status': 'completed', 'max_parallel': 1, 'containers': [], 'counts': {},
                 'post_copy': bool((body or {}).get('post_copy'))}
            return h._send(202, {'evacuation': e})
        if method == 'GET' and rest == ['broken']:
            data = b'<html>bad gateway</html>'
            h.send_response(502)
            h.send_header('Content-Length', str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return None
        return h._error(405, 'Method Not Allowed', 'No.')
