"""The panel's three tabs, and the tab of a migration's details page. A failed API call shows
Ferry's message and an empty table instead of an error page."""
from django.utils.translation import gettext_lazy as _
from horizon import tabs
from horizon.utils import functions as utils

from ferry_dashboard.api import ferry
from ferry_dashboard.content.container_migrations import errors
from ferry_dashboard.content.container_migrations import tables

SCOPE = tables.POLICY_SCOPE


class HostsTab(tabs.TableTab):
    name = _('Hosts')
    slug = 'hosts'
    table_classes = (tables.HostsTable,)
    template_name = 'horizon/common/_detail_table.html'
    policy_rules = ((SCOPE, 'ferry:host:get_all'),)
    preload = False

    def get_hosts_data(self):
        try:
            return ferry.host_list(self.request)
        except Exception:
            errors.handle(self.request, _('Unable to list the compute hosts.'))
            return []


class ContainersTab(tabs.TableTab):
    name = _('Containers')
    slug = 'containers'
    table_classes = (tables.ContainersTable,)
    template_name = 'horizon/common/_detail_table.html'
    policy_rules = ((SCOPE, 'ferry:container:get_all'),)
    preload = False

    def get_containers_data(self):
        try:
            return sorted(ferry.container_list(self.request), key=lambda c: (c.host, c.name))
        except Exception:
            errors.handle(self.request, _('Unable to list the containers.'))
            return []


class MigrationsTab(tabs.TableTab):
    name = _('Migrations')
    slug = 'migrations'
    table_classes = (tables.MigrationsTable,)
    template_name = 'horizon/common/_detail_table.html'
    policy_rules = ((SCOPE, 'ferry:migration:get_all'),)
    preload = False

    def get_migrations_data(self):
        """One page (the user's page size), newest first; Ferry's `next` link gives the
        marker of the following page (Horizon's "Next" link)."""
        marker = self.request.GET.get(tables.MigrationsTable._meta.pagination_param)
        self._has_more = False
        try:
            page, next_marker = ferry.migration_page(
                self.request, marker=marker, limit=utils.get_page_size(self.request))
        except Exception:
            errors.handle(self.request, _('Unable to list the migrations.'))
            return []
        self._has_more = next_marker is not None
        return page

    def has_more_data(self, table):
        return getattr(self, '_has_more', False)


class ContainerMigrationTabs(tabs.TabGroup):
    slug = 'container_migration_tabs'
    tabs = (HostsTab, ContainersTab, MigrationsTab)
    sticky = True

    def get_selected_tab(self):
        # The Migrations table's "Next" link carries only its marker: open that tab.
        if self.request.GET.get(tables.MigrationsTable._meta.pagination_param):
            self._selected = self.get_tab(MigrationsTab.slug)
            return self._selected
        return super(ContainerMigrationTabs, self).get_selected_tab()


class MigrationOverviewTab(tabs.Tab):
    name = _('Overview')
    slug = 'overview'
    template_name = 'container_migrations/_detail_overview.html'

    def get_context_data(self, request):
        return {'migration': self.tab_group.kwargs['migration']}


class MigrationDetailTabs(tabs.DetailTabsGroup):
    slug = 'migration_details'
    tabs = (MigrationOverviewTab,)
