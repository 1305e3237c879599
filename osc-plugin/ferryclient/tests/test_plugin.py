"""The plugin against a fake Ferry API: the client, the progress display, and the real
``openstack`` command (auth type ``none``, endpoint override) end to end.

Run: cd osc-plugin && /usr/bin/python3 -m unittest discover -v
"""
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import unittest

from keystoneauth1 import session as ks_session

from ferryclient import exceptions
from ferryclient import progress
from ferryclient.osc.v1 import migrations as osc_migrations
from ferryclient.tests.fakeapi import FakeFerry
from ferryclient.v1 import client as v1_client

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_ROOT = os.path.dirname(os.path.dirname(HERE))
OPENSTACK = shutil.which('openstack') or '/usr/bin/openstack'


def plugin_installed():
    eps = importlib.metadata.entry_points(group='openstack.cli.extension')
    return any(e.name == 'container_migration' for e in eps)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeFerry().__enter__()
        self.client = v1_client.Client(ks_session.Session(), endpoint_override=self.fake.url)

    def tearDown(self):
        self.fake.__exit__()

    def test_hosts(self):
        self.assertEqual([h['name'] for h in self.client.list_hosts()],
                         ['compute1', 'compute2', 'compute3', 'compute4'])

    def test_migrate_sends_host_and_follows(self):
        m = self.client.migrate('counter', host='compute2')
        self.assertEqual(m['status'], 'accepted')
        self.assertEqual(self.fake.requests[-1][2], {'host': 'compute2'})
        m2 = self.client.get_migration(m['uuid'])
        self.assertEqual(m2['status'], 'pre-migrating')

    def test_migrate_without_host_sends_empty_body(self):
        self.client.migrate('counter')
        self.assertEqual(self.fake.requests[-1][2], {})

    def test_migrate_post_copy_sends_the_flag(self):
        m = self.client.migrate('counter', host='compute2', post_copy=True)
        self.assertEqual(self.fake.requests[-1][2], {'host': 'compute2', 'post_copy': True})
        self.assertEqual(m['mode'], 'post-copy')
        self.client.migrate('counter', host='compute2')
        self.assertNotIn('post_copy', self.fake.requests[-1][2])

    def test_post_copy_refused_is_a_conflict_with_the_reason(self):
        with self.assertRaises(exceptions.Conflict) as ctx:
            self.client.migrate('counter', host='compute3', post_copy=True)
        self.assertEqual(ctx.exception.status, 409)
        self.assertIn('compute3 did not report its migration modes', str(ctx.exception))

    def test_force_complete_switches_to_post_copy(self):
        m = self.client.migrate('counter', host='compute2')
        self.assertEqual(m['mode'], 'stop-and-copy')
        forced = self.client.force_complete_migration(m['uuid'])
        self.assertEqual(forced['mode'], 'post-copy')
        method, path, body = self.fake.requests[-1]
        self.assertEqual((method, path, body),
                         ('POST', '/v1/migrations/%s/action' % m['uuid'], {'force_complete': None}))
        seen = []
        while not seen or seen[-1][0] != 'completed':
            x = self.client.get_migration(m['uuid'])
            seen.append((x['status'], x['phase'], x['memory_processed_bytes']))
        self.assertIn(('running', 'post-copy', 45200000), seen)
        self.assertEqual(seen[-1], ('completed', None, 94800000))

    def test_force_complete_refusals(self):
        m = self.client.migrate('counter', host='compute2')
        while self.client.get_migration(m['uuid'])['status'] != 'completed':
            pass
        with self.assertRaises(exceptions.Conflict) as ctx:
            self.client.force_complete_migration(m['uuid'])
        self.assertIn('is already completed; there is nothing to complete', str(ctx.exception))
        with self.assertRaises(exceptions.NotFound):
            self.client.force_complete_migration('00000000-0000-4000-8000-000000000000')

    def test_evacuate_post_copy_sends_the_flag(self):
        e = self.client.evacuate_host('compute1', post_copy=True)
        self.assertEqual(self.fake.requests[-1][2], {'post_copy': True})
        self.assertTrue(e['post_copy'])
        self.client.evacuate_host('compute1', max_parallel=2)
        self.assertEqual(self.fake.requests[-1][2], {'max_parallel': 2})

    def test_names_are_quoted(self):
        with self.assertRaises(exceptions.NotFound) as ctx:
            self.client.migrate('a/b c')
        self.assertIn('/v1/containers/a%2Fb%20c/migrate', self.fake.requests[-1][1])
        self.assertIn('Container a/b c could not be found.', str(ctx.exception))

    def test_filters_become_query(self):
        self.client.list_migrations(container='counter', status='completed')
        path = self.fake.requests[-1][1]
        self.assertIn('container=counter', path)
        self.assertIn('status=completed', path)

    def test_list_follows_next_links_and_pages(self):
        for _ in range(5):
            self.client.migrate('counter')
        made = list(self.fake.migrations)
        self.assertEqual([m['uuid'] for m in self.client.list_migrations(limit=2)], made)
        self.assertEqual(sum(1 for r in self.fake.requests if r[1].startswith('/v1/migrations?')), 3)
        page, more = self.client.list_migrations_page(limit=2, changes_since='2026-01-01T00:00:00Z')
        self.assertEqual(([m['uuid'] for m in page], more), (made[:2], made[1]))
        self.assertIn('changes-since=2026-01-01T00%3A00%3A00Z', self.fake.requests[-1][1])
        page, more = self.client.list_migrations_page(limit=2, marker=made[3])
        self.assertEqual(([m['uuid'] for m in page], more), (made[4:], None))

    def test_not_found_is_one_line(self):
        with self.assertRaises(exceptions.NotFound) as ctx:
            self.client.get_migration('nope')
        line = str(ctx.exception)
        self.assertEqual(ctx.exception.status, 404)
        self.assertNotIn('\n', line)
        self.assertTrue(line.startswith('Migration nope could not be found. (HTTP 404, request req-fake-'), line)

    def test_non_json_error(self):
        with self.assertRaises(exceptions.HttpError) as ctx:
            self.client._request('GET', '/broken')
        self.assertEqual(ctx.exception.status, 502)
        self.assertIn('HTTP 502', str(ctx.exception))

    def test_connection_refused(self):
        dead = v1_client.Client(ks_session.Session(), endpoint_override='http://127.0.0.1:9/v1')
        with self.assertRaises(exceptions.ConnectionError) as ctx:
            dead.list_hosts()
        self.assertEqual(str(ctx.exception),
                         'Cannot reach the Ferry API at http://127.0.0.1:9/v1/: connection refused')


