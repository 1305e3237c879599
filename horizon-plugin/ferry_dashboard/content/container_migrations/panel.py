"""The Container Migrations panel: shown to admins when Ferry is in the service catalog."""
from django.utils.translation import gettext_lazy as _
import horizon


class ContainerMigrations(horizon.Panel):
    name = _('Container Migrations')
    slug = 'container_migrations'
    permissions = ('openstack.services.container-migration',)
    # The panel lives in the Admin dashboard (hosts, evacuations, any project's migrations): it is
    # for operators. Project readers may read their own migrations (ferry:migration:get_all) through
    # the API and CLI, but that rule alone must not open the Admin dashboard to them.
    policy_rules = (('container-migration', 'ferry:host:get_all'),)
