"""The frame of the scenario tests: a workload at a fixed address on the tenant network, a
client probe in the tenant's network namespace, one migration, and the client-side report."""
import ipaddress
import time

from oslo_log import log as logging
from tempest import config

from ferry_tempest_plugin.common import waiters
from ferry_tempest_plugin.common import workloads
from ferry_tempest_plugin.tests import base

CONF = config.CONF
LOG = logging.getLogger(__name__)

# Each scenario has its own address: start of the configured range + this offset.
OFFSETS = {'counter': 0, 'redis': 10, 'stream': 20}


class ScenarioTest(base.BaseContainerMigrationTest):
    needs_workloads = True
    credentials = ['admin']
    kind = None

    @classmethod
    def skip_checks(cls):
        super(ScenarioTest, cls).skip_checks()
        if not CONF.container_migration.client_netns:
            raise cls.skipException('[container_migration] client_netns is not set')

    def setUp(self):
        super(ScenarioTest, self).setUp()
        start = ipaddress.ip_address(CONF.container_migration.address_range_start)
        self.ip = str(start + OFFSETS[self.kind])

    def start_on_fabric(self, image):
        name = self.start_workload(self.kind, image, ip=self.ip)
        self.assertEqual('running', self.docker.state(self.source, name))
        return name

    def start_probe(self, *args):
        conf = CONF.container_migration
        probe = workloads.Probe(conf.probe_python, conf.client_netns, *args)
        self.addCleanup(probe.stop_hard)
        probe.wait_ready()
        return probe

    def migrate_and_check(self, name):
        """Migrate to the target and wait; the record must be completed and the container
        must run on the target only."""
        t0 = time.monotonic()
        accepted = self.migrate(name, self.target)
        statuses = set()

        def watch(m):
            statuses.add(m['status'])
            return m['status'] in waiters.FINAL_STATUSES

        m = waiters.wait_for_migration(self.client, accepted['uuid'], condition=watch,
                                       interval=0.2)
        LOG.info('%s: migration %s %s in %.1f s', self.kind, m['uuid'], m['status'],
                 time.monotonic() - t0)
        self.assertEqual('completed', m['status'], m.get('error'))
        self.assertEqual(self.source, m['source_host'])
        self.assertEqual(self.target, m['dest_host'])
        self.assertIn('running', statuses | {'completed'})
        self.assertEqual('running', self.docker.state(self.target, name))
        self.assertIsNone(self.docker.state(self.source, name),
                          'the container is still on the source host')
        return m

    def report(self, what, client_ms, record, extra=''):
        msg = ('%s: client-side downtime %d ms (%s); Ferry reports freeze %s ms, total %s ms%s'
               % (self.kind, client_ms, what, record.get('freeze_ms'), record.get('total_ms'),
                  ('; ' + extra) if extra else ''))
        LOG.info(msg)
        print(msg)
