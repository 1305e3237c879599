"""Secure RBAC defaults: a project's reader (Keystone's reader role, which member and admin
imply) lists and shows its project's migrations, finds another project's "not found", and
changes nothing; the admin sees every project's. Two migrations made by the admin: one of a
container labelled with the reader's project, one of an unlabelled container (so the admin's
project's)."""
from tempest import config
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from ferry_tempest_plugin.common import waiters
from ferry_tempest_plugin.tests import base

CONF = config.CONF


class ProjectReaderTest(base.BaseContainerMigrationTest):
    # project_reader first: with pre-provisioned accounts, primary takes any free non-admin
    # account, and the reader's is the only one with the reader role alone.
    credentials = ['admin', 'project_reader', 'primary']
    needs_workloads = True

    @classmethod
    def setup_clients(cls):
        super(ProjectReaderTest, cls).setup_clients()
        cls.reader_client = cls.os_project_reader.container_migration.ContainerMigrationClient()
        cls.reader_client.api_microversion = cls.api_microversion

    @classmethod
    def resource_setup(cls):
        super(ProjectReaderTest, cls).resource_setup()
        cls.project = cls.os_project_reader.credentials.project_id
        image = CONF.container_migration.counter_image
        ours = cls.start_class_workload('rbac-ours', image, project_id=cls.project)
        theirs = cls.start_class_workload('rbac-theirs', image)
        cls.ours = cls.client.migrate_container(ours, host=cls.target)['migration']
        cls.theirs = cls.client.migrate_container(theirs, host=cls.target)['migration']
        for m in (cls.ours, cls.theirs):
            final = waiters.wait_for_migration(cls.client, m['uuid'])
            if final['status'] != 'completed':
                raise AssertionError('migration %s ended %s: %s'
                                     % (m['uuid'], final['status'], final.get('error')))

    @decorators.idempotent_id('98f2041e-a1fe-44ea-80b3-3cd73b8978d6')
    def test_reader_lists_and_shows_its_projects_migrations(self):
        self.assertEqual(self.project, self.ours['project_id'])
        listed = self.reader_client.list_migrations()['migrations']
        uuids = [m['uuid'] for m in listed]
        self.assertIn(self.ours['uuid'], uuids)
        self.assertNotIn(self.theirs['uuid'], uuids)
        self.assertEqual({self.project}, {m['project_id'] for m in listed})
        shown = self.reader_client.show_migration(self.ours['uuid'])['migration']
        self.assertEqual('completed', shown['status'])

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('e1983673-715e-4119-8f8d-07b21eab2e22')
    def test_reader_does_not_see_another_projects_migration(self):
        self.assertNotEqual(self.project, self.theirs['project_id'])
        self.assertRaises(lib_exc.NotFound, self.reader_client.show_migration,
                          self.theirs['uuid'])
        self.assertRaises(lib_exc.Forbidden, self.reader_client.list_migrations,
                          project_id=self.theirs['project_id'])

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('af0cb2c3-1a30-4e3a-80ca-d4ae5895b241')
    def test_reader_changes_nothing(self):
        self.assertRaises(lib_exc.Forbidden, self.reader_client.migrate_container,
                          self.ours['container_name'])
        self.assertRaises(lib_exc.Forbidden, self.reader_client.abort_migration,
                          self.ours['uuid'])
        self.assertRaises(lib_exc.Forbidden, self.reader_client.force_complete_migration,
                          self.ours['uuid'])
        self.assertRaises(lib_exc.Forbidden, self.reader_client.list_hosts)

    @decorators.idempotent_id('adc856ab-0416-4329-8040-34ac82f9d630')
    def test_admin_sees_every_project(self):
        uuids = [m['uuid'] for m in self.client.list_migrations()['migrations']]
        self.assertIn(self.ours['uuid'], uuids)
        self.assertIn(self.theirs['uuid'], uuids)
