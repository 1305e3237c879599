"""The scenarios' common frame: the cloud, two up hosts, a uniquely named workload with a
fixed address on the tenant network, cleanup, and the client-side report."""
import os
import subprocess
import time
import unittest

from scenarios.cloud import Cloud, log

# Fixed addresses on the tenant network for this suite (10.250.0.150-180), one per scenario,
# so a scenario never collides with other suites' workloads.
ADDRESSES = {
    'counter': ('10.250.0.150', '02:42:0a:fa:00:96'),
    'redis': ('10.250.0.160', '02:42:0a:fa:00:a0'),
    'stream': ('10.250.0.170', '02:42:0a:fa:00:aa'),
}


class ScenarioTest(unittest.TestCase):
    kind = None
    cloud = None

    @classmethod
    def setUpClass(cls):
        if ScenarioTest.cloud is None:
            ScenarioTest.cloud = Cloud()
        hosts = cls.cloud.up_hosts()
        if len(hosts) < 2:
            raise AssertionError('these scenarios need two compute hosts that are up and '
                                 'reachable with Docker; `openstack container host list` '
                                 'and FERRY_DOCKER_HOSTS give %s' % hosts)
        cls.source, cls.target = sorted(hosts)[:2]

    def setUp(self):
        self.name = 'ferry-scn-%s-%d' % (self.kind, os.getpid())
        self.ip, self.mac = ADDRESSES[self.kind]
        self.cloud.remove_everywhere(self.name)
        self.addCleanup(self.cloud.remove_everywhere, self.name)
        self.started = time.monotonic()
        log('%s: %s on %s -> %s at %s' % (self.kind, self.name, self.source, self.target, self.ip))

    def start_workload(self, image, *extra):
        self.cloud.run_on_fabric(self.source, self.name, image, self.ip, self.mac, *extra)
        self.addCleanup(self.cloud.remove_everywhere, self.name)
        self.assertEqual(self.cloud.state(self.source, self.name), 'running')

    def start_probe(self, *args):
        probe = self.cloud.probe(*args)
        self.addCleanup(probe.stop_hard)
        probe.wait_ready()
        return probe

    def migrate(self):
        """Move the workload with `openstack container migrate --wait`; checks where it is after."""
        record, rc, progress = self.cloud.migrate(self.name, self.target)
        self.assertEqual(rc, 0, 'migration did not complete: %s' % record.get('error'))
        self.assertEqual(record['status'], 'completed')
        self.assertEqual(record['source_host'], self.source)
        self.assertEqual(record['dest_host'], self.target)
        self.assertTrue(progress, '--wait showed no progress')
        self.assertEqual(self.cloud.state(self.target, self.name), 'running')
        self.assertIsNone(self.cloud.state(self.source, self.name),
                          'the container is still on the source host')
        listed = self.cloud.openstack_json('container', 'migration', 'show', record['uuid'])
        self.assertEqual(listed['status'], 'completed')
        return record

    def ss_connections(self, port):
        """Established TCP connections from the client namespace to the workload's port."""
        out = subprocess.run(['ip', 'netns', 'exec', self.cloud.client_netns, 'ss', '-Htn',
                              'state', 'established', 'dst', '%s:%d' % (self.ip, port)],
                             capture_output=True, text=True, timeout=30).stdout
        return sorted(line.split()[-2] for line in out.splitlines() if line.strip())

    def report(self, what, client_ms, record, extra=''):
        log('%s: client-side downtime %d ms (%s); Ferry reports freeze %s ms, total %s ms%s' % (
            self.kind, client_ms, what, record.get('freeze_ms'), record.get('total_ms'),
            ('; ' + extra) if extra else ''))
