"""GET /v1/containers: every container on every compute host."""
from tempest import config
from tempest.lib import decorators

from ferry_tempest_plugin.tests import base

CONF = config.CONF


class ContainersTest(base.BaseContainerMigrationTest):
    needs_workloads = True

    @decorators.idempotent_id('28fcc29d-9299-4aca-a11c-d13cc9bcfd88')
    def test_list_containers_shows_a_new_container(self):
        name = self.start_workload('list', CONF.container_migration.counter_image)
        listed = self.wait_listed(self.client, name, self.source)
        self.assertEqual(self.source, listed['host'])
        self.assertEqual('running', listed['status'])
        self.assertIn(CONF.container_migration.counter_image, listed['image'])
        self.assertTrue(listed['id'])
        for c in self.client.list_containers()['containers']:
            self.assertTrue({'id', 'name', 'host', 'image', 'status'}.issubset(c), c)

    @decorators.idempotent_id('36553941-2342-4363-afb3-2165148a3cab')
    def test_member_lists_only_its_projects_containers(self):
        project = self.os_primary.credentials.project_id
        mine = self.start_workload('list-mine', CONF.container_migration.counter_image,
                                   project_id=project)
        other = self.start_workload('list-other', CONF.container_migration.counter_image)
        listed = self.wait_listed(self.member_client, mine, self.source)
        self.assertEqual(project, listed['project_id'])
        containers = self.member_client.list_containers()['containers']
        self.assertNotIn(other, [c['name'] for c in containers])
        self.assertEqual({project}, {c['project_id'] for c in containers})
