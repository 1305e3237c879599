"""Workloads on the compute hosts' Docker engines (the tests' own containers, started and
removed with the Docker CLI), and the tenant's client probes in its network namespace."""
import json
import os
import select
import subprocess
import time

PROBES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'probes.py')


class Docker(object):
    """The Docker CLI against each compute host's engine (config: docker_hosts)."""

    def __init__(self, cli, hosts):
        self.cli = cli
        self.hosts = dict(hosts)

    def __call__(self, host, *args, check=True, timeout=120):
        r = subprocess.run([self.cli, '-H', self.hosts[host]] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError('docker %s on %s: %s' % (' '.join(args), host, r.stderr.strip()))
        return r.stdout

    def run(self, host, name, image, network=None, ip=None, mac=None, env=(), labels=None):
        args = ['run', '-d', '--name', name]
        for k, v in sorted((labels or {}).items()):
            args += ['--label', '%s=%s' % (k, v)]
        if network:
            args += ['--network', network]
        if ip:
            args += ['--ip', ip]
        if mac:
            args += ['--mac-address', mac]
        for e in env:
            args += ['-e', e]
        return self(host, *(args + [image])).strip()

    def state(self, host, name):
        """Docker's State.Status of the container on host, or None when it is not there."""
        r = subprocess.run([self.cli, '-H', self.hosts[host], 'inspect', '-f',
                            '{{.State.Status}} {{.State.Pid}}', name],
                           capture_output=True, text=True, timeout=60)
        return r.stdout.split()[0] if r.returncode == 0 and r.stdout.strip() else None

    def pid(self, host, name):
        r = subprocess.run([self.cli, '-H', self.hosts[host], 'inspect', '-f',
                            '{{.State.Pid}}', name], capture_output=True, text=True, timeout=60)
        return int(r.stdout.strip()) if r.returncode == 0 else None

    def remove_everywhere(self, name):
        for host in self.hosts:
            subprocess.run([self.cli, '-H', self.hosts[host], 'rm', '-f', '-v', name],
                           capture_output=True, timeout=120)


def mac_for(ip):
    """The MAC Docker would give ip (02:42 + the address), pinned so it survives a move."""
    return '02:42:' + ':'.join('%02x' % int(x) for x in ip.split('.'))


def established(netns, ip, port):
    """Established TCP connections from the client namespace to ip:port (local addresses)."""
    out = subprocess.run(['ip', 'netns', 'exec', netns, 'ss', '-Htn', 'state', 'established',
                          'dst', '%s:%d' % (ip, port)],
                         capture_output=True, text=True, timeout=30).stdout
    return sorted(line.split()[-2] for line in out.splitlines() if line.strip())


class Probe(object):
    """probes.py in the client namespace: measures until told to stop, then prints one JSON
    summary line."""

    def __init__(self, python, netns, *args):
        argv = ['ip', 'netns', 'exec', netns, python, '-u', PROBES] + list(args)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout=30):
        """The probe prints `ready` once its first exchange with the workload succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                if line.strip() == 'ready':
                    return
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        raise AssertionError('the client probe did not get ready: %s' % self.stop_hard())

    def stop(self, timeout=60):
        """Tell the probe to stop; returns its summary (a dict)."""
        out, err = self.proc.communicate('stop\n', timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith('{')]
        if self.proc.returncode != 0 or not lines:
            raise AssertionError('the client probe failed (exit %s): %s' % (
                self.proc.returncode, err.strip()[-2000:]))
        return json.loads(lines[-1])

    def stop_hard(self):
        """End the probe (our own child, by its PID) and return its stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            _, err = self.proc.communicate(timeout=10)
        except Exception:
            err = ''
        return (err or '').strip()[-2000:]
