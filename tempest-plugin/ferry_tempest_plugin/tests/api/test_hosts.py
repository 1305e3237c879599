"""GET /v1/hosts: the compute hosts with their state and versions."""
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from ferry_tempest_plugin.tests import base

HOST_FIELDS = {'name', 'state', 'docker_version', 'criu_version', 'containers', 'updated_at'}


class HostsTest(base.BaseContainerMigrationTest):

    @decorators.attr(type='smoke')
    @decorators.idempotent_id('a0d344ff-3a1d-4191-b962-cf0bfe658ea1')
    def test_list_hosts(self):
        hosts = self.client.list_hosts()['hosts']
        self.assertNotEmpty(hosts)
        for h in hosts:
            self.assertTrue(HOST_FIELDS.issubset(h), 'missing fields in %s' % h)
            self.assertIn(h['state'], ('up', 'down'))
            self.assertIsInstance(h['containers'], int)
        up = [h for h in hosts if h['state'] == 'up']
        self.assertNotEmpty(up, 'no compute host is up')
        for h in up:
            self.assertTrue(h['docker_version'], h)
            self.assertTrue(h['criu_version'], h)
            self.assertIsNotNone(h['updated_at'])
        # Modes beyond stop-and-copy, as each agent reports them (null: an agent that does not).
        for h in hosts:
            for mode in (h.get('modes') or {}).values():
                self.assertIsInstance(mode['ok'], bool, h)
                if not mode['ok']:
                    self.assertTrue(mode['reason'], 'a mode lacking without a reason: %s' % h)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('5eea7f90-2c77-4c83-8648-10bcd69e5db4')
    def test_list_hosts_as_member_is_forbidden(self):
        self.assertRaises(lib_exc.Forbidden, self.member_client.list_hosts)