class MicroversionTest(unittest.TestCase):
    """The client asks for the highest microversion both it and the server know, or the one
    given, and says clearly when the server cannot give it."""

    def setUp(self):
        self.fake = FakeFerry().__enter__()

    def tearDown(self):
        self.fake.__exit__()

    def client(self, version=None):
        return v1_client.Client(ks_session.Session(), endpoint_override=self.fake.url,
                                api_version=version)

    def test_default_is_the_highest_both_know(self):
        self.client().list_hosts()
        self.assertEqual(self.fake.versions, ['container-migration %s' % v1_client.MAX_API_VERSION])
        self.fake.max_version = '1.2'
        c = self.client('1')
        c.list_hosts()
        c.list_hosts()
        self.assertEqual(self.fake.versions[1:], ['container-migration 1.2'] * 2)

    def test_a_given_version_is_sent(self):
        self.client('1.1').list_hosts()
        self.assertEqual(self.fake.versions, ['container-migration 1.1'])

    def test_a_version_the_server_lacks_is_a_406_naming_its_range(self):
        self.fake.max_version = '1.2'
        with self.assertRaises(exceptions.HttpError) as ctx:
            self.client('1.3').list_hosts()
        self.assertEqual(ctx.exception.status, 406)
        self.assertIn('Version 1.3 of the container-migration API is not supported: this server '
                      'supports 1.0 to 1.2.', str(ctx.exception))

    def test_negotiation_that_finds_nothing_is_a_clear_error_before_any_request(self):
        self.fake.min_version, self.fake.max_version = '1.9', '1.9'
        with self.assertRaises(exceptions.UnsupportedVersion) as ctx:
            self.client().list_hosts()
        self.assertIn('supports microversions 1.9 to 1.9; this client knows 1.0 to', str(ctx.exception))
        self.assertEqual(self.fake.requests, [])

    def test_a_version_beyond_this_client_is_left_to_the_server(self):
        with self.assertRaises(exceptions.HttpError) as ctx:
            self.client('1.99').list_hosts()
        self.assertEqual(ctx.exception.status, 406)
        self.assertEqual(self.fake.versions, ['container-migration 1.99'])

    def test_a_server_without_microversions_gets_no_header(self):
        self.fake.min_version = self.fake.max_version = ''
        self.client().list_hosts()
        self.assertEqual(self.fake.versions, [None])

    def test_negotiate(self):
        self.assertEqual(v1_client.negotiate(None, '1.0', '1.9'), v1_client.MAX_API_VERSION)
        self.assertEqual(v1_client.negotiate('latest', '1.0', '1.1'), '1.1')
        self.assertEqual(v1_client.negotiate('1.0', '1.0', '1.1'), '1.0')
        with self.assertRaises(exceptions.UnsupportedVersion):
            v1_client.negotiate(None, '1.9', '1.9')
        for bad in ('2.0', '1.x', 'one'):
            with self.assertRaises(exceptions.UnsupportedVersion):
                v1_client.negotiate(bad, '1.0', '1.4')


