"""The Container Migrations panel: shown to admins when Ferry is in the service catalog."""
from django.utils.translation import gettext_lazy as _
import horizon


class ContainerMigrations(horizon.Panel):
    name = _('Container Migrations')
    slug = 'container_migrations'
    permissions = ('openstack.services.container-migration',)
    policy_rules = (('container-migration', 'ferry:migration:get_all'),)
