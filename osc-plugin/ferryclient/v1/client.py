"""The Ferry REST API (v1) over a keystoneauth1 session.

The endpoint comes from the Keystone catalog (service type ``container-migration``)
unless an endpoint override is given. Every method returns plain dicts, as the API
sends them.
"""
import re
from urllib.parse import quote

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc

from ferryclient import exceptions

SERVICE_TYPE = 'container-migration'
FINAL_STATUSES = ('completed', 'failed', 'cancelled')


def _where(exc):
    m = re.search(r'connection to (\S+?):? ', str(exc))
    return ' at %s' % m.group(1) if m else ''


def _reason(exc):
    m = re.search(r'\[Errno -?\d+\] ([^\'")]+)', str(exc))
    return m.group(1).strip().lower() if m else ' '.join(str(exc).split())[:200]


class Client(object):
    def __init__(self, session, service_type=SERVICE_TYPE, interface=None,
                 region_name=None, endpoint_override=None, user_agent=None):
        self.region_name = region_name
        self.interface = interface
        self.http = adapter.Adapter(
            session,
            service_type=service_type,
            interface=interface,
            region_name=region_name,
            endpoint_override=endpoint_override,
            user_agent=user_agent or 'python-ferryclient',
        )

    # -- transport ---------------------------------------------------------

    def _request(self, method, path, **kwargs):
        kwargs.setdefault('headers', {}).setdefault('Accept', 'application/json')
        try:
            resp = self.http.request(path, method, raise_exc=False, **kwargs)
        except ks_exc.EndpointNotFound:
            raise exceptions.EndpointNotFound(
                "No '%s' endpoint in the Keystone catalog (region %s, interface %s): "
                "is Ferry registered (ferry-api registers itself when it starts)?"
                % (self.http.service_type, self.region_name or 'any',
                   self.interface or 'public'))
        except ks_exc.ConnectTimeout as e:
            raise exceptions.ConnectionError(
                'Timed out connecting to the Ferry API%s' % _where(e))
        except ks_exc.ConnectFailure as e:
            raise exceptions.ConnectionError(
                'Cannot reach the Ferry API%s: %s' % (_where(e), _reason(e)))
        if resp.status_code >= 400:
            raise exceptions.from_response(resp, method=method, url=path)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise exceptions.ClientException(
                'The Ferry API answered %s %s with a body that is not JSON'
                % (method, path))

    @staticmethod
    def _q(value):
        return quote(str(value), safe='')

    # -- resources ---------------------------------------------------------

    def list_hosts(self):
        return self._request('GET', '/hosts')['hosts']

    def list_containers(self):
        return self._request('GET', '/containers')['containers']

    def migrate(self, container, host=None):
        body = {'host': host} if host else {}
        return self._request('POST', '/containers/%s/migrate' % self._q(container),
                             json=body)['migration']

    def list_migrations(self, container=None, status=None, source_host=None,
                        dest_host=None):
        params = {k: v for k, v in (('container', container), ('status', status),
                                    ('source_host', source_host),
                                    ('dest_host', dest_host)) if v}
        return self._request('GET', '/migrations', params=params)['migrations']

    def get_migration(self, uuid):
        return self._request('GET', '/migrations/%s' % self._q(uuid))['migration']

    def abort_migration(self, uuid):
        body = self._request('DELETE', '/migrations/%s' % self._q(uuid))
        return body.get('migration') if isinstance(body, dict) else None