class ProgressTest(unittest.TestCase):
    def test_bar(self):
        self.assertEqual(progress.bar(0, 10), '[..........]   0%')
        self.assertEqual(progress.bar(45, 10), '[####......]  45%')
        self.assertEqual(progress.bar(100, 10), '[##########] 100%')
        self.assertEqual(progress.bar(None, 4), '[....]   0%')
        self.assertEqual(progress.bar(250, 4), '[####] 100%')

    def test_printer_one_line_per_change_without_tty(self):
        out = io.StringIO()
        p = progress.ProgressPrinter(out, tty=False)
        m = {'uuid': '12345678-aaaa', 'source_host': 'compute1', 'dest_host': 'compute2',
             'status': 'running', 'phase': 'transfer', 'progress': 60}
        p.update(m)
        p.update(dict(m))
        p.update(dict(m, status='completed', phase=None, progress=100))
        p.done()
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertIn('running (transfer)', lines[0])
        self.assertIn('compute1 -> compute2', lines[0])
        self.assertTrue(lines[1].endswith('completed'))

    def test_memory_in_one_unit_chosen_by_the_total(self):
        mem = progress.memory
        self.assertEqual(mem({'memory_total_bytes': 94800000, 'memory_processed_bytes': 45200000}),
                         '45.2/94.8 MB memory')
        self.assertEqual(mem({'memory_total_bytes': 700000, 'memory_processed_bytes': 0}),
                         '0.0/700.0 kB memory')
        self.assertEqual(mem({'memory_total_bytes': 2500000000, 'memory_processed_bytes': None}),
                         '2.5 GB memory')
        self.assertEqual(mem({'memory_total_bytes': 512, 'memory_processed_bytes': 100}),
                         '100/512 B memory')
        for unknown in ({}, {'memory_total_bytes': None, 'memory_processed_bytes': 5},
                        {'memory_total_bytes': 0}, {'memory_total_bytes': True}):
            self.assertEqual(mem(unknown), '', unknown)

    def test_line_shows_bytes_and_mode(self):
        m = {'uuid': '12345678-aaaa', 'source_host': 'compute1', 'dest_host': 'compute2',
             'status': 'running', 'phase': 'post-copy', 'progress': 70, 'mode': 'post-copy',
             'memory_total_bytes': 94800000, 'memory_processed_bytes': 45200000}
        self.assertEqual(progress.line(m), '12345678 %s compute1 -> compute2  running (post-copy) '
                         '45.2/94.8 MB memory, mode post-copy' % progress.bar(70))
        # An API without the new fields: the line as before.
        self.assertEqual(progress.line({'uuid': 'u', 'status': 'accepted'}),
                         'u %s ? -> (scheduling)  accepted' % progress.bar(0))

    def test_disk_precopy_rounds_and_bytes(self):
        m = {'uuid': '12345678-aaaa', 'source_host': 'compute1', 'dest_host': 'compute2',
             'status': 'running', 'phase': 'restore', 'progress': 80, 'mode': 'stop-and-copy',
             'memory_total_bytes': 94800000, 'memory_processed_bytes': 94800000,
             'disk_rounds': 3, 'disk_live_bytes': 312400000, 'disk_frozen_bytes': 2100000}
        self.assertEqual(progress.line(m), '12345678 %s compute1 -> compute2  running (restore) '
                         '94.8/94.8 MB memory, disk 3 rounds 312.4 MB live, 2.1 MB frozen, '
                         'mode stop-and-copy' % progress.bar(80))
        self.assertEqual(progress.disk(dict(m, disk_rounds=1, disk_frozen_bytes=0)),
                         'disk 1 round 312.4 MB live, 0 B frozen')
        # The disk moved in the freeze (null) or an API before 1.5 (absent): nothing.
        for unknown in ({}, dict(m, disk_rounds=None), dict(m, disk_live_bytes=True)):
            self.assertEqual(progress.disk(unknown), '', unknown)
        done = dict(m, status='completed', phase=None, total_ms=5000, freeze_ms=1200)
        self.assertIn(', mode stop-and-copy, disk 3 rounds 312.4 MB live, 2.1 MB frozen',
                      osc_migrations.summary(done))

    def test_printer_without_tty_prints_bytes_per_tenth(self):
        out = io.StringIO()
        p = progress.ProgressPrinter(out, tty=False)
        m = {'uuid': 'u', 'status': 'running', 'phase': 'post-copy', 'progress': 70,
             'mode': 'post-copy', 'memory_total_bytes': 10000, 'memory_processed_bytes': 1000}
        for done in (1000, 1500, 1999, 2000, 2500, 3100, 10000):
            p.update(dict(m, memory_processed_bytes=done))
        p.update(dict(m, memory_total_bytes=None, memory_processed_bytes=None))
        p.update(dict(m, memory_total_bytes=None, memory_processed_bytes=None))
        p.done()
        # A new line once a tenth of the total more has arrived; none for bytes no longer known.
        self.assertEqual([x.split('(scheduling)  ')[1] for x in out.getvalue().splitlines()], [
            'running (post-copy) 1.0/10.0 kB memory, mode post-copy',
            'running (post-copy) 2.0/10.0 kB memory, mode post-copy',
            'running (post-copy) 3.1/10.0 kB memory, mode post-copy',
            'running (post-copy) 10.0/10.0 kB memory, mode post-copy',
        ])

    def test_printer_redraws_on_tty(self):
        out = io.StringIO()
        p = progress.ProgressPrinter(out, tty=True)
        p.update({'uuid': 'u', 'status': 'accepted', 'progress': 0})
        p.update({'uuid': 'u', 'status': 'running', 'phase': 'checkpoint', 'progress': 30})
        p.done()
        self.assertEqual(out.getvalue().count('\r'), 2)
        self.assertTrue(out.getvalue().endswith('\n'))

    def test_wait_times_out(self):
        t = [0.0]

        def sleep(s):
            t[0] += s
        with self.assertRaises(progress.WaitTimeout):
            progress.wait_for_migration(lambda u: {'uuid': u, 'status': 'running'}, 'x',
                                        interval=1, timeout=5, clock=lambda: t[0], sleep=sleep)
        self.assertGreater(t[0], 5)

    def test_wait_ends_on_error(self):
        seq = iter([{'uuid': 'x', 'status': 'running', 'phase': 'post-copy'},
                    {'uuid': 'x', 'status': 'error', 'phase': 'post-copy'}])
        m = progress.wait_for_migration(lambda u: next(seq), 'x', interval=0, sleep=lambda s: None)
        self.assertEqual(m['status'], 'error')

    def test_summary_says_the_mode(self):
        line = osc_migrations.summary({'uuid': 'u1', 'container_name': 'c', 'status': 'completed',
                                       'source_host': 'compute1', 'dest_host': 'compute2',
                                       'total_ms': 2310, 'freeze_ms': 412, 'mode': 'post-copy'})
        self.assertEqual(line, 'Migration u1 of c completed: compute1 -> compute2 in 2.31 s, '
                               'downtime 412 ms, mode post-copy')
        line = osc_migrations.summary({'uuid': 'u1', 'container_name': 'c', 'status': 'error',
                                       'source_host': 'compute1', 'dest_host': 'compute2',
                                       'mode': 'post-copy', 'error': 'the page server\nwent away'})
        self.assertEqual(line, 'Migration u1 of c error: compute1 -> compute2, mode post-copy: '
                               'the page server went away')

    def test_summary_has_downtime(self):
        line = osc_migrations.summary({'uuid': 'u1', 'container_name': 'c', 'status': 'completed',
                                       'source_host': 'compute1', 'dest_host': 'compute2',
                                       'total_ms': 2310, 'freeze_ms': 412})
        self.assertEqual(line, 'Migration u1 of c completed: compute1 -> compute2 in 2.31 s, downtime 412 ms')


