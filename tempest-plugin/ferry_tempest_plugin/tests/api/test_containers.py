"""GET /v1/containers: every container on every compute host."""
from tempest import config
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

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

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('dccc0797-3ca0-4eb7-989c-89765819bd19')
    def test_list_containers_as_member_is_forbidden(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.list_containers)
