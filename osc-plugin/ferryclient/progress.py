"""Following a migration to its end, with its phase and a progress bar on a stream."""
import time

from ferryclient.v1.client import FINAL_STATUSES


def bar(progress, width=30):
    try:
        p = max(0, min(100, int(progress or 0)))
    except (TypeError, ValueError):
        p = 0
    done = int(round(width * p / 100.0))
    return '[%s%s] %3d%%' % ('#' * done, '.' * (width - done), p)


def describe(m):
    status = m.get('status') or '?'
    phase = m.get('phase')
    return '%s (%s)' % (status, phase) if phase and phase != status else status


def _count(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _unit(n):
    """The unit (decimal, as Nova's byte counters) and format to show byte counts up to ``n`` in."""
    unit, div = next((u, d) for u, d in (('GB', 1e9), ('MB', 1e6), ('kB', 1e3), ('B', 1))
                     if n >= d)
    return unit, div, '%d' if div == 1 else '%.1f'


def memory(m):
    """The memory moved so far, e.g. ``45.2/94.8 MB memory`` (one unit, chosen by the total);
    '' until the API knows the total."""
    total, done = m.get('memory_total_bytes'), m.get('memory_processed_bytes')
    if not _count(total) or total <= 0:
        return ''
    unit, div, fmt = _unit(total)
    if _count(done):
        return ('%s/%s %s memory' % (fmt, fmt, unit)) % (done / div, total / div)
    return ('%s %s memory' % (fmt, unit)) % (total / div)


def disk(m):
    """The disk pre-copy (API 1.5), e.g. ``disk 3 rounds 312.4 MB live, 2.1 MB frozen``; '' when
    the disk moved in the freeze or the API does not say."""
    rounds, live, frozen = m.get('disk_rounds'), m.get('disk_live_bytes'), m.get('disk_frozen_bytes')
    if not (_count(rounds) and _count(live) and _count(frozen)):
        return ''
    def size(n):
        unit, div, fmt = _unit(max(n, 1))
        return (fmt + ' %s') % (n / div, unit)
    return 'disk %d round%s %s live, %s frozen' % (
        rounds, '' if rounds == 1 else 's', size(live), size(frozen))


def line(m):
    """A migration's progress line: bar, hosts, status (phase), memory moved, disk pre-copy, mode."""
    out = '%s %s %s -> %s  %s' % (
        (m.get('uuid') or '')[:8], bar(m.get('progress')), m.get('source_host') or '?',
        m.get('dest_host') or '(scheduling)', describe(m))
    mem = memory(m)
    if mem:
        out += ' ' + mem
    dsk = disk(m)
    if dsk:
        out += (', ' if mem else ' ') + dsk
    if m.get('mode'):
        out += ', mode %s' % m['mode']
    return out


class ProgressPrinter(object):
    """Draws one line that updates in place on a terminal; otherwise one line per change of
    status, phase, progress or mode, and per tenth of the memory moved (so that a long
    post-copy shows its bytes without a line per poll)."""

    def __init__(self, stream, tty=None):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._last = None
        self._last_bytes = None
        self._width = 0

    def _bytes_moved_enough(self, m):
        total, done = m.get('memory_total_bytes'), m.get('memory_processed_bytes')
        if not (_count(total) and _count(done)):
            return False
        return self._last_bytes is None or done - self._last_bytes >= total / 10.0

    def update(self, m):
        text = line(m)
        key = (m.get('status'), m.get('phase'), m.get('progress'), m.get('mode'), m.get('disk_rounds'))
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write('\r' + text + ' ' * pad)
            self._width = len(text)
            self.stream.flush()
        elif key != self._last or self._bytes_moved_enough(m):
            self.stream.write(text + '\n')
            self.stream.flush()
            self._last_bytes = m.get('memory_processed_bytes')
        self._last = key

    def done(self):
        if self.tty and self._width:
            self.stream.write('\n')
            self.stream.flush()


class WaitTimeout(Exception):
    pass


def wait_for_migration(get, uuid, printer=None, interval=0.5, timeout=None,
                       clock=time.monotonic, sleep=time.sleep, first=None):
    """Poll ``get(uuid)`` until the migration is final; returns the final record."""
    start = clock()
    m = first if first is not None else get(uuid)
    try:
        while True:
            if printer:
                printer.update(m)
            if m.get('status') in FINAL_STATUSES:
                return m
            if timeout is not None and clock() - start > timeout:
                raise WaitTimeout(
                    'Migration %s is still %s after %ss; it goes on (see: openstack '
                    'container migration show %s)' % (uuid, describe(m), timeout, uuid))
            sleep(interval)
            m = get(uuid)
    finally:
        if printer:
            printer.done()