@unittest.skipUnless(plugin_installed(), 'the plugin is not installed for this Python '
                     '(scripts/lib/install.sh: ferry_install_osc_plugin osc-plugin)')
class OpenStackCommandTest(unittest.TestCase):
    """The real `openstack` command with this checkout's ferryclient first on sys.path."""

    def setUp(self):
        self.fake = FakeFerry().__enter__()

    def tearDown(self):
        self.fake.__exit__()

    def osc(self, *args, env=None):
        env = {k: v for k, v in (env or os.environ).items()
               if not k.startswith('OS_') or k == 'OS_CONTAINER_MIGRATION_API_VERSION'}
        env['PYTHONPATH'] = PLUGIN_ROOT
        argv = [OPENSTACK, '--os-auth-type', 'none', '--os-endpoint', self.fake.url,
                '--os-container-migration-endpoint', self.fake.url] + list(args)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    def test_migrate_wait_json(self):
        r = self.osc('container', 'migrate', 'counter', '--host', 'compute2', '--wait',
                     '-f', 'json')
        self.assertEqual(r.returncode, 0, r.stderr)
        m = json.loads(r.stdout)
        self.assertEqual(m['status'], 'completed')
        self.assertEqual(m['freeze_ms'], 412)
        self.assertIn('running (transfer)', r.stderr)
        self.assertIn('[', r.stderr)
        self.assertIn('downtime 412 ms, mode stop-and-copy', r.stderr)
        self.assertIn('completed 2.1/2.1 MB memory, mode stop-and-copy', r.stderr)

    def test_migrate_post_copy_wait_shows_bytes_and_mode(self):
        r = self.osc('container', 'migrate', 'counter', '--host', 'compute2', '--post-copy',
                     '--wait', '-f', 'json')
        self.assertEqual(r.returncode, 0, r.stderr)
        m = json.loads(r.stdout)
        self.assertEqual((m['status'], m['mode']), ('completed', 'post-copy'))
        self.assertEqual((m['memory_total_bytes'], m['memory_processed_bytes'],
                          m['memory_remaining_bytes']), (94800000, 94800000, 0))
        self.assertEqual(self.fake.requests[0][2], {'host': 'compute2', 'post_copy': True})
        self.assertIn('compute1 -> compute2  running (restore) 2.1/94.8 MB memory, mode post-copy',
                      r.stderr)
        self.assertIn('running (post-copy) 45.2/94.8 MB memory, mode post-copy', r.stderr)
        self.assertIn('downtime 412 ms, mode post-copy', r.stderr.splitlines()[-1])

    def test_migrate_post_copy_refused_in_one_line(self):
        r = self.osc('container', 'migrate', 'counter', '--host', 'compute3', '--post-copy',
                     '--wait')
        self.assertEqual((r.returncode, r.stdout), (1, ''))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r'^Post-copy is not possible for this migration: compute3 did '
                                   r'not report its migration modes \(an older agent\?\)\. '
                                   r'\(HTTP 409, request req-fake-\d+\)$')

    def test_force_complete(self):
        uuid = json.loads(self.osc('container', 'migrate', 'counter', '-f', 'json').stdout)['uuid']
        r = self.osc('container', 'migration', 'force', 'complete', uuid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, 'Migration %s of counter is accepted, mode post-copy\n' % uuid)
        self.assertEqual(self.fake.requests[-1][:3],
                         ('POST', '/v1/migrations/%s/action' % uuid, {'force_complete': None}))
        r = self.osc('container', 'migration', 'show', uuid, '-f', 'value', '-c', 'mode')
        self.assertEqual(r.stdout.strip(), 'post-copy')

    def test_force_complete_refused_in_one_line(self):
        done = self.osc('container', 'migrate', 'counter', '--wait', '-f', 'json')
        uuid = json.loads(done.stdout)['uuid']
        r = self.osc('container', 'migration', 'force', 'complete', uuid)
        self.assertEqual((r.returncode, r.stdout), (1, ''))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], r'^Migration %s is already completed; there is nothing to '
                                   r'complete\. \(HTTP 409, request req-fake-\d+\)$' % uuid)
        r = self.osc('container', 'migration', 'force', 'complete',
                     '00000000-0000-4000-8000-000000000000')
        self.assertEqual(r.returncode, 1)
        self.assertIn('Migration 00000000-0000-4000-8000-000000000000 could not be found. '
                      '(HTTP 404', r.stderr)

    def test_migrate_wait_failed_exits_non_zero(self):
        r = self.osc('container', 'migrate', 'doomed-counter', '--wait', '-f', 'value',
                     '-c', 'status')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.strip(), 'failed')
        self.assertIn('rolled back to compute1', r.stderr)

    def test_migrate_without_wait_returns_accepted(self):
        r = self.osc('container', 'migrate', 'counter', '-f', 'value', '-c', 'status')
        self.assertEqual((r.returncode, r.stdout.strip()), (0, 'accepted'), r.stderr)

    def test_list_show_long(self):
        self.osc('container', 'migrate', 'counter', '--wait')
        r = self.osc('container', 'migration', 'list', '-f', 'json', '--long')
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]['Container'], 'counter')
        self.assertEqual(rows[0]['Downtime (ms)'], 412)
        self.assertIn('Total (ms)', rows[0])
        self.assertEqual(rows[0]['Mode'], 'stop-and-copy')
        self.assertEqual(rows[0]['Total Memory Bytes'], 2097152)
        self.assertEqual(rows[0]['Remaining Memory Bytes'], 0)
        short = json.loads(self.osc('container', 'migration', 'list', '-f', 'json').stdout)
        self.assertNotIn('Total (ms)', short[0])
        self.assertNotIn('Mode', short[0])
        r = self.osc('container', 'migration', 'show', rows[0]['UUID'], '-f', 'value',
                     '-c', 'freeze_ms', '-c', 'total_ms', '-c', 'mode', '-c', 'memory_total_bytes',
                     '-c', 'memory_processed_bytes', '-c', 'memory_remaining_bytes')
        # ShowOne sorts its fields: freeze_ms, memory_processed, _remaining, _total, mode, total_ms.
        self.assertEqual(r.stdout.split(), ['412', '2097152', '0', '2097152', 'stop-and-copy',
                                            '2310'])
        r = self.osc('container', 'migration', 'list', '--status', 'failed', '-f', 'value')
        self.assertEqual(r.stdout.strip(), '')

    def test_list_limit_marker(self):
        for _ in range(3):
            self.osc('container', 'migrate', 'counter')
        made = list(self.fake.migrations)
        r = self.osc('container', 'migration', 'list', '--limit', '2', '-f', 'value', '-c', 'UUID')
        self.assertEqual((r.returncode, r.stdout.split()), (0, made[:2]), r.stderr)
        self.assertIn('More migrations exist: continue with --marker %s' % made[1], r.stderr)
        r = self.osc('container', 'migration', 'list', '--limit', '2', '--marker', made[1],
                     '-f', 'value', '-c', 'UUID')
        self.assertEqual((r.returncode, r.stdout.split(), r.stderr), (0, made[2:], ''))
        r = self.osc('container', 'migration', 'list', '--limit', '-1', '-f', 'value', '-c', 'UUID')
        self.assertEqual(r.stdout.split(), made)
        for bad in (['--limit', '0'], ['--sort', 'colour'], ['--sort', 'status:up']):
            r = self.osc('container', 'migration', 'list', *bad)
            self.assertEqual(r.returncode, 1, bad)
            self.assertRegex(r.stderr, '--limit must be a positive number|--sort must be')

    def test_abort_unknown(self):
        r = self.osc('container', 'migration', 'abort', '00000000-0000-0000-0000-000000000000')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, '')
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn('Migration 00000000-0000-0000-0000-000000000000 could not be found.', lines[0])

    def test_unknown_container(self):
        r = self.osc('container', 'migrate', 'ghost')
        self.assertEqual(r.returncode, 1)
        self.assertIn('Container ghost could not be found. (HTTP 404', r.stderr)

    def test_host_list(self):
        r = self.osc('container', 'host', 'list', '-f', 'value', '-c', 'Name', '-c', 'State')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split('\n')[:2], ['compute1 up', 'compute2 up'])

    def test_host_list_modes(self):
        r = self.osc('container', 'host', 'list', '-f', 'json')
        self.assertEqual(r.returncode, 0, r.stderr)
        modes = {h['Name']: h['Modes'] for h in json.loads(r.stdout)}
        self.assertEqual(modes, {'compute1': 'stop-and-copy, post-copy',
                                 'compute2': 'stop-and-copy, post-copy',
                                 'compute3': 'stop-and-copy', 'compute4': 'none'})
        self.assertNotIn('Unavailable Modes', json.loads(r.stdout)[0])
        r = self.osc('container', 'host', 'list', '--long', '-f', 'json')
        rows = {h['Name']: h for h in json.loads(r.stdout)}
        self.assertEqual(rows['compute1']['Unavailable Modes'],
                         'pre-copy: no memory dirty tracking: iterative pre-copy is impossible')
        self.assertEqual(rows['compute1']['Memory Total Bytes'], 25000000000)
        self.assertIn("post-copy: not reported by the host's agent",
                      rows['compute3']['Unavailable Modes'])

    def test_host_evacuate_post_copy(self):
        r = self.osc('container', 'host', 'evacuate', 'compute1', '--post-copy', '-f', 'json')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.fake.requests[-1][:3],
                         ('POST', '/v1/hosts/compute1/evacuate', {'post_copy': True}))
        self.assertTrue(json.loads(r.stdout)['post_copy'])

    def test_two_microversions_against_one_server(self):
        r = self.osc('container', 'host', 'list', '-f', 'value', '-c', 'Name')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.osc('--os-container-migration-api-version', '1.0',
                     'container', 'host', 'list', '-f', 'value', '-c', 'Name')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.fake.versions, ['container-migration %s' % v1_client.MAX_API_VERSION,
                                              'container-migration 1.0'])

    def test_version_the_server_lacks_is_one_line(self):
        self.fake.max_version = '1.2'
        env_version = dict(os.environ, OS_CONTAINER_MIGRATION_API_VERSION='1.3')
        for r in (self.osc('--os-container-migration-api-version', '1.3', 'container', 'host', 'list'),
                  self.osc('container', 'host', 'list', env=env_version)):
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr.strip().splitlines()[-1],
                             r'^Version 1\.3 of the container-migration API is not supported: this '
                             r'server supports 1\.0 to 1\.2\. \(HTTP 406, request req-fake-\d+\)$')

    def test_malformed_version_is_refused(self):
        r = self.osc('--os-container-migration-api-version', 'x.y', 'container', 'host', 'list')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('Invalid --os-container-migration-api-version x.y', r.stderr)

    def test_swift_container_commands_still_there(self):
        r = self.osc('container', 'list', '--help')
        self.assertEqual(r.returncode, 0)
        self.assertIn('openstack container list', r.stdout)


if __name__ == '__main__':
    unittest.main()
