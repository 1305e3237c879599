"""The panel's tables: hosts, containers (Live Migrate, one or many) and migrations (rows in
progress refresh themselves until final; Abort while abortable). Actions carry Ferry's policy
rules, so Horizon hides what Ferry would refuse; Ferry's error text becomes a message."""
from django.template import defaultfilters
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import messages
from horizon import tables
from horizon.utils import filters

from ferryclient import exceptions as ferry_exc
from ferry_dashboard.api import ferry

POLICY_SCOPE = 'container-migration'


def _ago(text):
    return _('%s ago') % text


def _ferry_call(request, fn, *args, **kwargs):
    """Run an API call; Ferry's own error text becomes a Horizon message, then the error goes
    on to the batch action, which adds its summary ("Unable to ...")."""
    try:
        return fn(request, *args, **kwargs)
    except ferry_exc.ClientException as e:
        messages.error(request, str(e))
        raise


def _scheduling(host):
    """enabled, or disabled with the operator's reason (hosts Ferry's scheduler skips)."""
    data = host.to_dict()
    status = data.get('status') or _('enabled')
    reason = data.get('disabled_reason')
    return '%s (%s)' % (status, reason) if reason else status


def _host_status(host):
    return host.to_dict().get('status', 'enabled')


class EvacuateHost(tables.LinkAction):
    """Migrate all off this host: Ferry disables it, then live-migrates each running
    container to another enabled host."""
    name = 'evacuate'
    verbose_name = _('Migrate All Off This Host')
    url = 'horizon:admin:container_migrations:evacuate'
    classes = ('ajax-modal', 'btn-evacuate')
    icon = 'sign-out'
    policy_rules = ((POLICY_SCOPE, 'ferry:host:evacuate'),)

    def allowed(self, request, host=None):
        return host is None or (host.state == 'up' and host.containers > 0)

    def get_link_url(self, datum):
        return reverse(self.url, args=[datum.name])


