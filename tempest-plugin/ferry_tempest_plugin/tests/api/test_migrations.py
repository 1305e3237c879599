"""POST /v1/containers/{id}/migrate, GET /v1/migrations (with filters) and
GET /v1/migrations/{uuid}: one real migration, then what the API says about it."""
from tempest import config
from tempest.lib import decorators

from ferry_tempest_plugin.common import waiters
from ferry_tempest_plugin.tests import base

CONF = config.CONF

TIMINGS = ('freeze_ms', 'checkpoint_ms', 'transfer_ms', 'restore_ms', 'total_ms')
FIELDS = {'uuid', 'container_id', 'container_name', 'source_host', 'dest_host', 'status',
          'phase', 'progress', 'error', 'created_at', 'updated_at',
          'transferred_bytes', 'memory_bytes'} | set(TIMINGS)


class MigrationsTest(base.BaseContainerMigrationTest):
    needs_workloads = True

    @classmethod
    def resource_setup(cls):
        super(MigrationsTest, cls).resource_setup()
        cls.name = cls.start_class_workload('api', CONF.container_migration.counter_image)
        cls.accepted = cls.client.migrate_container(cls.name, host=cls.target)['migration']
        cls.migration = waiters.wait_for_migration(cls.client, cls.accepted['uuid'])

    @decorators.attr(type='smoke')
    @decorators.idempotent_id('539d5178-a86d-4094-93ae-e1aa2c817fed')
    def test_migrate_and_show(self):
        self.assertEqual('accepted', self.accepted['status'])
        self.assertEqual(self.name, self.accepted['container_name'])
        m = self.client.show_migration(self.accepted['uuid'])['migration']
        self.assertTrue(FIELDS.issubset(m), 'missing: %s' % (FIELDS - set(m)))
        self.assertEqual('completed', m['status'], m.get('error'))
        self.assertEqual(100, m['progress'])
        self.assertEqual(self.source, m['source_host'])
        self.assertEqual(self.target, m['dest_host'])
        self.assertIsNone(m['error'])
        for t in TIMINGS:
            self.assertIsInstance(m[t], int, t)
        self.assertGreaterEqual(m['total_ms'], m['freeze_ms'])
        self.assertGreater(m['transferred_bytes'], 0)
        self.assertEqual('running', self.docker.state(self.target, self.name))
        self.assertIsNone(self.docker.state(self.source, self.name))

    @decorators.idempotent_id('92a9115e-a10a-425f-b941-233b9a2cfa3e')
    def test_list_migrations_with_filters(self):
        uuid = self.accepted['uuid']

        def uuids(**filters):
            return [m['uuid'] for m in self.client.list_migrations(**filters)['migrations']]

        self.assertIn(uuid, uuids())
        self.assertEqual([uuid], uuids(container=self.name))
        self.assertIn(uuid, uuids(status='completed', source_host=self.source,
                                  dest_host=self.target))
        self.assertNotIn(uuid, uuids(status='failed'))
        self.assertNotIn(uuid, uuids(source_host=self.target))
        self.assertNotIn(uuid, uuids(dest_host=self.source))
        self.assertEqual([], uuids(container=self.name, status='cancelled'))


class SchedulerChosenTargetTest(base.BaseContainerMigrationTest):
    needs_workloads = True

    @decorators.idempotent_id('16766d3b-581e-4d09-83aa-486a22d6d81a')
    def test_migrate_without_a_host(self):
        name = self.start_workload('sched', CONF.container_migration.counter_image)
        accepted = self.migrate(name, None)
        m = self.wait_final(accepted['uuid'])
        self.assertEqual('completed', m['status'], m.get('error'))
        self.assertEqual(self.source, m['source_host'])
        self.assertNotEqual(self.source, m['dest_host'])
        self.assertIn(m['dest_host'], self.docker.hosts)
        self.assertEqual('running', self.docker.state(m['dest_host'], name))
        self.assertIsNone(self.docker.state(self.source, name))
