"""Ferry's REST API for a dashboard request: Ferry's Python client (ferryclient, from
osc-plugin/) on a keystoneauth session that carries the logged-in user's token, with the
endpoint taken from the user's service catalog (type container-migration)."""
from django.conf import settings
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from openstack_dashboard.api import base

from ferryclient.v1 import client as ferry_client

SERVICE_TYPE = ferry_client.SERVICE_TYPE
# The API microversion the dashboard was written for (paging, host maintenance, memory
# counters, post-copy, disk pre-copy counters); sent on every call, so a newer server answers
# as this one expects.
API_VERSION = '1.5'
# Statuses in which a migration can still be aborted: the restore on the target has not begun.
ABORTABLE_STATUSES = ('accepted', 'pre-migrating', 'running')
FINAL_STATUSES = ('completed', 'failed', 'cancelled', 'error')


class Record(object):
    """A dict from the API with attribute access, as Horizon's tables expect."""

    def __init__(self, data, id_field):
        self._data = dict(data)
        self.id = data[id_field]

    def __getattr__(self, name):
        try:
            return self.__dict__['_data'][name]
        except KeyError:
            raise AttributeError(name)

    def to_dict(self):
        return dict(self._data)


def endpoint(request):
    return base.url_for(request, SERVICE_TYPE)


def client(request):
    url = endpoint(request)
    verify = not getattr(settings, 'OPENSTACK_SSL_NO_VERIFY', False)
    cacert = getattr(settings, 'OPENSTACK_SSL_CACERT', None)
    sess = ks_session.Session(auth=token_endpoint.Token(url, request.user.token.id),
                              verify=cacert if (verify and cacert) else verify)
    return ferry_client.Client(sess, endpoint_override=url, user_agent='ferry-dashboard',
                               api_version=API_VERSION)


def host_list(request):
    return [Record(h, 'name') for h in client(request).list_hosts()]


def container_list(request):
    return [Record(c, 'id') for c in client(request).list_containers()]


def migration_page(request, marker=None, limit=None, **filters):
    """One page of migrations, newest first: (records, marker of the next page or None)."""
    items, next_marker = client(request).list_migrations_page(
        marker=marker, limit=limit, sort_key='created_at', sort_dir='desc', **filters)
    return [Record(m, 'uuid') for m in items], next_marker


def migration_get(request, uuid):
    return Record(client(request).get_migration(uuid), 'uuid')


def migrate(request, container, host=None):
    return Record(client(request).migrate(container, host=host or None), 'uuid')


def migration_abort(request, uuid):
    return client(request).abort_migration(uuid)


def host_evacuate(request, host, target_host=None, max_parallel=None):
    """Live-migrate every running container off host (the host is disabled first)."""
    return Record(client(request).evacuate_host(host, target_host=target_host or None,
                                                max_parallel=max_parallel), 'uuid')


def host_set_status(request, host, status, disabled_reason=None):
    return Record(client(request).set_host(host, status, disabled_reason=disabled_reason),
                  'name')
