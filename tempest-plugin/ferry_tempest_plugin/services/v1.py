"""Ferry's v1 REST API (service type container-migration) on tempest's RestClient: each
method checks the status the API contract promises and returns the decoded body."""
import json
from urllib.parse import quote, urlencode

from tempest.lib.common import rest_client


class ContainerMigrationClient(rest_client.RestClient):
    api_version = 'v1'

    def _body(self, resp, body, expected):
        self.expected_success(expected, resp.status)
        return rest_client.ResponseBody(resp, json.loads(body) if body else {})

    @staticmethod
    def _q(value):
        return quote(str(value), safe='')

    def list_hosts(self):
        resp, body = self.get('hosts')
        return self._body(resp, body, 200)

    def list_containers(self):
        resp, body = self.get('containers')
        return self._body(resp, body, 200)

    def migrate_container(self, container, host=None, **extra):
        """POST /containers/{container}/migrate; 202 with the new migration."""
        req = dict(extra)
        if host:
            req['host'] = host
        resp, body = self.post('containers/%s/migrate' % self._q(container), json.dumps(req))
        return self._body(resp, body, 202)

    def list_migrations(self, **filters):
        url = 'migrations'
        if filters:
            url += '?' + urlencode(filters)
        resp, body = self.get(url)
        return self._body(resp, body, 200)

    def show_migration(self, uuid):
        resp, body = self.get('migrations/%s' % self._q(uuid))
        return self._body(resp, body, 200)

    def abort_migration(self, uuid):
        resp, body = self.delete('migrations/%s' % self._q(uuid))
        return self._body(resp, body, 202)

    def force_complete_migration(self, uuid):
        """POST /migrations/{uuid}/action {"force_complete": null} (Nova's force-complete);
        202 with the migration and its new mode."""
        resp, body = self.post('migrations/%s/action' % self._q(uuid),
                               json.dumps({'force_complete': None}))
        return self._body(resp, body, 202)

    def is_resource_deleted(self, id):
        # Migrations are records, never deleted; tempest's wait_for_resource_deletion does
        # not apply to them.
        raise NotImplementedError('migrations are kept as records')

    @property
    def resource_type(self):
        return 'migration'
