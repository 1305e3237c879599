"""The Ferry REST API (v1) over a keystoneauth1 session.

The endpoint comes from the Keystone catalog (service type ``container-migration``)
unless an endpoint override is given. Every method returns plain dicts, as the API
sends them.
"""
import re
from urllib.parse import parse_qs, quote, urlparse

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc

from ferryclient import exceptions
from ferryclient.safetext import clean

SERVICE_TYPE = 'container-migration'
# Microversions (the server's history is in src/api/microversions.ts): the newest this client
# knows, and the header every request carries.
MIN_API_VERSION = '1.0'
MAX_API_VERSION = '1.5'
API_VERSION_HEADER = 'OpenStack-API-Version'
# `error`: the outcome is unknown or a post-copy could not finish; nothing more will happen.
FINAL_STATUSES = ('completed', 'failed', 'cancelled', 'error')


def _where(exc):
    m = re.search(r'connection to (\S+?):? ', str(exc))
    return ' at %s' % m.group(1) if m else ''


def _next_marker(links):
    """The marker of a list's `next` link (Nova's `<collection>_links`), or None on the last page."""
    for link in links or ():
        if link.get('rel') == 'next':
            marker = parse_qs(urlparse(link.get('href', '')).query).get('marker')
            return marker[0] if marker else None
    return None


