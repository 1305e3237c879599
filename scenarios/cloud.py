"""What a scenario needs to know about the cloud under test, and how it talks to it.

Credentials: the caller's ``OS_CLOUD`` (clouds.yaml) or ``OS_*`` variables when set, else the
development cloud's admin (``node dist/cmd/devcloud.js status --json``). Ferry itself is only
driven through the ``openstack`` CLI. Workloads are started with the Docker CLI against each
compute host's engine: ``FERRY_DOCKER_HOSTS="compute1=unix:///...,compute2=tcp://..."``, else
the development cloud's hosts. The tenant network and the client's network namespace come from
``FERRY_FABRIC_NETWORK`` / ``FERRY_CLIENT_NETNS``, else the development cloud's.
"""
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBES = os.path.join(REPO, 'scenarios', 'probes.py')
DOCKER = os.environ.get('FERRY_DOCKER_CLI', '/usr/bin/docker')
OPENSTACK = os.environ.get('FERRY_OPENSTACK_CLI') or shutil.which('openstack') or '/usr/bin/openstack'
PYTHON = os.environ.get('FERRY_PROBE_PYTHON', '/usr/bin/python3')


def log(msg):
    sys.stderr.write('    %s\n' % msg)
    sys.stderr.flush()


class Cloud(object):
    def __init__(self):
        self.env = dict(os.environ)
        has_os = bool(os.environ.get('OS_CLOUD') or os.environ.get('OS_AUTH_URL'))
        status = None
        if not has_os or not os.environ.get('FERRY_DOCKER_HOSTS') \
                or not os.environ.get('FERRY_CLIENT_NETNS'):
            status = self._devcloud_status()
        if not has_os:
            ks = status['keystone']
            admin = ks['admin']
            self.env.update({
                'OS_AUTH_URL': ks['auth_url'], 'OS_USERNAME': admin['username'],
                'OS_PASSWORD': admin['password'], 'OS_PROJECT_NAME': admin['project_name'],
                'OS_USER_DOMAIN_NAME': admin['user_domain_name'],
                'OS_PROJECT_DOMAIN_NAME': admin['project_domain_name'],
                'OS_REGION_NAME': os.environ.get('OS_REGION_NAME', 'RegionOne'),
                'OS_IDENTITY_API_VERSION': '3', 'OS_INTERFACE': 'public',
            })
        if os.environ.get('FERRY_DOCKER_HOSTS'):
            self.docker_hosts = dict(kv.split('=', 1) for kv in
                                     os.environ['FERRY_DOCKER_HOSTS'].split(',') if kv)
        else:
            self.docker_hosts = {h['name']: h['docker_host'] for h in status['hosts']}
        fabric = (status or {}).get('fabric', {})
        self.fabric_network = os.environ.get('FERRY_FABRIC_NETWORK') or fabric.get('network', 'ferry-fabric')
        self.client_netns = os.environ.get('FERRY_CLIENT_NETNS') or fabric.get('client_netns', 'ferry-client')

    @staticmethod
    def _devcloud_status():
        out = subprocess.run(['node', os.path.join(REPO, 'dist/cmd/devcloud.js'), 'status', '--json'],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)

    # -- the openstack CLI -------------------------------------------------------------

    def openstack(self, *args, check=True, timeout=600):
        argv = [OPENSTACK] + list(args)
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError('`openstack %s` exited %d: %s' % (
                ' '.join(args), r.returncode, r.stderr.strip()))
        return r

    def openstack_json(self, *args, **kw):
        return json.loads(self.openstack(*(list(args) + ['-f', 'json']), **kw).stdout)

    def up_hosts(self):
        """Compute hosts Ferry reports up, that this suite can also reach with Docker."""
        hosts = self.openstack_json('container', 'host', 'list')
        return [h['Name'] for h in hosts if h['State'] == 'up' and h['Name'] in self.docker_hosts]

    def migrate(self, container, host):
        """`openstack container migrate --wait`: the final record and the CLI's exit code."""
        t0 = time.monotonic()
        r = self.openstack('container', 'migrate', container, '--host', host, '--wait',
                           '-f', 'json', check=False)
        wall = time.monotonic() - t0
        try:
            record = json.loads(r.stdout)
        except ValueError:
            raise AssertionError('`openstack container migrate` printed no record (exit %d): %s'
                                 % (r.returncode, r.stderr.strip()))
        progress_lines = [l for l in r.stderr.splitlines() if '%' in l]
        log('openstack container migrate %s --host %s --wait: exit %d in %.1f s; %s' % (
            container, host, r.returncode, wall, (r.stderr.strip().splitlines() or [''])[-1]))
        return record, r.returncode, progress_lines

    # -- Docker on the compute hosts -----------------------------------------------------

    def docker(self, host, *args, check=True):
        r = subprocess.run([DOCKER, '-H', self.docker_hosts[host]] + list(args),
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError('docker %s on %s: %s' % (' '.join(args), host, r.stderr.strip()))
        return r.stdout

    def run_on_fabric(self, host, name, image, ip, mac, *extra):
        return self.docker(host, 'run', '-d', '--name', name, '--network', self.fabric_network,
                           '--ip', ip, '--mac-address', mac, *(list(extra) + [image])).strip()

    def state(self, host, name):
        """Docker's State.Status of the container on host, or None when it is not there."""
        r = subprocess.run([DOCKER, '-H', self.docker_hosts[host], 'inspect', '-f',
                            '{{.State.Status}}', name], capture_output=True, text=True, timeout=60)
        return r.stdout.strip() if r.returncode == 0 else None

    def remove_everywhere(self, name):
        for host in self.docker_hosts:
            subprocess.run([DOCKER, '-H', self.docker_hosts[host], 'rm', '-f', '-v', name],
                           capture_output=True, timeout=120)

    # -- the tenant's client, in its own namespace on the shared network -------------------

    def probe(self, *args):
        """Start scenarios/probes.py in the client namespace; returns a Probe."""
        argv = ['ip', 'netns', 'exec', self.client_netns, PYTHON, '-u', PROBES] + list(args)
        return Probe(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))


class Probe(object):
    """A client process that measures until told to stop, then prints one JSON summary."""

    def __init__(self, proc):
        self.proc = proc

    def wait_ready(self, timeout=30):
        """The probe prints `ready` once its first exchange with the workload succeeded."""
        deadline = time.monotonic() + timeout
        import select
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
        err = self.stop_hard()
        raise AssertionError('the client probe did not get ready: %s' % err)

    def stop(self, timeout=60):
        """Tell the probe to stop; returns its summary (a dict)."""
        out, err = self.proc.communicate('stop\n', timeout=timeout)
        lines = [l for l in out.splitlines() if l.startswith('{')]
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


def wait_until(what, fn, timeout=30, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError('timed out waiting for %s' % what)
