"""The base of every Ferry test: skips when Ferry is not deployed, gives the admin's and a
member's service clients, picks the source and target hosts, and starts workloads on the
hosts' Docker engines with their removal registered as cleanup."""
import time

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest import test

from ferry_tempest_plugin.common import waiters
from ferry_tempest_plugin.common import workloads

CONF = config.CONF
# The Docker label that gives a container (and its migrations) a project, as Ferry reads it.
PROJECT_LABEL = 'org.openstack.project_id'


class BaseContainerMigrationTest(test.BaseTestCase):
    # Migrating is admin-only by default (like Nova); a project member checks the refusals and
    # reads only its project's migrations and containers (secure RBAC defaults).
    credentials = ['admin', 'primary']
    # Tests that start workloads need the hosts' Docker engines.
    needs_workloads = False
    # The API microversion the tests were written for (paging, host maintenance, memory
    # counters, post-copy); every request of cls.client and cls.member_client sends it.
    api_microversion = '1.4'

    @classmethod
    def skip_checks(cls):
        super(BaseContainerMigrationTest, cls).skip_checks()
        if not CONF.service_available.ferry:
            raise cls.skipException('Ferry (container-migration) is not available')
        if cls.needs_workloads and not CONF.container_migration.docker_hosts:
            raise cls.skipException('[container_migration] docker_hosts is not set')

    @classmethod
    def setup_clients(cls):
        super(BaseContainerMigrationTest, cls).setup_clients()
        cls.client = cls.os_admin.container_migration.ContainerMigrationClient()
        cls.client.api_microversion = cls.api_microversion
        if 'primary' in cls.credentials:
            cls.member_client = cls.os_primary.container_migration.ContainerMigrationClient()
            cls.member_client.api_microversion = cls.api_microversion

    @classmethod
    def resource_setup(cls):
        super(BaseContainerMigrationTest, cls).resource_setup()
        conf = CONF.container_migration
        cls.docker = workloads.Docker(conf.docker_cli, conf.docker_hosts)
        if cls.needs_workloads:
            cls.source, cls.target = cls.pick_hosts()

    @classmethod
    def pick_hosts(cls):
        """Source and target: [container_migration] hosts, else the first two hosts that Ferry
        reports up and that docker_hosts reaches."""
        up = sorted(h['name'] for h in cls.client.list_hosts()['hosts']
                    if h['state'] == 'up' and h['name'] in cls.docker.hosts)
        wanted = CONF.container_migration.hosts or up[:2]
        if len(wanted) < 2 or any(h not in up for h in wanted[:2]):
            raise cls.skipException('two compute hosts that are up and reachable with Docker '
                                    'are needed; up: %s, configured: %s' % (up, wanted))
        return wanted[0], wanted[1]

    # -- workloads -----------------------------------------------------------------

    @classmethod
    def workload_name(cls, prefix):
        return data_utils.rand_name(prefix='ferry-tempest-' + prefix)

    def start_workload(self, prefix, image, host=None, ip=None, env=(), project_id=None):
        """Start a container on host (the source by default); removed at cleanup. Waits until
        Ferry lists it (the agents report their containers with each heartbeat). project_id:
        the project label (org.openstack.project_id) that makes it, and its migrations, that
        project's."""
        return self._start(self.addCleanup, prefix, image, host, ip, env, project_id)

    @classmethod
    def start_class_workload(cls, prefix, image, host=None, ip=None, env=(), project_id=None):
        """start_workload for a whole test class (in resource_setup)."""
        return cls._start(cls.addClassResourceCleanup, prefix, image, host, ip, env, project_id)

    @classmethod
    def _start(cls, add_cleanup, prefix, image, host, ip, env, project_id=None):
        name = cls.workload_name(prefix)
        host = host or cls.source
        add_cleanup(cls.docker.remove_everywhere, name)
        network = CONF.container_migration.fabric_network if ip else None
        labels = {PROJECT_LABEL: project_id} if project_id else None
        cls.docker.run(host, name, image, network=network, ip=ip,
                       mac=workloads.mac_for(ip) if ip else None, env=env, labels=labels)
        cls.wait_listed(cls.client, name, host)
        return name

    @staticmethod
    def wait_listed(client, name, host, status='running', timeout=60):
        """Wait until Ferry lists the container on host with that status (its agent reports
        the host's containers with each heartbeat); returns the listed container."""
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            for c in client.list_containers()['containers']:
                if c['name'] == name and c['host'] == host:
                    seen = c
                    if c['status'] == status:
                        return c
            if time.monotonic() > deadline:
                raise AssertionError('Ferry did not list container %s on %s as %s within %d s '
                                     '(last seen: %s)' % (name, host, status, timeout, seen))
            time.sleep(0.5)

    def migrate(self, name, host, **extra):
        """Ask for the migration; returns the 202's record. A migration still running at
        cleanup is waited for, so no test leaves one behind."""
        m = self.client.migrate_container(name, host=host, **extra)['migration']
        self.addCleanup(self._settle, m['uuid'])
        return m

    def _settle(self, uuid):
        try:
            waiters.wait_for_migration(self.client, uuid)
        except Exception:
            pass

    def wait_final(self, uuid):
        return waiters.wait_for_migration(self.client, uuid)
