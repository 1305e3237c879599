"""``openstack container host list|set|evacuate`` and ``openstack container evacuation
list|show``: the compute hosts Ferry knows from heartbeats, and their maintenance."""
import argparse
import sys
import time

from osc_lib.command import command
from osc_lib import exceptions as osc_exc

from ferryclient.osc.v1.migrations import _api, _client, _show

COLUMNS = (
    ('Name', 'name'),
    ('State', 'state'),
    ('Status', 'status'),
    ('Docker Version', 'docker_version'),
    ('CRIU Version', 'criu_version'),
    ('Containers', 'containers'),
    ('Modes', 'modes'),
    ('Updated At', 'updated_at'),
)
LONG_COLUMNS = (
    ('Disabled Reason', 'disabled_reason'),
    ('CRIU OK', 'criu_ok'),
    ('Unavailable Modes', 'unavailable_modes'),
    ('Memory Used Bytes', 'memory_used_bytes'),
    ('Memory Total Bytes', 'memory_total_bytes'),
    ('Architecture', 'architecture'),
    ('Migration Address', 'migration_address'),
)
# The ways of moving memory beyond stop-and-copy, as the API's `modes` names them.
EXTRA_MODES = (('pre-copy', 'pre_copy'), ('post-copy', 'post_copy'))
EVACUATION_COLUMNS = (
    ('UUID', 'uuid'),
    ('Host', 'host'),
    ('Target Host', 'target_host'),
    ('Status', 'status'),
    ('Max Parallel', 'max_parallel'),
    ('Containers', 'containers'),
    ('Created At', 'created_at'),
)
# What became of a container once its part of the evacuation is over.
DONE = ('completed', 'failed', 'cancelled', 'error', 'refused', 'not-moved')


def host_modes(h):
    """(the modes a host supports, why it lacks the others as 'mode: reason' lines).

    Stop-and-copy works wherever CRIU does; pre-copy and post-copy as the agent reports them
    (an agent that does not report them supports stop-and-copy only, as far as Ferry knows).
    """
    if not h.get('criu_ok'):
        why = 'CRIU does not work on this host (criu check failed)'
        return [], ['%s: %s' % (mode, why) for mode in ('stop-and-copy',) + tuple(
            m for m, _ in EXTRA_MODES)]
    have, lacking = ['stop-and-copy'], []
    modes = h.get('modes')
    for mode, key in EXTRA_MODES:
        support = (modes or {}).get(key) if isinstance(modes, dict) else None
        if isinstance(support, dict) and support.get('ok'):
            have.append(mode)
        elif isinstance(support, dict):
            lacking.append('%s: %s' % (mode, ' '.join(str(support.get('reason') or
                                                          'not supported').split())))
        else:
            lacking.append('%s: not reported by the host\'s agent (an older one?)' % mode)
    return have, lacking


def _host_row(h, cols):
    have, lacking = host_modes(h)
    shown = dict(h, modes=', '.join(have) or 'none', unavailable_modes='\n'.join(lacking))
    return tuple(shown.get(f) for _, f in cols)


class ListHost(command.Lister):
    _description = 'List the compute hosts that can run and receive migrating containers'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--long', action='store_true', default=False,
                            help='List the disabled reason, CRIU check result, why modes '
                                 'are unavailable, memory, architecture and data address too')
        return parser

    def take_action(self, parsed_args):
        hosts = _api(_client(self).list_hosts)
        cols = COLUMNS + (LONG_COLUMNS if parsed_args.long else ())
        return (tuple(h for h, _ in cols),
                (_host_row(x, cols) for x in hosts))


class SetHost(command.Command):
    _description = ('Enable or disable a compute host: the scheduler never chooses a '
                    'disabled host as a migration target')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('host', metavar='<host>', help='Compute host name')
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument('--enable', action='store_true', help='Enable the host')
        group.add_argument('--disable', action='store_true', help='Disable the host')
        parser.add_argument('--disable-reason', metavar='<reason>',
                            help='Why the host is disabled (with --disable)')
        return parser

    def take_action(self, parsed_args):
        if parsed_args.disable_reason is not None and not parsed_args.disable:
            raise osc_exc.CommandError('--disable-reason goes with --disable')
        status = 'disabled' if parsed_args.disable else 'enabled'
        _api(_client(self).set_host, parsed_args.host, status,
             disabled_reason=parsed_args.disable_reason)


def _n(n, word):
    return '%d %s%s' % (n, word, '' if n == 1 else 's')


def evacuation_summary(e):
    """One line about an evacuation: its status and its containers by outcome."""
    counts = ', '.join('%d %s' % (n, s) for s, n in sorted((e.get('counts') or {}).items()) if n)
    return 'Evacuation %s of %s %s: %s' % (e.get('uuid'), e.get('host'), e.get('status'),
                                           counts or 'no containers')


def container_line(c, index, total, source, migration=None):
    """The progress line of one container whose part of the evacuation is over."""
    name = c.get('container_name') or (c.get('container_id') or '')[:12]
    head = '[%d/%d] %s' % (index, total, name)
    status = c.get('status')
    if status == 'completed':
        line = '%s  %s -> %s  completed' % (head, source, c.get('dest_host') or '?')
        down = (migration or {}).get('freeze_ms')
        if isinstance(down, (int, float)):
            line += ', downtime %d ms' % down
        return line
    reason = ' '.join(str(c.get('reason') or '').split())
    if status == 'not-moved':
        return '%s  %s' % (head, reason or 'not running, not moved')
    return '%s  %s%s' % (head, status, ': %s' % reason if reason else '')


