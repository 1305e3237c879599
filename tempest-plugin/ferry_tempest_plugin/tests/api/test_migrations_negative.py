"""What the API refuses, with tempest's exceptions: unknown things, bad input, a member
asking for an admin action, aborting what has already ended."""
from tempest import config
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from ferry_tempest_plugin.common import waiters
from ferry_tempest_plugin.tests import base

CONF = config.CONF
UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000'


class MigrationsNegativeTest(base.BaseContainerMigrationTest):

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('e0d2637e-d05d-402c-a38c-931eb05d3b61')
    def test_show_unknown_migration(self):
        self.assertRaises(lib_exc.NotFound, self.client.show_migration, UNKNOWN_UUID)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('80614f3d-02a8-4380-a569-21f79f9f65c3')
    def test_show_migration_with_a_malformed_id(self):
        # Not a UUID: no migration can have that id.
        self.assertRaises(lib_exc.NotFound, self.client.show_migration, 'not-a-uuid')

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('8dbdcc1c-84fc-4bc5-b374-3b6f5e97d6f2')
    def test_abort_unknown_migration(self):
        self.assertRaises(lib_exc.NotFound, self.client.abort_migration, UNKNOWN_UUID)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('4cb17d21-422c-4e4c-ac69-db6869785042')
    def test_migrate_unknown_container(self):
        self.assertRaises(lib_exc.NotFound, self.client.migrate_container,
                          'ferry-tempest-no-such-container')

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('4ffd13b5-d559-42e4-8ec7-d5bca45254fc')
    def test_migrate_with_an_unknown_body_field(self):
        self.assertRaises(lib_exc.BadRequest, self.client.migrate_container,
                          'ferry-tempest-no-such-container', colour='blue')

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('d55296e1-00c7-4b76-a6a8-9af757e2d47a')
    def test_list_migrations_with_an_unknown_status(self):
        self.assertRaises(lib_exc.BadRequest, self.client.list_migrations, status='flying')

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('a7e875d6-f25f-4a62-b12d-9a06f9cf2389')
    def test_member_cannot_list_another_projects_migrations(self):
        # A project member lists its own project's (secure RBAC); naming another is refused.
        self.assertRaises(lib_exc.Forbidden, self.member_client.list_migrations,
                          project_id=self.os_admin.credentials.project_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('b3d58e18-f7b2-4df5-a9fc-7c9aed96e656')
    def test_member_cannot_migrate(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.migrate_container,
                          'ferry-tempest-no-such-container')


class MigrationsWithWorkloadNegativeTest(base.BaseContainerMigrationTest):
    needs_workloads = True

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('732fca03-88a6-4afa-b76d-2c42e55b136d')
    def test_migrate_to_an_unknown_host_or_to_where_it_runs(self):
        name = self.start_workload('neg', CONF.container_migration.counter_image)
        self.assertRaises(lib_exc.NotFound, self.client.migrate_container, name,
                          host='no-such-host')
        self.assertRaises(lib_exc.BadRequest, self.client.migrate_container, name,
                          host=self.source)
        self.assertEqual([], self.client.list_migrations(container=name)['migrations'])
        self.assertEqual('running', self.docker.state(self.source, name))

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('bd86a558-5a01-4067-ab1f-b16c8faacb6a')
    def test_abort_a_completed_migration(self):
        name = self.start_workload('neg-done', CONF.container_migration.counter_image)
        m = self.migrate(name, self.target)
        self.assertEqual('completed', waiters.wait_for_migration(self.client, m['uuid'])['status'])
        self.assertRaises(lib_exc.Conflict, self.client.abort_migration, m['uuid'])
        # Unlabelled, so the admin's project's migration: not found to another project's member.
        self.assertRaises(lib_exc.NotFound, self.member_client.show_migration, m['uuid'])
