"""Waiting for a migration, as tempest's waiters wait for servers: poll until a condition or
a final status, and fail with what was last seen."""
import time

from tempest.lib import exceptions as lib_exc

FINAL_STATUSES = ('completed', 'failed', 'cancelled', 'error')


def wait_for_migration(client, uuid, condition=None, timeout=None, interval=None):
    """Poll GET /migrations/{uuid} until condition(migration) is true (default: a final
    status); returns the migration. Times out with tempest's TimeoutException."""
    condition = condition or (lambda m: m['status'] in FINAL_STATUSES)
    timeout = timeout or client.build_timeout
    interval = interval or client.build_interval
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        m = client.show_migration(uuid)['migration']
        step = (m['status'], m.get('phase'))
        if not seen or seen[-1] != step:
            seen.append(step)
        if condition(m):
            return m
        if m['status'] in FINAL_STATUSES:
            raise lib_exc.TempestException(
                'migration %s ended %s (phase %s, error %s) before the awaited condition; '
                'steps seen: %s' % (uuid, m['status'], m.get('phase'), m.get('error'), seen))
        if time.monotonic() > deadline:
            raise lib_exc.TimeoutException(
                'migration %s still %s (phase %s) after %d s; steps seen: %s'
                % (uuid, m['status'], m.get('phase'), timeout, seen))
        time.sleep(interval)
