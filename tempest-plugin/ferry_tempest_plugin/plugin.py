"""The tempest.test_plugins entry point: where Ferry's tests are, its config groups, and its
service client (registered so tests get it as ``self.os_admin.container_migration``)."""
import os

from tempest import config
from tempest.test_discover import plugins

from ferry_tempest_plugin import config as ferry_config


class FerryTempestPlugin(plugins.TempestPlugin):
    def load_tests(self):
        base_path = os.path.split(os.path.dirname(os.path.abspath(__file__)))[0]
        test_dir = os.path.join(base_path, 'ferry_tempest_plugin', 'tests')
        return test_dir, base_path

    def register_opts(self, conf):
        config.register_opt_group(conf, config.service_available_group,
                                  ferry_config.service_available_opts)
        config.register_opt_group(conf, ferry_config.container_migration_group,
                                  ferry_config.container_migration_opts)

    def get_opt_lists(self):
        return [
            (config.service_available_group.name, ferry_config.service_available_opts),
            (ferry_config.container_migration_group.name,
             ferry_config.container_migration_opts),
        ]

    def get_service_clients(self):
        conf = config.CONF.container_migration
        return [{
            'name': 'container_migration',
            'service_version': 'container_migration.v1',
            'module_path': 'ferry_tempest_plugin.services.v1',
            'client_names': ['ContainerMigrationClient'],
            'service': conf.catalog_type,
            'endpoint_type': conf.endpoint_type,
            'region': conf.region or config.CONF.identity.region,
            'build_timeout': conf.build_timeout,
            'build_interval': conf.build_interval,
        }]