def parse_version(text):
    """'1.4' -> (1, 4); None for anything else."""
    m = re.match(r'^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$', str(text or '').strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def _fmt(v):
    return '%d.%d' % v


def negotiate(requested, server_min, server_max):
    """The microversion to send: ``requested`` (None, '1' or 'latest': the highest both this
    client and the server know) checked against the server's range; UnsupportedVersion when
    there is none. A server without microversions (empty range) gets None: no header."""
    s_min, s_max = parse_version(server_min), parse_version(server_max)
    c_max = parse_version(MAX_API_VERSION)
    want = str(requested).strip().lower() if requested is not None else None
    if want in (None, '', '1', 'latest'):
        if s_max is None:
            return None
        best = min(c_max, s_max)
        if s_min is not None and best < s_min:
            raise exceptions.UnsupportedVersion(
                'The Ferry API supports microversions %s to %s; this client knows %s to %s: '
                'upgrade the client' % (server_min, server_max, MIN_API_VERSION, MAX_API_VERSION))
        return _fmt(best)
    v = parse_version(want)
    if v is None or v[0] != 1:
        raise exceptions.UnsupportedVersion(
            'Invalid container-migration API version "%s": give 1.N (%s to %s), 1 or latest'
            % (requested, MIN_API_VERSION, MAX_API_VERSION))
    # A given 1.N beyond what this client knows is still sent: the server decides (a 406
    # naming its range when it lacks it), and the client shows the fields it gets.
    if s_max is None:
        if v != (1, 0):
            raise exceptions.UnsupportedVersion(
                'The Ferry API has no microversions (only 1.0), not %s' % _fmt(v))
        return None
    if v > s_max or (s_min is not None and v < s_min):
        raise exceptions.UnsupportedVersion(
            'The Ferry API cannot give version %s: it supports %s to %s'
            % (_fmt(v), server_min, server_max))
    return _fmt(v)


def _explicit(requested):
    return str(requested or '').strip().lower() not in ('', '1', 'latest')


def _reason(exc):
    m = re.search(r'\[Errno -?\d+\] ([^\'")]+)', str(exc))
    return m.group(1).strip().lower() if m else ' '.join(str(exc).split())[:200]


class Client(object):
    """``api_version``: the microversion to ask for (1.N); None, '1' or 'latest' negotiate the
    highest this client and the server both know (from the server's version document, on
    first use)."""

    def __init__(self, session, service_type=SERVICE_TYPE, interface=None,
                 region_name=None, endpoint_override=None, user_agent=None,
                 api_version=None):
        self.region_name = region_name
        self.interface = interface
        self.requested_api_version = api_version
        self._api_version = None
        self._negotiated = False
        self.http = adapter.Adapter(
            session,
            service_type=service_type,
            interface=interface,
            region_name=region_name,
            endpoint_override=endpoint_override,
            user_agent=user_agent or 'python-ferryclient',
        )

    # -- transport ---------------------------------------------------------

    @property
    def api_version(self):
        """The microversion every request carries (None: no header, the server's 1.0)."""
        if not self._negotiated and _explicit(self.requested_api_version):
            # A given 1.N is sent as it is (no discovery round trip); a server without it
            # answers 406 naming its range.
            self._api_version = negotiate(self.requested_api_version, None, '1.999999')
            self._negotiated = True
        if not self._negotiated:
            doc = self._send('GET', '/') or {}
            version = doc.get('version') if isinstance(doc, dict) else None
            version = version if isinstance(version, dict) else {}
            self._api_version = negotiate(self.requested_api_version,
                                          version.get('min_version'), version.get('version'))
            self._negotiated = True
        return self._api_version

    def _request(self, method, path, **kwargs):
        version = self.api_version
        if version:
            kwargs.setdefault('headers', {})[API_VERSION_HEADER] = '%s %s' % (SERVICE_TYPE, version)
        return self._send(method, path, **kwargs)

    def _send(self, method, path, **kwargs):
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
            # Everything shown comes through here: no tenant's name reaches the terminal raw.
            return clean(resp.json())
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
        """Every container on every host, following the API's `next` links."""
        out, params = [], {}
        while True:
            body = self._request('GET', '/containers', params=params)
            out.extend(body['containers'])
            marker = _next_marker(body.get('containers_links'))
            if not marker:
                return out
            params = {'marker': marker}

    def migrate(self, container, host=None, post_copy=None):
        """Ask for a live migration; ``post_copy=True`` moves the memory after the target runs
        the container (409 Conflict with the reason when a host cannot or may not)."""
        body = {'host': host} if host else {}
        if post_copy is not None:
            body['post_copy'] = bool(post_copy)
        return self._request('POST', '/containers/%s/migrate' % self._q(container),
                             json=body)['migration']

    def list_migrations(self, container=None, status=None, source_host=None,
                        dest_host=None, **paging):
        """Every migration that matches, following the API's `next` links.

        ``paging`` takes the keywords of list_migrations_page (``limit`` is then
        the size of each page, ``marker`` where to start).
        """
        out = []
        marker = paging.pop('marker', None)
        while True:
            page, marker = self.list_migrations_page(
                container=container, status=status, source_host=source_host,
                dest_host=dest_host, marker=marker, **paging)
            out.extend(page)
            if not marker:
                return out

    def list_migrations_page(self, container=None, status=None, source_host=None,
                             dest_host=None, user_id=None, project_id=None,
                             changes_since=None, changes_before=None, sort_key=None,
                             sort_dir=None, limit=None, marker=None):
        """One page of migrations: (migrations, marker of the next page or None)."""
        params = {k: v for k, v in (('container', container), ('status', status),
                                    ('source_host', source_host),
                                    ('dest_host', dest_host), ('user_id', user_id),
                                    ('project_id', project_id),
                                    ('changes-since', changes_since),
                                    ('changes-before', changes_before),
                                    ('sort_key', sort_key), ('sort_dir', sort_dir),
                                    ('limit', limit), ('marker', marker))
                  if v is not None and v != ''}
        body = self._request('GET', '/migrations', params=params)
        return body['migrations'], _next_marker(body.get('migrations_links'))

    def get_migration(self, uuid):
        return self._request('GET', '/migrations/%s' % self._q(uuid))['migration']

    def abort_migration(self, uuid):
        body = self._request('DELETE', '/migrations/%s' % self._q(uuid))
        return body.get('migration') if isinstance(body, dict) else None

    def force_complete_migration(self, uuid):
        """Nova's force-complete: switch a migration not yet frozen to post-copy. Returns the
        record with its new ``mode``; 409 once it is frozen stop-and-copy or has ended."""
        return self._request('POST', '/migrations/%s/action' % self._q(uuid),
                             json={'force_complete': None})['migration']

    # -- host maintenance --------------------------------------------------

    def set_host(self, host, status, disabled_reason=None):
        """Enable or disable a compute host (``status``: enabled | disabled)."""
        body = {'status': status}
        if disabled_reason is not None:
            body['disabled_reason'] = disabled_reason
        return self._request('PUT', '/hosts/%s' % self._q(host), json=body)['host']

    def evacuate_host(self, host, target_host=None, max_parallel=None, post_copy=None):
        body = {k: v for k, v in (('target_host', target_host), ('max_parallel', max_parallel),
                                  ('post_copy', post_copy)) if v is not None}
        return self._request('POST', '/hosts/%s/evacuate' % self._q(host),
                             json=body)['evacuation']

    def get_evacuation(self, uuid):
        return self._request('GET', '/evacuations/%s' % self._q(uuid))['evacuation']

    def list_evacuations(self, host=None, limit=None):
        params = {k: v for k, v in (('host', host), ('limit', limit)) if v is not None}
        return self._request('GET', '/evacuations', params=params)['evacuations']