class EnableHost(tables.BatchAction):
    """Let the scheduler pick the host again (after an evacuation or a maintenance)."""
    name = 'enable'
    icon = 'check'
    policy_rules = ((POLICY_SCOPE, 'ferry:host:update'),)

    @staticmethod
    def action_present(count):
        return ngettext_lazy('Enable Host', 'Enable Hosts', count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy('Enabled host', 'Enabled hosts', count)

    def allowed(self, request, host=None):
        return host is None or _host_status(host) == 'disabled'

    def action(self, request, obj_id):
        _ferry_call(request, ferry.host_set_status, obj_id, 'enabled')


class DisableHost(tables.BatchAction):
    """Keep new migrations off the host (the scheduler skips it; what runs there stays)."""
    name = 'disable'
    icon = 'ban'
    action_type = 'danger'
    policy_rules = ((POLICY_SCOPE, 'ferry:host:update'),)
    help_text = _('The scheduler stops choosing the host; containers on it keep running.')

    @staticmethod
    def action_present(count):
        return ngettext_lazy('Disable Host', 'Disable Hosts', count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy('Disabled host', 'Disabled hosts', count)

    def allowed(self, request, host=None):
        return host is None or _host_status(host) != 'disabled'

    def action(self, request, obj_id):
        _ferry_call(request, ferry.host_set_status, obj_id, 'disabled',
                    'disabled from the dashboard by %s' % request.user.username)


class HostsTable(tables.DataTable):
    name = tables.Column('name', verbose_name=_('Name'))
    state = tables.Column('state', verbose_name=_('State'),
                          status=True, status_choices=(('up', True), ('down', False)))
    scheduling = tables.Column(_scheduling, verbose_name=_('Scheduling'))
    docker_version = tables.Column('docker_version', verbose_name=_('Docker Version'))
    criu_version = tables.Column('criu_version', verbose_name=_('CRIU Version'))
    containers = tables.Column('containers', verbose_name=_('Containers'))
    updated_at = tables.Column('updated_at', verbose_name=_('Last Heartbeat'),
                               filters=(filters.parse_isotime, defaultfilters.timesince, _ago))

    class Meta(object):
        name = 'hosts'
        verbose_name = _('Compute Hosts')
        # The first allowed one is the row's button: Enable for a disabled host.
        row_actions = (EnableHost, EvacuateHost, DisableHost)


class LiveMigrate(tables.LinkAction):
    name = 'live_migrate'
    verbose_name = _('Live Migrate')
    url = 'horizon:admin:container_migrations:migrate'
    classes = ('ajax-modal', 'btn-migrate')
    icon = 'exchange'
    policy_rules = ((POLICY_SCOPE, 'ferry:migration:create'),)

    def allowed(self, request, container=None):
        return container is None or container.status == 'running'

    def get_link_url(self, datum):
        return reverse(self.url, args=[datum.id])


class LiveMigrateSelected(tables.BatchAction):
    """Several containers at once; the scheduler chooses each one's target host."""
    name = 'live_migrate_selected'
    icon = 'exchange'
    policy_rules = ((POLICY_SCOPE, 'ferry:migration:create'),)
    help_text = _('Each container moves to a host the scheduler chooses; the Migrations tab '
                  'shows how it goes.')

    @staticmethod
    def action_present(count):
        return ngettext_lazy('Live Migrate Container', 'Live Migrate Containers', count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy('Live migration requested for container',
                             'Live migrations requested for containers', count)

    def allowed(self, request, container=None):
        return container is None or container.status == 'running'

    def action(self, request, obj_id):
        _ferry_call(request, ferry.migrate, obj_id)


class ContainersTable(tables.DataTable):
    name = tables.Column('name', verbose_name=_('Name'))
    host = tables.Column('host', verbose_name=_('Host'))
    image = tables.Column('image', verbose_name=_('Image'))
    status = tables.Column('status', verbose_name=_('Status'))
    short_id = tables.Column(lambda c: c.id[:12], verbose_name=_('ID'))

    def get_object_display(self, datum):
        return datum.name

    class Meta(object):
        name = 'containers'
        verbose_name = _('Containers')
        table_actions = (LiveMigrateSelected,)
        row_actions = (LiveMigrate,)


def _abortable(m):
    return m.status in ferry.ABORTABLE_STATUSES and not getattr(m, 'abort_requested', False)


class AbortMigration(tables.BatchAction):
    name = 'abort'
    action_type = 'danger'
    icon = 'stop'
    policy_rules = ((POLICY_SCOPE, 'ferry:migration:delete'),)
    help_text = _('Before the freeze the migration is cancelled and the container keeps '
                  'running where it was; after it, the container is rolled back to its source.')

    @staticmethod
    def action_present(count):
        return ngettext_lazy('Abort Migration', 'Abort Migrations', count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy('Abort requested for migration',
                             'Abort requested for migrations', count)

    def allowed(self, request, migration=None):
        return migration is None or _abortable(migration)

    def action(self, request, obj_id):
        _ferry_call(request, ferry.migration_abort, obj_id)


class UpdateMigrationRow(tables.Row):
    ajax = True

    def get_data(self, request, migration_id):
        return ferry.migration_get(request, migration_id)


def _route(m):
    return '%s \u2192 %s' % (m.source_host, m.dest_host or _('(scheduler)'))


def _progress(m):
    return '%d%%' % (m.progress or 0)


def _downtime(m):
    return '%d ms' % m.freeze_ms if m.freeze_ms is not None else '-'


def _short_uuid(m):
    return m.uuid[:8]


MIGRATION_STATUS_CHOICES = (
    ('completed', True),
    ('failed', False),
    ('cancelled', False),
    ('error', False),
    ('accepted', None),
    ('pre-migrating', None),
    ('running', None),
    ('post-migrating', None),
)


class MigrationsTable(tables.DataTable):
    uuid = tables.Column(_short_uuid, verbose_name=_('UUID'),
                         link='horizon:admin:container_migrations:detail')
    container = tables.Column('container_name', verbose_name=_('Container'))
    route = tables.Column(_route, verbose_name=_('Source \u2192 Target'))
    status = tables.Column('status', verbose_name=_('Status'), status=True,
                           status_choices=MIGRATION_STATUS_CHOICES)
    phase = tables.Column('phase', verbose_name=_('Phase'), empty_value='-')
    progress = tables.Column(_progress, verbose_name=_('Progress'))
    downtime = tables.Column(_downtime, verbose_name=_('Downtime'))
    created_at = tables.Column('created_at', verbose_name=_('Created'),
                               filters=(filters.parse_isotime, defaultfilters.timesince, _ago))

    def get_object_display(self, datum):
        return '%s (%s)' % (datum.uuid[:8], datum.container_name)

    class Meta(object):
        name = 'migrations'
        verbose_name = _('Migrations')
        pagination_param = 'migrations_marker'
        status_columns = ['status']
        row_class = UpdateMigrationRow
        table_actions = (AbortMigration,)
        row_actions = (AbortMigration,)
