"""Ferry's v1 REST API (service type container-migration) on tempest's RestClient: each
method checks the status the API contract promises and returns the decoded body."""
import json
from urllib.parse import quote, urlencode

from tempest.lib.common import rest_client


API_VERSION_HEADER = 'OpenStack-API-Version'
SERVICE_TYPE = 'container-migration'


class ContainerMigrationClient(rest_client.RestClient):
    api_version = 'v1'
    # The microversion every request asks for ("1.N" or "latest"); None: no header, the API's 1.0.
    api_microversion = None

    def get_headers(self, accept_type=None, send_type=None):
        headers = super(ContainerMigrationClient, self).get_headers(accept_type, send_type)
        if self.api_microversion:
            headers[API_VERSION_HEADER] = '%s %s' % (SERVICE_TYPE, self.api_microversion)
        return headers

    def show_version(self):
        """GET /v1: the version document (``min_version`` and ``version``, the newest)."""
        resp, body = self.get('')
        return self._body(resp, body, 200)

    def raw_get(self, path, version_header=None):
        """GET without the status checks (for refusals): (response, decoded body). The
        version header is ``version_header`` as given (None: none)."""
        headers = super(ContainerMigrationClient, self).get_headers()
        headers['X-Auth-Token'] = self.token
        if version_header is not None:
            headers[API_VERSION_HEADER] = version_header
        resp, body = self.raw_request('%s/%s' % (self.base_url.rstrip('/'), path), 'GET',
                                      headers=headers)
        return resp, (json.loads(body) if body else {})

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
