"""Demo 3, the one that failed on stage in 2016: a client reads a long-lived TCP stream over
ONE connection while the server container moves; nothing is lost, repeated or reconnected."""
import time

from scenarios.base import ScenarioTest
from scenarios.cloud import log


class StreamScenario(ScenarioTest):
    kind = 'stream'

    def test_one_connection_survives(self):
        self.start_workload('ferry/stream')
        probe = self.start_probe('stream', self.ip, '9000')
        time.sleep(2)
        conns_before = self.ss_connections(9000)
        self.assertEqual(len(conns_before), 1, conns_before)
        record = self.migrate()
        moved_at = time.time()
        time.sleep(3)
        conns_after = self.ss_connections(9000)
        s = probe.stop()

        self.assertFalse(s['eof'], 'the server closed the connection')
        self.assertIsNone(s['error'], s['error'])
        self.assertEqual(conns_after, conns_before, 'not the same TCP connection after the move')
        self.assertEqual(conns_before, [s['local']])
        self.assertEqual(s['first'], 1)
        self.assertEqual(s['missing'], [], 'numbers lost')
        self.assertEqual(s['repeated'], 0, 'numbers repeated')
        self.assertEqual(s['received'], s['last'])
        after = [t for t in s['times'] if t > moved_at]
        self.assertGreater(len(after), 10, 'the stream stopped after the move')
        log('stream: one connection %s, %d numbers received in order, longest pause %d ms'
            % (s['local'], s['received'], s['max_pause_ms']))
        self.report('longest pause on the stream', s['max_pause_ms'], record,
                    'connections_preserved=%s' % record.get('connections_preserved'))
