"""``openstack container migrate`` and ``openstack container migration list|show|abort|force
complete``."""
import argparse
import logging
import sys

from osc_lib.command import command
from osc_lib import exceptions as osc_exc

from ferryclient import exceptions
from ferryclient import progress

LOG = logging.getLogger(__name__)

STATUSES = ('accepted', 'pre-migrating', 'running', 'post-migrating', 'completed',
            'failed', 'cancelled', 'error')
SORT_KEYS = ('created_at', 'updated_at', 'status', 'container_name', 'container_id',
             'source_host', 'dest_host', 'uuid')
# Rows `migration list` shows when no --limit is given: one screenful, not thousands.
DEFAULT_LIMIT = 50

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
    ('Mode', 'mode'),
    ('Container ID', 'container_id'),
    ('Checkpoint (ms)', 'checkpoint_ms'),
    ('Transfer (ms)', 'transfer_ms'),
    ('Restore (ms)', 'restore_ms'),
    ('Total (ms)', 'total_ms'),
    ('Memory Bytes', 'memory_bytes'),
    ('Total Memory Bytes', 'memory_total_bytes'),
    ('Processed Memory Bytes', 'memory_processed_bytes'),
    ('Remaining Memory Bytes', 'memory_remaining_bytes'),
    ('Rootfs Bytes', 'rootfs_bytes'),
    ('Disk Rounds', 'disk_rounds'),
    ('Disk Live Bytes', 'disk_live_bytes'),
    ('Disk Frozen Bytes', 'disk_frozen_bytes'),
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
    """One line about a finished migration, with the downtime and how its memory moved."""
    def secs(ms):
        return '%.2f s' % (ms / 1000.0) if isinstance(ms, (int, float)) else 'n/a'
    down = m.get('freeze_ms')
    line = 'Migration %s of %s %s: %s -> %s' % (
        m.get('uuid'), m.get('container_name') or m.get('container_id'), m.get('status'),
        m.get('source_host'), m.get('dest_host') or '?')
    if m.get('status') == 'completed':
        line += ' in %s, downtime %s' % (
            secs(m.get('total_ms')), '%d ms' % down if isinstance(down, (int, float)) else 'n/a')
    if m.get('mode'):
        line += ', mode %s' % m['mode']
    if progress.disk(m):
        line += ', %s' % progress.disk(m)
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
        parser.add_argument('--post-copy', action='store_true', default=False,
                            help='Move the memory after the target runs the container: the '
                                 'downtime no longer grows with memory, but if the source '
                                 'fails before every page arrived the container is lost. '
                                 'Refused (with the reason) unless both hosts can and may')
        parser.add_argument('--wait', action='store_true',
                            help='Wait for the migration to end, showing its phase, the '
                                 'memory moved and its mode on stderr; exit non-zero unless '
                                 'it completed')
        parser.add_argument('--timeout', metavar='<seconds>', type=float, default=900,
                            help='With --wait: give up waiting after this many seconds '
                                 '(default 900; the migration itself goes on)')
        parser.add_argument('--poll-interval', metavar='<seconds>', type=float, default=0.5,
                            help=argparse.SUPPRESS)
        return parser

    def take_action(self, parsed_args):
        client = _client(self)
        self._failed = False
        m = _api(client.migrate, parsed_args.container, host=parsed_args.host,
                 post_copy=True if parsed_args.post_copy else None)
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
        parser.add_argument('--user', metavar='<user-id>',
                            help='Only migrations requested by this user (ID)')
        parser.add_argument('--project', metavar='<project-id>',
                            help='Only migrations of this project (ID; admin only for '
                                 'another project than your own)')
        parser.add_argument('--changes-since', metavar='<changes-since>',
                            help='Only migrations changed at or after this time '
                                 '(ISO 8601, e.g. 2026-11-30T06:00:00Z)')
        parser.add_argument('--changes-before', metavar='<changes-before>',
                            help='Only migrations changed at or before this time (ISO 8601)')
        parser.add_argument('--sort', metavar='<key>[:<asc|desc>]',
                            help='Sort by this field (%s), descending unless :asc is '
                                 'given (default created_at:desc, newest first)'
                                 % ', '.join(SORT_KEYS))
        parser.add_argument('--limit', metavar='<num-migrations>', type=int,
                            default=DEFAULT_LIMIT,
                            help='Show at most this many migrations (default %d); '
                                 '-1 shows them all' % DEFAULT_LIMIT)
        parser.add_argument('--marker', metavar='<uuid>',
                            help='Start after this migration (the last UUID shown by the '
                                 'previous page)')
        parser.add_argument('--long', action='store_true', default=False,
                            help='List the mode, timings, byte counters and errors too')
        return parser

    def take_action(self, parsed_args):
        limit = parsed_args.limit
        if limit is None or (limit < 1 and limit != -1):
            raise osc_exc.CommandError('--limit must be a positive number, or -1 for all '
                                       'migrations')
        sort_key = sort_dir = None
        if parsed_args.sort:
            sort_key, _, sort_dir = parsed_args.sort.partition(':')
            sort_dir = sort_dir or 'desc'
            if sort_key not in SORT_KEYS or sort_dir not in ('asc', 'desc'):
                raise osc_exc.CommandError('--sort must be <key>[:asc|desc] with a key among '
                                           '%s' % ', '.join(SORT_KEYS))
        client = _client(self)
        query = dict(container=parsed_args.container, status=parsed_args.status,
                     source_host=parsed_args.source_host, dest_host=parsed_args.dest_host,
                     user_id=parsed_args.user, project_id=parsed_args.project,
                     changes_since=parsed_args.changes_since,
                     changes_before=parsed_args.changes_before,
                     sort_key=sort_key, sort_dir=sort_dir, marker=parsed_args.marker)
        if limit == -1:
            migrations = _api(client.list_migrations, **query)
        else:
            migrations, more = _api(client.list_migrations_page, limit=limit, **query)
            if more:
                sys.stderr.write('More migrations exist: continue with --marker %s (or '
                                 '--limit -1 for all)\n' % more)
        cols = LIST_COLUMNS + (LONG_COLUMNS if parsed_args.long else ())
        return (tuple(h for h, _ in cols),
                (tuple(m.get(f) for _, f in cols) for m in migrations))


class ShowMigration(command.ShowOne):
    _description = ('Show a container migration: status, phase, mode, timings and byte '
                    'counters (memory total, processed and remaining)')

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


class ForceCompleteMigration(command.Command):
    _description = ('Force a running container migration to complete (as Nova\'s): one not yet '
                    'frozen switches to post-copy, so it no longer waits for its memory to be '
                    'copied. Refused once it is frozen stop-and-copy, or has ended')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('migration', metavar='<uuid>', help='Migration UUID')
        return parser

    def take_action(self, parsed_args):
        m = _api(_client(self).force_complete_migration, parsed_args.migration)
        self.app.stdout.write('Migration %s of %s is %s, mode %s\n' % (
            m.get('uuid') or parsed_args.migration,
            m.get('container_name') or m.get('container_id') or '?',
            progress.describe(m), m.get('mode') or 'unknown'))
