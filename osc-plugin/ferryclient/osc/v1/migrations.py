"""``openstack container migrate`` and ``openstack container migration list|show|abort``."""
import argparse
import logging
import sys

from osc_lib.command import command
from osc_lib import exceptions as osc_exc

from ferryclient import exceptions
from ferryclient import progress

LOG = logging.getLogger(__name__)

STATUSES = ('accepted', 'pre-migrating', 'running', 'post-migrating', 'completed',
            'failed', 'cancelled')

# (header, field) pairs of `migration list`; the --long ones follow.
LIST_COLUMNS = (
    ('UUID', 'uuid'),
    ('Container', 'container_name'),
    ('Source Host', 'source_host'),
    ('Dest Host', 'dest_host'),
    ('Status', 'status'),
    ('Phase', 'phase'),
    ('Progress', 'progress'),
    ('Downtime (ms)', 'freeze_ms'),
    ('Created At', 'created_at'),
)
LONG_COLUMNS = (
    ('Container ID', 'container_id'),
    ('Checkpoint (ms)', 'checkpoint_ms'),
    ('Transfer (ms)', 'transfer_ms'),
    ('Restore (ms)', 'restore_ms'),
    ('Total (ms)', 'total_ms'),
    ('Memory Bytes', 'memory_bytes'),
    ('Rootfs Bytes', 'rootfs_bytes'),
    ('Transferred Bytes', 'transferred_bytes'),
    ('Connections Preserved', 'connections_preserved'),
    ('Error', 'error'),
    ('Updated At', 'updated_at'),
)


def _client(cmd):
    return cmd.app.client_manager.container_migration


def _show(m):
    """A migration record as ShowOne's (columns, values), fields sorted like OSC does."""
    keys = sorted(m.keys())
    return tuple(keys), tuple(m[k] for k in keys)


def _api(fn, *args, **kwargs):
    """Run one client call; API and connection errors become one-line CommandErrors."""
    try:
        return fn(*args, **kwargs)
    except exceptions.ClientException as e:
        raise osc_exc.CommandError(str(e))


def summary(m):
    """One line about a finished migration, with the downtime."""
    def secs(ms):
        return '%.2f s' % (ms / 1000.0) if isinstance(ms, (int, float)) else 'n/a'
    down = m.get('freeze_ms')
    line = 'Migration %s of %s %s: %s -> %s' % (
        m.get('uuid'), m.get('container_name') or m.get('container_id'), m.get('status'),
        m.get('source_host'), m.get('dest_host') or '?')
    if m.get('status') == 'completed':
        line += ' in %s, downtime %s' % (
            secs(m.get('total_ms')), '%d ms' % down if isinstance(down, (int, float)) else 'n/a')
    if m.get('error'):
        line += ': %s' % ' '.join(str(m['error']).split())
    return line


class MigrateContainer(command.ShowOne):
    _description = 'Live-migrate a running container to another compute host'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('container', metavar='<container>',
                            help='Container to migrate (name or ID)')
        parser.add_argument('--host', metavar='<host>',
                            help='Target compute host (default: the scheduler picks one)')
        parser.add_argument('--wait', action='store_true',
                            help='Wait for the migration to end, showing its phase and '
                                 'progress on stderr; exit non-zero unless it completed')
        parser.add_argument('--timeout', metavar='<seconds>', type=float, default=900,
                            help='With --wait: give up waiting after this many seconds '
                                 '(default 900; the migration itself goes on)')
        parser.add_argument('--poll-interval', metavar='<seconds>', type=float, default=0.5,
                            help=argparse.SUPPRESS)
        return parser

    def take_action(self, parsed_args):
        client = _client(self)
        self._failed = False
        m = _api(client.migrate, parsed_args.container, host=parsed_args.host)
        if parsed_args.wait:
            printer = progress.ProgressPrinter(sys.stderr)
            try:
                m = _api(progress.wait_for_migration, client.get_migration, m['uuid'],
                         printer=printer, interval=parsed_args.poll_interval,
                         timeout=parsed_args.timeout, first=m)
            except progress.WaitTimeout as e:
                raise osc_exc.CommandError(str(e))
            except KeyboardInterrupt:
                raise osc_exc.CommandError(
                    'Stopped waiting; migration %s goes on (abort it with: openstack '
                    'container migration abort %s)' % (m['uuid'], m['uuid']))
            sys.stderr.write(summary(m) + '\n')
            self._failed = m.get('status') != 'completed'
        return _show(m)

    def run(self, parsed_args):
        rc = super().run(parsed_args)
        return rc or (1 if getattr(self, '_failed', False) else 0)


class ListMigration(command.Lister):
    _description = 'List container migrations'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--container', metavar='<container>',
                            help='Only migrations of this container (name or ID)')
        parser.add_argument('--status', metavar='<status>', choices=STATUSES,
                            help='Only migrations in this status (%s)' % ', '.join(STATUSES))
        parser.add_argument('--source-host', metavar='<host>',
                            help='Only migrations from this host')
        parser.add_argument('--dest-host', metavar='<host>',
                            help='Only migrations to this host')
        parser.add_argument('--long', action='store_true', default=False,
                            help='List timings, byte counters and errors too')
        return parser

    def take_action(self, parsed_args):
        migrations = _api(_client(self).list_migrations, container=parsed_args.container,
                          status=parsed_args.status, source_host=parsed_args.source_host,
                          dest_host=parsed_args.dest_host)
        cols = LIST_COLUMNS + (LONG_COLUMNS if parsed_args.long else ())
        return (tuple(h for h, _ in cols),
                (tuple(m.get(f) for _, f in cols) for m in migrations))


class ShowMigration(command.ShowOne):
    _description = 'Show a container migration: status, phase, timings and byte counters'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='<uuid>', help='Migration UUID')
        return parser

    def take_action(self, parsed_args):
        return _show(_api(_client(self).get_migration, parsed_args.migration))


class AbortMigration(command.Command):
    _description = ('Abort a container migration: before the freeze it is cancelled, '
                    'after it the container is rolled back to its source host')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='<uuid>', help='Migration UUID')
        return parser

    def take_action(self, parsed_args):
        m = _api(_client(self).abort_migration, parsed_args.migration)
        LOG.info('Abort of migration %s requested (status %s)', parsed_args.migration,
                 (m or {}).get('status'))
