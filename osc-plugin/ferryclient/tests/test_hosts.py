"""Host maintenance in the plugin: the evacuation's progress lines and its wait loop (no API).

Run: cd osc-plugin && /usr/bin/python3 -m unittest discover -v
"""
import io
import unittest

from osc_lib import exceptions as osc_exc

from ferryclient.osc.v1 import hosts


def item(name, status, dest=None, reason=None, migration=None):
    return {'container_id': name + '-id', 'container_name': name, 'status': status,
            'dest_host': dest, 'reason': reason, 'migration_uuid': migration}


class FakeClient(object):
    """Answers get_evacuation with the next record of a scripted sequence."""

    def __init__(self, records, downtime=812):
        self.records = list(records)
        self.downtime = downtime
        self.asked = []

    def get_evacuation(self, uuid):
        return self.records.pop(0)

    def get_migration(self, uuid):
        self.asked.append(uuid)
        return {'uuid': uuid, 'status': 'completed', 'freeze_ms': self.downtime}


class ContainerLineTest(unittest.TestCase):
    def test_completed_with_downtime(self):
        line = hosts.container_line(item('redis', 'completed', 'compute2'), 2, 5, 'compute1',
                                    {'freeze_ms': 852})
        self.assertEqual(line, '[2/5] redis  compute1 -> compute2  completed, downtime 852 ms')

    def test_not_moved_and_refused_say_why(self):
        self.assertEqual(
            hosts.container_line(item('job', 'not-moved', reason='not running (exited), not moved'),
                                 1, 3, 'compute1'),
            '[1/3] job  not running (exited), not moved')
        self.assertEqual(
            hosts.container_line(item('web', 'refused', reason='already being\n migrated'), 3, 3,
                                 'compute1'),
            '[3/3] web  refused: already being migrated')

    def test_summary_counts_only_what_happened(self):
        e = {'uuid': 'u', 'host': 'compute1', 'status': 'incomplete',
             'counts': {'completed': 2, 'failed': 1, 'pending': 0}}
        self.assertEqual(hosts.evacuation_summary(e),
                         'Evacuation u of compute1 incomplete: 2 completed, 1 failed')


class HostModesTest(unittest.TestCase):
    def test_stop_and_copy_wherever_criu_works_the_others_as_reported(self):
        h = {'criu_ok': True, 'modes': {
            'post_copy': {'ok': True, 'reason': None},
            'pre_copy': {'ok': False, 'reason': 'no memory\n dirty tracking'}}}
        self.assertEqual(hosts.host_modes(h), (['stop-and-copy', 'post-copy'],
                                               ['pre-copy: no memory dirty tracking']))
        both = {'criu_ok': True, 'modes': {'post_copy': {'ok': True}, 'pre_copy': {'ok': True}}}
        self.assertEqual(hosts.host_modes(both), (['stop-and-copy', 'pre-copy', 'post-copy'], []))

    def test_an_agent_that_does_not_report_modes(self):
        have, lacking = hosts.host_modes({'criu_ok': True, 'modes': None})
        self.assertEqual(have, ['stop-and-copy'])
        self.assertEqual([x.split(':')[0] for x in lacking], ['pre-copy', 'post-copy'])
        self.assertEqual(hosts.host_modes({'criu_ok': True}), (have, lacking))

    def test_no_mode_without_criu(self):
        have, lacking = hosts.host_modes({'criu_ok': False, 'modes': {
            'post_copy': {'ok': True, 'reason': None}, 'pre_copy': {'ok': True, 'reason': None}}})
        self.assertEqual(have, [])
        self.assertEqual(len(lacking), 3)
        self.assertTrue(all('CRIU does not work' in x for x in lacking), lacking)


class WaitTest(unittest.TestCase):
    def test_one_line_per_container_as_each_ends(self):
        first = {'uuid': 'u', 'host': 'compute1', 'status': 'running',
                 'containers': [item('a', 'migrating'), item('b', 'pending'),
                                item('c', 'not-moved', reason='not running (exited), not moved')]}
        middle = dict(first, containers=[item('a', 'completed', 'compute2', migration='m-a'),
                                         item('b', 'migrating'), first['containers'][2]])
        last = dict(first, status='completed',
                    containers=[middle['containers'][0], item('b', 'completed', 'compute2', migration='m-b'),
                                first['containers'][2]])
        client = FakeClient([middle, middle, last])
        out = io.StringIO()
        final = hosts.wait_for_evacuation(client, first, out, interval=0, sleep=lambda s: None)
        self.assertEqual(final['status'], 'completed')
        self.assertEqual(out.getvalue().splitlines(), [
            '[1/3] c  not running (exited), not moved',
            '[2/3] a  compute1 -> compute2  completed, downtime 812 ms',
            '[3/3] b  compute1 -> compute2  completed, downtime 812 ms',
        ])
        self.assertEqual(client.asked, ['m-a', 'm-b'])

    def test_gives_up_waiting_after_the_timeout(self):
        running = {'uuid': 'u', 'host': 'compute1', 'status': 'running', 'containers': [item('a', 'migrating')]}
        ticks = iter([0, 5, 11, 20])
        with self.assertRaises(osc_exc.CommandError) as cm:
            hosts.wait_for_evacuation(FakeClient([running] * 5), running, io.StringIO(), interval=0,
                                      timeout=10, clock=lambda: next(ticks), sleep=lambda s: None)
        self.assertIn('still running after 10s', str(cm.exception))


if __name__ == '__main__':
    unittest.main()