def wait_for_evacuation(client, e, stream, interval=1.0, timeout=None,
                        clock=time.monotonic, sleep=time.sleep):
    """Follow an evacuation to its end, writing one line per container as its outcome is
    known (containers already done at the start included); returns the final record."""
    start = clock()
    shown = set()
    total = len(e.get('containers') or [])
    while True:
        for c in e.get('containers') or []:
            key = c.get('container_id')
            if key in shown or c.get('status') not in DONE:
                continue
            shown.add(key)
            m = None
            if c.get('status') == 'completed' and c.get('migration_uuid'):
                try:
                    m = client.get_migration(c['migration_uuid'])
                except Exception:  # the line is shown without the downtime
                    m = None
            stream.write(container_line(c, len(shown), total, e.get('host'), m) + '\n')
            stream.flush()
        if e.get('status') != 'running':
            return e
        if timeout is not None and clock() - start > timeout:
            raise osc_exc.CommandError(
                'Evacuation %s is still running after %ss; it goes on (see: openstack '
                'container evacuation show %s)' % (e['uuid'], timeout, e['uuid']))
        sleep(interval)
        e = client.get_evacuation(e['uuid'])


def _evacuation_show(e):
    """An evacuation as ShowOne's columns: its fields, the counts, one row per container."""
    out = dict(e)
    out['counts'] = ', '.join('%s=%d' % (s, n) for s, n in sorted((e.get('counts') or {}).items()) if n)
    out['containers'] = '\n'.join(
        '%s %s %s%s%s' % (c.get('container_name'), c.get('status'),
                          c.get('migration_uuid') or '-',
                          ' -> %s' % c['dest_host'] if c.get('dest_host') else '',
                          ': %s' % c['reason'] if c.get('reason') else '')
        for c in e.get('containers') or [])
    return _show(out)


class EvacuateHost(command.ShowOne):
    _description = ('Live-migrate every running container off a compute host (the host is '
                    'disabled first when it is enabled, and stays disabled)')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('host', metavar='<host>', help='Compute host to empty')
        parser.add_argument('--target-host', metavar='<host>',
                            help='Send every container to this host (default: the '
                                 'scheduler spreads them over the enabled hosts)')
        parser.add_argument('--max-parallel', metavar='<n>', type=int,
                            help='Migrations in flight at once (default 1)')
        parser.add_argument('--post-copy', action='store_true', default=False,
                            help='Move each container post-copy (its memory after the target '
                                 'runs it: short downtime, but a container is lost if this '
                                 'host fails before its pages arrived); refused with the '
                                 'reason unless the hosts can and may')
        parser.add_argument('--wait', action='store_true',
                            help='Wait for the evacuation to end, one line per container on '
                                 'stderr; exit non-zero unless every running container moved')
        parser.add_argument('--timeout', metavar='<seconds>', type=float, default=3600,
                            help='With --wait: give up waiting after this many seconds '
                                 '(default 3600; the evacuation itself goes on)')
        parser.add_argument('--poll-interval', metavar='<seconds>', type=float, default=1.0,
                            help=argparse.SUPPRESS)
        return parser

    def take_action(self, parsed_args):
        if parsed_args.max_parallel is not None and parsed_args.max_parallel < 1:
            raise osc_exc.CommandError('--max-parallel must be a positive number')
        client = _client(self)
        self._failed = False
        e = _api(client.evacuate_host, parsed_args.host, target_host=parsed_args.target_host,
                 max_parallel=parsed_args.max_parallel,
                 post_copy=True if parsed_args.post_copy else None)
        if parsed_args.wait:
            running = sum(1 for c in e.get('containers') or [] if c.get('status') == 'pending')
            sys.stderr.write('Evacuating %s: %s, %s to move, at most %d at a time '
                             '(evacuation %s)\n' % (
                                 e.get('host'), _n(len(e.get('containers') or []), 'container'),
                                 running, e.get('max_parallel') or 1, e.get('uuid')))
            try:
                e = _api(wait_for_evacuation, client, e, sys.stderr,
                         interval=parsed_args.poll_interval, timeout=parsed_args.timeout)
            except KeyboardInterrupt:
                raise osc_exc.CommandError(
                    'Stopped waiting; evacuation %s goes on (see: openstack container '
                    'evacuation show %s)' % (e['uuid'], e['uuid']))
            sys.stderr.write(evacuation_summary(e) + '\n')
            self._failed = e.get('status') != 'completed'
        return _evacuation_show(e)

    def run(self, parsed_args):
        rc = super().run(parsed_args)
        return rc or (1 if getattr(self, '_failed', False) else 0)


class ListEvacuation(command.Lister):
    _description = 'List host evacuations, newest first'

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--host', metavar='<host>', help='Only evacuations of this host')
        return parser

    def take_action(self, parsed_args):
        rows = _api(_client(self).list_evacuations, host=parsed_args.host)
        return (tuple(h for h, _ in EVACUATION_COLUMNS),
                (tuple(len(e.get('containers') or []) if f == 'containers' else e.get(f)
                       for _, f in EVACUATION_COLUMNS) for e in rows))


class ShowEvacuation(command.ShowOne):
    _description = ('Show a host evacuation: each container with its migration and '
                    'outcome, and counts by status')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('evacuation', metavar='<uuid>', help='Evacuation UUID')
        return parser

    def take_action(self, parsed_args):
        return _evacuation_show(_api(_client(self).get_evacuation, parsed_args.evacuation))
