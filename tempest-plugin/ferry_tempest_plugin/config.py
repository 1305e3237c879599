"""Ferry's tempest options: ``[service_available] ferry`` and the ``[container_migration]``
group (catalog entry, timeouts, and what the scenario tests need to reach the hosts)."""
from oslo_config import cfg

service_available_opts = [
    cfg.BoolOpt('ferry', default=True,
                help='Whether Ferry (container live migration, service type '
                     'container-migration) is expected to be available.'),
]

container_migration_group = cfg.OptGroup(
    name='container_migration', title='Container live migration (Ferry) options')

container_migration_opts = [
    cfg.StrOpt('catalog_type', default='container-migration',
               help="Ferry's service type in the Keystone catalog."),
    cfg.StrOpt('endpoint_type', default='publicURL',
               choices=['public', 'admin', 'internal', 'publicURL', 'adminURL',
                        'internalURL'],
               help='The endpoint type to use for Ferry.'),
    cfg.StrOpt('region', default='',
               help='The region of the Ferry endpoint; empty means [identity] region.'),
    cfg.IntOpt('build_timeout', default=180,
               help='Seconds to wait for a migration to reach a final status.'),
    cfg.FloatOpt('build_interval', default=0.5,
                 help='Seconds between two polls of a migration.'),
    cfg.ListOpt('hosts', default=[],
                help='The compute hosts the tests use, source first then target. Empty: '
                     'the first two hosts Ferry reports up that docker_hosts can reach.'),
    cfg.DictOpt('docker_hosts', default={},
                help='host:Docker URL of each compute host\'s engine, e.g. '
                     'compute1:unix:///run/docker.sock. The tests start their own '
                     'workloads there. Tests that need workloads skip without it.'),
    cfg.StrOpt('docker_cli', default='/usr/bin/docker',
               help='The Docker CLI used to start and inspect workloads.'),
    cfg.StrOpt('fabric_network', default='ferry-fabric',
               help='The Docker network shared by the hosts (a provider network): '
                    'workloads on it keep their address and TCP connections.'),
    cfg.StrOpt('client_netns', default='',
               help='A network namespace on the tenant network from which the scenario '
                    'tests play the tenant\'s client. Empty: scenario tests skip.'),
    cfg.StrOpt('address_range_start', default='10.250.0.150',
               help='First of the fixed addresses on fabric_network the scenario tests give '
                    'their workloads (they use the next few).'),
    cfg.StrOpt('probe_python', default='/usr/bin/python3',
               help='The Python that runs the client probes inside client_netns.'),
    cfg.StrOpt('counter_image', default='ferry/counter',
               help='An image that counts once a second and serves the count over HTTP '
                    'on port 8080.'),
    cfg.StrOpt('redis_image', default='ferry/redis', help='A Redis image (port 6379).'),
    cfg.StrOpt('stream_image', default='ferry/stream',
               help='An image that writes 1, 2, 3, ... to each TCP client on port 9000.'),
]
