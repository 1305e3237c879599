"""Redis behind a live feed: a producer writes (INCR + SET) and a consumer reads the running
count while Redis moves; no acknowledged write is lost and the feed keeps flowing."""
import time

from tempest import config
from tempest.lib import decorators

from ferry_tempest_plugin.tests.scenario import base

CONF = config.CONF


class RedisFeedScenarioTest(base.ScenarioTest):
    kind = 'redis'

    @decorators.attr(type='slow')
    @decorators.idempotent_id('3c9ea723-4508-4d0b-a776-2a921437adca')
    def test_no_acknowledged_write_lost(self):
        name = self.start_on_fabric(CONF.container_migration.redis_image)
        probe = self.start_probe('redis', self.ip, '6379')
        time.sleep(3)
        record = self.migrate_and_check(name)
        moved_at = time.time()
        time.sleep(3)
        s = probe.stop()

        self.assertGreater(s['acked_sets'], 50)
        self.assertEqual(0, s['missing_count'],
                         'acknowledged SETs missing after the move: %s' % s['missing_sets'])
        # Every acknowledged INCR is in the count; only unacknowledged ones may or may not be.
        self.assertGreaterEqual(s['final_count'], s['acked_incr'])
        self.assertLessEqual(s['final_count'], s['acked_incr'] + s['unacked_incr'])
        self.assertTrue(s['consumer_monotonic'], 'the consumer saw the count go backwards')
        at_move = max([v for t, v in s['reads'] if t <= moved_at] or [0])
        later = [v for t, v in s['reads'] if t > moved_at + 1]
        self.assertTrue(later, 'the consumer read nothing after the move')
        self.assertGreater(max(later), at_move + 20, 'the feed stopped flowing after the move')
        self.report('longest wait for a write acknowledgement', s['producer_max_gap_ms'], record,
                    '%d INCR and %d SET acknowledged, %d unacknowledged, count %d, '
                    'consumer max gap %d ms, producer reconnects %d'
                    % (s['acked_incr'], s['acked_sets'], s['unacked_incr'] + s['unacked_sets'],
                       s['final_count'], s['consumer_max_gap_ms'], s['reconnects']))
