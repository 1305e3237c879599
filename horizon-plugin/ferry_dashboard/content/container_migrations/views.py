"""The panel's views: the tabbed index, the Live Migrate modal and a migration's details."""
from django.urls import reverse
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from horizon import forms
from horizon import messages
from horizon import tabs

from ferry_dashboard.api import ferry
from ferry_dashboard.content.container_migrations import errors
from ferry_dashboard.content.container_migrations import forms as migrate_forms
from ferry_dashboard.content.container_migrations import tabs as migration_tabs

INDEX_URL = 'horizon:admin:container_migrations:index'
MIGRATIONS_TAB = 'container_migration_tabs__migrations'


class IndexView(tabs.TabbedTableView):
    tab_group_class = migration_tabs.ContainerMigrationTabs
    template_name = 'container_migrations/index.html'
    page_title = _('Container Migrations')


class MigrateView(forms.ModalFormView):
    form_class = migrate_forms.LiveMigrateForm
    template_name = 'container_migrations/migrate.html'
    modal_id = 'live_migrate_modal'
    modal_header = _('Live Migrate Container')
    submit_label = _('Live Migrate')
    submit_url = 'horizon:admin:container_migrations:migrate'
    page_title = _('Live Migrate Container')

    def get_success_url(self):
        return reverse(INDEX_URL) + '?tab=' + MIGRATIONS_TAB

    def _container(self):
        """The container the form is for, from Ferry's list; back to the panel with a
        message when Ferry cannot list it."""
        cid = self.kwargs['container_id']
        try:
            found = [c for c in ferry.container_list(self.request)
                     if c.id == cid or c.name == cid]
        except Exception:
            errors.handle(self.request, _('Unable to list the containers.'),
                              redirect=reverse(INDEX_URL))
        if not found:
            messages.error(self.request, _('No container %s on any compute host.') % cid)
            raise exceptions.Http302(reverse(INDEX_URL))
        return found[0]

    def get_context_data(self, **kwargs):
        context = super(MigrateView, self).get_context_data(**kwargs)
        context['submit_url'] = reverse(self.submit_url, args=[self.kwargs['container_id']])
        context['cancel_url'] = reverse(INDEX_URL) + '?tab=container_migration_tabs__containers'
        return context

    def get_initial(self):
        if self.request.method == 'POST':
            # The form carries the container; Ferry itself says if it is gone by now.
            return {'container_id': self.kwargs['container_id']}
        c = self._container()
        return {'container_id': c.id, 'container_name': c.name, 'current_host': c.host}


class EvacuateView(forms.ModalFormView):
    form_class = migrate_forms.EvacuateHostForm
    template_name = 'container_migrations/evacuate.html'
    modal_id = 'evacuate_host_modal'
    modal_header = _('Migrate All Off This Host')
    submit_label = _('Migrate All')
    submit_url = 'horizon:admin:container_migrations:evacuate'
    page_title = _('Migrate All Off This Host')

    def get_success_url(self):
        return reverse(INDEX_URL) + '?tab=' + MIGRATIONS_TAB

    def get_context_data(self, **kwargs):
        context = super(EvacuateView, self).get_context_data(**kwargs)
        context['submit_url'] = reverse(self.submit_url, args=[self.kwargs['host']])
        context['cancel_url'] = reverse(INDEX_URL) + '?tab=container_migration_tabs__hosts'
        return context

    def get_initial(self):
        return {'host': self.kwargs['host'], 'max_parallel': 2}


class DetailView(tabs.TabView):
    tab_group_class = migration_tabs.MigrationDetailTabs
    template_name = 'horizon/common/_detail.html'
    page_title = _('Migration {{ migration.uuid }}')

    def get_migration(self):
        try:
            return ferry.migration_get(self.request, self.kwargs['migration_id'])
        except Exception:
            errors.handle(self.request, _('Unable to show the migration.'),
                              redirect=reverse_lazy(INDEX_URL))

    def get_context_data(self, **kwargs):
        context = super(DetailView, self).get_context_data(**kwargs)
        context['migration'] = self._migration
        context['url'] = reverse(INDEX_URL) + '?tab=' + MIGRATIONS_TAB
        return context

    def get_tabs(self, request, *args, **kwargs):
        self._migration = self.get_migration()
        return self.tab_group_class(request, migration=self._migration, **kwargs)
