"""The counter: it migrates and keeps counting from where it was."""
import time

from tempest import config
from tempest.lib import decorators

from ferry_tempest_plugin.tests.scenario import base

CONF = config.CONF


class CounterScenarioTest(base.ScenarioTest):
    kind = 'counter'

    @decorators.attr(type='slow')
    @decorators.idempotent_id('e151ef12-73e3-4ae1-98ae-a3ba688bbf92')
    def test_counter_keeps_counting(self):
        name = self.start_on_fabric(CONF.container_migration.counter_image)
        probe = self.start_probe('http', 'http://%s:8080/' % self.ip)
        time.sleep(3)
        record = self.migrate_and_check(name)
        moved_at = time.time()
        time.sleep(3)
        s = probe.stop()

        self.assertGreater(len(s['samples']), 20, s['errors'])
        self.assertTrue(s['monotonic'], 'the count went backwards: %s' % s['samples'][-40:])
        before, after = s['value_before_gap'], s['value_after_gap']
        self.assertGreaterEqual(before, 2, 'the counter should have counted before the move')
        # From where it was: not restarted at 1, and not more numbers on than the time that
        # passed during the pause (one a second).
        self.assertGreaterEqual(after, before)
        self.assertLessEqual(after, before + int(s['max_gap_ms'] / 1000) + 2)
        at_move = max([v for t, v in s['samples'] if t <= moved_at] or [0])
        self.assertGreaterEqual(s['samples'][-1][1], at_move + 2,
                                'it stopped counting after the move')
        self.report('longest HTTP silence from the client namespace', s['max_gap_ms'], record,
                    'count %d before the pause, %d after, %d at the end'
                    % (before, after, s['samples'][-1][1]))
