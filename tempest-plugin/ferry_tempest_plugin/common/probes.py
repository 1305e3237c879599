#!/usr/bin/env python3
"""Client-side probes the scenario tests run inside the tenant's network namespace.

    probes.py http URL              poll an HTTP counter every 50 ms
    probes.py stream HOST PORT      read 1, 2, 3, ... over ONE TCP connection
    probes.py redis HOST PORT       a producer (INCR + SET) and a consumer (GET) on Redis

Each prints ``ready`` once the workload answered, measures until a line ``stop`` arrives on
stdin (or stdin closes), then prints one JSON summary line. Standard library only; Redis is
spoken in RESP over a plain socket.
"""
import json
import socket
import sys
import threading
import time
import urllib.request

STOP = threading.Event()


def now():
    return time.time()


def watch_stdin():
    for line in sys.stdin:
        if line.strip() == 'stop':
            break
    STOP.set()


def ready():
    sys.stdout.write('ready\n')
    sys.stdout.flush()


def connect(host, port, timeout=10, wait=30):
    """A TCP connection, retried while the workload is still starting (up to `wait` s)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection((host, port), timeout=timeout)
        except OSError:
            if time.monotonic() > deadline or STOP.is_set():
                raise
            time.sleep(0.1)


def gaps(times):
    """Largest interval between consecutive times (ms) and when it started."""
    best, at = 0.0, None
    for a, b in zip(times, times[1:]):
        if b - a > best:
            best, at = b - a, a
    return round(best * 1000), at


# -- HTTP counter ------------------------------------------------------------------------

def probe_http(url):
    samples, errors = [], 0
    while not STOP.is_set():
        try:
            with urllib.request.urlopen(url, timeout=0.5) as r:
                v = int(r.read().decode().strip())
            samples.append((now(), v))
            if len(samples) == 1:
                ready()
        except Exception:
            errors += 1
        STOP.wait(0.05)
    max_gap, gap_at = gaps([t for t, _ in samples])
    before = [v for t, v in samples if gap_at is not None and t <= gap_at]
    after = [v for t, v in samples if gap_at is not None and t > gap_at]
    values = [v for _, v in samples]
    return {
        'samples': samples, 'errors': errors, 'max_gap_ms': max_gap, 'gap_at': gap_at,
        'value_before_gap': before[-1] if before else None,
        'value_after_gap': after[0] if after else None,
        'monotonic': all(b >= a for a, b in zip(values, values[1:])),
    }


# -- the stream --------------------------------------------------------------------------

def probe_stream(host, port):
    s = connect(host, port)
    s.settimeout(1.0)
    local = s.getsockname()
    times, expected, buf = [], None, b''
    missing, repeated, received, first, last, eof, error = [], 0, 0, None, None, False, None
    while not STOP.is_set():
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            error = '%s: %s' % (type(e).__name__, e)
            break
        if not chunk:
            eof = True
            break
        buf += chunk
        *lines, buf = buf.split(b'\n')
        for line in lines:
            if not line.strip():
                continue
            n = int(line.strip())
            times.append(now())
            received += 1
            if first is None:
                first = n
            elif n <= last:
                repeated += 1
            elif n != expected:
                missing.extend(range(expected, min(n, expected + 20)))
            if last is None or n > last:
                last = n
                expected = n + 1
            if received == 5:
                ready()
    s.close()
    max_gap, gap_at = gaps(times)
    return {
        'local': '%s:%d' % local, 'received': received, 'first': first, 'last': last,
        'missing': missing, 'repeated': repeated, 'eof': eof, 'error': error,
        'max_pause_ms': max_gap, 'pause_at': gap_at, 'connections': 1, 'times': times,
    }


# -- Redis -------------------------------------------------------------------------------

class Resp(object):
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, host, port, timeout=15, wait=0):
        self.sock = connect(host, port, timeout=timeout, wait=wait)
        self.f = self.sock.makefile('rb')

    def call(self, *args):
        parts = [b'*%d\r\n' % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b'$%d\r\n%s\r\n' % (len(a), a))
        self.sock.sendall(b''.join(parts))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError('connection closed by Redis')
        kind, rest = line[:1], line[1:-2]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            raise RuntimeError('Redis error: %s' % rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2].decode()
        if kind == b'*':
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError('bad RESP line %r' % line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def probe_redis(host, port):
    prefix = 'ferry-scn:%d' % int(now())
    counter = prefix + ':count'
    st = {'acked_incr': 0, 'unacked_incr': 0, 'acked_sets': [], 'unacked_sets': 0,
          'reconnects': 0, 'errors': [], 'ack_times': [], 'reads': [], 'read_errors': 0}
    ok = {'producer': threading.Event(), 'consumer': threading.Event()}

    def producer():
        c = Resp(host, port, wait=30)
        i = 0
        while not STOP.is_set():
            i += 1
            try:
                c.call('INCR', counter)
                st['acked_incr'] += 1
            except Exception as e:
                st['unacked_incr'] += 1
                st['errors'].append('INCR %d: %s' % (i, e))
                c = reconnect(c)
                continue
            try:
                if c.call('SET', '%s:item:%d' % (prefix, i), i) == 'OK':
                    st['acked_sets'].append(i)
                    st['ack_times'].append(now())
                    ok['producer'].set()
            except Exception as e:
                st['unacked_sets'] += 1
                st['errors'].append('SET %d: %s' % (i, e))
                c = reconnect(c)
            STOP.wait(0.02)
        c.close()

    def reconnect(c):
        c.close()
        st['reconnects'] += 1
        while not STOP.is_set():
            try:
                return Resp(host, port)
            except OSError:
                STOP.wait(0.1)
        return Resp(host, port)

    def consumer():
        c = Resp(host, port, wait=30)
        while not STOP.is_set():
            try:
                v = c.call('GET', counter)
                st['reads'].append((now(), int(v or 0)))
                ok['consumer'].set()
            except Exception:
                st['read_errors'] += 1
                c.close()
                try:
                    c = Resp(host, port)
                except OSError:
                    pass
            STOP.wait(0.05)
        c.close()

    threads = [threading.Thread(target=producer, daemon=True),
               threading.Thread(target=consumer, daemon=True)]
    for t in threads:
        t.start()
    while not STOP.is_set() and not (ok['producer'].is_set() and ok['consumer'].is_set()):
        STOP.wait(0.05)
    if ok['producer'].is_set() and ok['consumer'].is_set():
        ready()
    STOP.wait()
    for t in threads:
        t.join(30)
    # Verification on a fresh connection: every acknowledged write must be there.
    v = Resp(host, port)
    final = int(v.call('GET', counter) or 0)
    missing = []
    acked = st['acked_sets']
    for k in range(0, len(acked), 500):
        batch = acked[k:k + 500]
        vals = v.call('MGET', *['%s:item:%d' % (prefix, i) for i in batch])
        missing += [i for i, val in zip(batch, vals) if val != str(i)]
    v.close()
    values = [x for _, x in st['reads']]
    max_gap, gap_at = gaps(st['ack_times'])
    read_gap, _ = gaps([t for t, _ in st['reads']])
    return {
        'acked_incr': st['acked_incr'], 'unacked_incr': st['unacked_incr'],
        'final_count': final, 'acked_sets': len(acked), 'unacked_sets': st['unacked_sets'],
        'missing_sets': missing[:50], 'missing_count': len(missing),
        'reconnects': st['reconnects'], 'errors': st['errors'][:10],
        'producer_max_gap_ms': max_gap, 'gap_at': gap_at, 'consumer_max_gap_ms': read_gap,
        'consumer_monotonic': all(b >= a for a, b in zip(values, values[1:])),
        'reads': st['reads'], 'read_errors': st['read_errors'],
    }


def main(argv):
    threading.Thread(target=watch_stdin, daemon=True).start()
    kind = argv[1]
    if kind == 'http':
        summary = probe_http(argv[2])
    elif kind == 'stream':
        summary = probe_stream(argv[2], int(argv[3]))
    elif kind == 'redis':
        summary = probe_redis(argv[2], int(argv[3]))
    else:
        raise SystemExit('unknown probe %s' % kind)
    sys.stdout.write(json.dumps(summary) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main(sys.argv)
