"""The TCP stream: a client reads numbers over ONE connection while the server container
moves; nothing is lost, repeated or reconnected, and it is the same connection after."""
import time

from tempest import config
from tempest.lib import decorators

from ferry_tempest_plugin.common import workloads
from ferry_tempest_plugin.tests.scenario import base

CONF = config.CONF


class StreamScenarioTest(base.ScenarioTest):
    kind = 'stream'

    @decorators.attr(type='slow')
    @decorators.idempotent_id('d309462a-bb53-42f5-aab7-9ba2c76bfeb7')
    def test_one_connection_survives(self):
        netns = CONF.container_migration.client_netns
        name = self.start_on_fabric(CONF.container_migration.stream_image)
        probe = self.start_probe('stream', self.ip, '9000')
        time.sleep(2)
        before = workloads.established(netns, self.ip, 9000)
        self.assertEqual(1, len(before), before)
        record = self.migrate_and_check(name)
        moved_at = time.time()
        time.sleep(3)
        after = workloads.established(netns, self.ip, 9000)
        s = probe.stop()

        self.assertFalse(s['eof'], 'the server closed the connection')
        self.assertIsNone(s['error'], s['error'])
        self.assertEqual(before, after, 'not the same TCP connection after the move')
        self.assertEqual([s['local']], before)
        self.assertEqual(1, s['first'])
        self.assertEqual([], s['missing'], 'numbers lost')
        self.assertEqual(0, s['repeated'], 'numbers repeated')
        self.assertEqual(s['last'], s['received'])
        self.assertGreater(len([t for t in s['times'] if t > moved_at]), 10,
                           'the stream stopped after the move')
        self.assertTrue(record.get('connections_preserved'))
        self.report('longest pause on the stream', s['max_pause_ms'], record,
                    'one connection %s, %d numbers in order' % (s['local'], s['received']))
