"""``openstack container host list``: the compute hosts Ferry knows from heartbeats."""
from osc_lib.command import command

from ferryclient.osc.v1.migrations import _api, _client

COLUMNS = (
    ('Name', 'name'),
    ('State', 'state'),
    ('Docker Version', 'docker_version'),
    ('CRIU Version', 'criu_version'),
    ('Containers', 'containers'),
    ('Updated At', 'updated_at'),
)
LONG_COLUMNS = (
    ('CRIU OK', 'criu_ok'),
    ('Architecture', 'architecture'),
    ('Migration Address', 'migration_address'),
)


class ListHost(command.Lister):
    _description = 'List the compute hosts that can run and receive migrating containers'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--long', action='store_true', default=False,
                            help='List CRIU check result, architecture and data address too')
        return parser

    def take_action(self, parsed_args):
        hosts = _api(_client(self).list_hosts)
        cols = COLUMNS + (LONG_COLUMNS if parsed_args.long else ())
        return (tuple(h for h, _ in cols),
                (tuple(x.get(f) for _, f in cols) for x in hosts))
