"""API microversions: the version document's range, the version echoed (with Vary), 406 outside
the range, and a field that an older microversion leaves out."""
import re

from tempest.lib import decorators

from ferry_tempest_plugin.tests import base

VERSION_RE = re.compile(r'^1\.(0|[1-9][0-9]*)$')


def _minor(version):
    return int(version.split('.')[1])


class MicroversionsTest(base.BaseContainerMigrationTest):
    credentials = ['admin']

    @classmethod
    def resource_setup(cls):
        super(MicroversionsTest, cls).resource_setup()
        cls.version = cls.client.show_version()['version']

    def client_at(self, version):
        c = self.os_admin.container_migration.ContainerMigrationClient()
        c.api_microversion = version
        return c

    @decorators.idempotent_id('8d2c80e5-dbbd-4299-9493-fd354ee92e9f')
    def test_version_document_has_the_range(self):
        self.assertEqual('1.0', self.version['min_version'])
        self.assertRegex(self.version['version'], VERSION_RE)
        # This plugin was written for api_microversion: the server has at least that.
        self.assertGreaterEqual(_minor(self.version['version']), _minor(self.api_microversion))

    @decorators.idempotent_id('49badead-73e1-42ee-95a9-4010d8a6ad62')
    def test_version_is_echoed_with_vary(self):
        for asked, answered in ((None, '1.0'), ('1.1', '1.1'), ('latest', self.version['version'])):
            body = self.client_at(asked).list_hosts()
            self.assertEqual('container-migration %s' % answered,
                             body.response['openstack-api-version'], asked)
            self.assertIn('OpenStack-API-Version', body.response['vary'])

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('56e9d7cd-0840-405a-9e7c-eefe63f5a315')
    def test_outside_the_range_is_406_naming_it(self):
        beyond = '1.%d' % (_minor(self.version['version']) + 1)
        for asked in (beyond, '2.0'):
            resp, body = self.client.raw_get('hosts', 'container-migration %s' % asked)
            self.assertEqual(406, resp.status, body)
            self.assertIn('supports 1.0 to %s' % self.version['version'], body['error']['message'])
        resp, body = self.client.raw_get('hosts', 'container-migration one')
        self.assertEqual(400, resp.status, body)

    @decorators.idempotent_id('07d04ae7-9502-4076-a2ac-afa078cc7c87')
    def test_host_status_is_shown_from_1_2(self):
        old = self.client_at('1.1').list_hosts()['hosts']
        new = self.client_at('1.2').list_hosts()['hosts']
        self.assertNotEmpty(new)
        for h in old:
            self.assertNotIn('status', h)
            self.assertNotIn('disabled_reason', h)
        for h in new:
            self.assertIn(h['status'], ('enabled', 'disabled'))
            self.assertIn('disabled_reason', h)
