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


class ProgressPrinter(object):
    """Draws one line that updates in place on a terminal, or one line per change otherwise."""

    def __init__(self, stream, tty=None):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._last = None
        self._width = 0

    def update(self, m):
        line = '%s %s %s -> %s  %s' % (
            m.get('uuid', '')[:8], bar(m.get('progress')), m.get('source_host') or '?',
            m.get('dest_host') or '(scheduling)', describe(m))
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write('\r' + line + ' ' * pad)
            self._width = len(line)
            self.stream.flush()
        else:
            key = (m.get('status'), m.get('phase'), m.get('progress'))
            if key != self._last:
                self.stream.write(line + '\n')
                self.stream.flush()
        self._last = (m.get('status'), m.get('phase'), m.get('progress'))

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
