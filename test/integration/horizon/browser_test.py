"""Ferry's Horizon panel in a real browser (headless Chromium through chromedriver and
Selenium), against the development cloud: the admin sees hosts and containers, live-migrates a
counter from the Containers tab and watches its Migrations row reach `completed` without a
reload, opens its details and the next page, aborts a migration held before its freeze (fault
injection on the target's agent), migrates with the batch action, empties a host (Migrate All
Off This Host) and enables it again, sees Ferry's refusal as a message; the demo
user finds no migrate action. Screenshots of each page go to results/horizon/.

    /usr/bin/python3 test/integration/horizon/browser_test.py     (as root; the cloud up)

Prints one line `horizon browser test: N passed, N failed, N skipped` and writes
results/horizon-browser.json in the shape of jest's JSON report.
"""
import json
import os
import subprocess
import sys
import time
import unittest

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.common.exceptions import StaleElementReferenceException
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
RESULTS = os.path.join(REPO, 'results', 'horizon')
PANEL = '/admin/container_migrations/'
TAB = PANEL + '?tab=container_migration_tabs__%s'
FINAL = ('completed', 'failed', 'cancelled', 'error')
# The target's agent waits this long inside pre_migration: the window to abort before the freeze.
HOLD_MS = 15000


def log(msg):
    sys.stderr.write('    %s\n' % msg)
    sys.stderr.flush()


def devcloud(*args, env=None, timeout=180, ok_codes=(0,)):
    r = subprocess.run(['node', os.path.join(REPO, 'dist/cmd/devcloud.js')] + list(args),
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if r.returncode not in ok_codes:
        raise AssertionError('ferry-devcloud %s exited %d: %s'
                             % (' '.join(args), r.returncode, r.stderr.strip()[-2000:]))
    return r.stdout


def restart_compute(host, faults=None):
    """Restart one ferry-compute of the dev cloud, with fault injection armed or not (the
    mechanism of test/integration/control/abort.test.ts)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('FERRY_FAULTS', 'FERRY_ENABLE_FAULTS', 'NODE_ENV', 'NODE_OPTIONS')}
    if faults:
        env.update({'FERRY_ENABLE_FAULTS': '1', 'FERRY_FAULTS': json.dumps(faults)})
    devcloud('restart', 'ferry-compute-%s' % host, env=env)


class Cloud(object):
    def __init__(self):
        # Exit 3 means a part is down; the description still says which (checked below).
        self.status = json.loads(devcloud('status', '--json', ok_codes=(0, 3)))
        if 'horizon' not in self.status or self.status['horizon']['state'] != 'up':
            raise AssertionError('Horizon is not up in the development cloud: %s'
                                 % self.status.get('horizon'))
        self.url = self.status['horizon']['url']
        self.engines = {h['name']: h['docker_host'] for h in self.status['hosts']}
        self.names = []

    def os_env(self):
        """The `openstack` CLI's environment for the dev cloud's admin."""
        ks = self.status['keystone']
        admin = ks['admin']
        env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
        env.update({'OS_AUTH_URL': ks['auth_url'], 'OS_USERNAME': admin['username'],
                    'OS_PASSWORD': admin['password'], 'OS_PROJECT_NAME': admin['project_name'],
                    'OS_USER_DOMAIN_NAME': admin['user_domain_name'],
                    'OS_PROJECT_DOMAIN_NAME': admin['project_domain_name'],
                    'OS_IDENTITY_API_VERSION': '3', 'OS_REGION_NAME': 'RegionOne'})
        return env

    def docker(self, host, *args, check=True):
        r = subprocess.run(['/usr/bin/docker', '-H', self.engines[host]] + list(args),
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError('docker %s on %s: %s' % (' '.join(args), host, r.stderr))
        return r.stdout.strip()

    def counter(self, prefix):
        name = 'ferry-ui-%s-%d' % (prefix, os.getpid())
        self.remove(name)
        self.names.append(name)
        self.docker('compute1', 'run', '-d', '--name', name, '-e', 'COUNTER_INTERVAL=0.2',
                    'ferry/counter')
        return name

    def where(self, name):
        """{host: (status, pid)} of every host that has the container."""
        out = {}
        for host in self.engines:
            r = subprocess.run(['/usr/bin/docker', '-H', self.engines[host], 'inspect', '-f',
                                '{{.State.Status}} {{.State.Pid}}', name],
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                status, pid = r.stdout.split()
                out[host] = (status, int(pid))
        return out

    def remove(self, name):
        for host in self.engines:
            subprocess.run(['/usr/bin/docker', '-H', self.engines[host], 'rm', '-f', '-v', name],
                           capture_output=True, timeout=120)


class Browser(object):
    def __init__(self, base):
        self.base = base
        opts = webdriver.ChromeOptions()
        opts.binary_location = '/usr/bin/chromium'
        for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                  '--window-size=1366,900', '--disable-gpu'):
            opts.add_argument(a)
        self.d = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
        self.d.set_page_load_timeout(120)

    def get(self, path):
        self.d.get(self.base + path)

    def login(self, user, password):
        self.d.delete_all_cookies()
        self.get('/auth/login/?next=' + PANEL)
        self.d.find_element(By.ID, 'id_username').send_keys(user)
        self.d.find_element(By.ID, 'id_password').send_keys(password)
        self.d.find_element(By.CSS_SELECTOR, 'button[type=submit]').click()
        self.wait('the login to finish', lambda: '/auth/login' not in self.d.current_url, 60)

    def shot(self, name):
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, '%s.png' % name)
        self.d.save_screenshot(path)
        return path

    def wait(self, what, fn, timeout=30, interval=0.2):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                v = fn()
                if v:
                    return v
            except (NoSuchElementException, StaleElementReferenceException) as e:
                last = e
            time.sleep(interval)
        self.shot('timeout-' + ''.join(c if c.isalnum() else '-' for c in what)[:60])
        raise AssertionError('timed out after %d s waiting for %s (%s)' % (timeout, what, last))

    def css(self, selector):
        return self.d.find_elements(By.CSS_SELECTOR, selector)

    def text(self):
        return self.d.find_element(By.TAG_NAME, 'body').text

    def messages(self):
        return [e.text for e in self.css('.messages .alert, .alert-danger, .alert-success')
                if e.text.strip()]

    def row(self, table, contains):
        for tr in self.css('table#%s tbody tr' % table):
            if contains in tr.text:
                return tr
        return None

    def migration_row(self, container):
        tr = self.row('migrations', container)
        if tr is None:
            return None
        cells = tr.find_elements(By.TAG_NAME, 'td')
        return {'id': tr.get_attribute('data-object-id'), 'status': cells[4].text.strip(),
                'route': ' '.join(cells[3].text.split()),
                'phase': cells[5].text.strip(), 'progress': cells[6].text.strip(),
                # Horizon polls the rows whose status is not final: tr.warning.ajax-update.
                'polling': {'warning', 'ajax-update'} <= set(
                    (tr.get_attribute('class') or '').split()),
                'tr': tr}

    def choose_host(self, value):
        """Horizon's themable select: open its dropdown and click the option (the real
        <select> under it is hidden)."""
        form = '#live_migrate_modal'
        self.css(form + ' .themable-select button.dropdown-toggle')[0].click()
        self.wait('the host option %s' % value, lambda: [
            a for a in self.css(form + ' .themable-select a[data-select-value="%s"]' % value)
            if a.is_displayed()])[0].click()
        chosen = Select(self.css(form + ' select#id_host')[0]).first_selected_option
        assert chosen.get_attribute('value') == value, chosen.get_attribute('value')

    def confirm_modal(self):
        btn = self.wait('the confirmation dialog', lambda: [
            b for b in self.css('.modal.in .modal-footer .btn-primary, '
                                '.modal.in .modal-footer .btn-danger') if b.is_displayed()])
        return btn[0]

    def quit(self):
        try:
            self.d.quit()
        except WebDriverException:
            pass


class HorizonPanelTest(unittest.TestCase):
    """Steps in order (test_1 ... test_7, by name) on one browser; each leaves screenshots."""

    @classmethod
    def setUpClass(cls):
        cls.cloud = Cloud()
        cls.admin = cls.cloud.status['keystone']['admin']
        cls.demo = cls.cloud.status['keystone']['demo']
        cls.browser = Browser(cls.cloud.url)
        cls.counter = cls.cloud.counter('counter')
        t0 = time.monotonic()
        cls.browser.login(cls.admin['username'], cls.admin['password'])
        log('logged in as admin in %.1f s' % (time.monotonic() - t0))

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        # An evacuation step that failed half-way must not leave compute2 disabled.
        subprocess.run(['/usr/bin/openstack', 'container', 'host', 'set', '--enable', 'compute2'],
                       env=cls.cloud.os_env(), capture_output=True, timeout=120)
        for n in cls.cloud.names:
            cls.cloud.remove(n)

    def open_tab(self, tab):
        self.browser.get(TAB % tab)
        self.browser.wait('the %s tab' % tab,
                          lambda: self.browser.css('table#%s' % tab))

    def wait_listed(self, tab, text, timeout=30, having=None):
        """Reload a tab until a row with text is there (the agents report with each
        heartbeat), and, with `having` (a CSS selector), until that row shows it; returns the
        row."""
        deadline = time.monotonic() + timeout
        while True:
            self.open_tab(tab)
            tr = self.browser.row(tab, text)
            if tr is not None and (having is None or tr.find_elements(By.CSS_SELECTOR, having)):
                return tr
            if time.monotonic() > deadline:
                self.browser.shot('timeout-%s-%s' % (tab, text))
                raise AssertionError('no row with %r%s in the %s tab after %d s'
                                     % (text, ' showing %s' % having if having else '', tab,
                                        timeout))
            time.sleep(1)

    def wait_migratable(self, name):
        """The container's row with its Live Migrate action. A container just started can be
        listed a moment as `created` (its engine's create event came before its start event),
        and the action is offered only for a running one: wait for it, as a user would."""
        return self.wait_listed('containers', name, having='a.btn-migrate')

    def wait_host_up(self, host, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            tr = self.wait_listed('hosts', host)
            cells = [c.text.strip() for c in tr.find_elements(By.TAG_NAME, 'td')]
            if 'up' in cells:
                return
            if time.monotonic() > deadline:
                raise AssertionError('%s is not up in the Hosts tab: %s' % (host, cells))
            time.sleep(1)

    def test_1_hosts_tab(self):
        self.open_tab('hosts')
        b = self.browser
        for h in ('compute1', 'compute2'):
            tr = b.wait('host %s' % h, lambda: b.row('hosts', h))
            cells = [c.text for c in tr.find_elements(By.TAG_NAME, 'td')]
            self.assertIn('up', cells)
            self.assertTrue(any('4.2' in c for c in cells), cells)  # the CRIU version
        self.assertIn('Container Migrations', b.text())
        b.shot('1-hosts')

    def test_2_live_migrate_from_containers_tab(self):
        b, name = self.browser, self.counter
        before = self.cloud.where(name)
        self.assertEqual('running', before['compute1'][0])
        tr = self.wait_migratable(name)
        self.assertIn('compute1', tr.text)
        b.shot('2-containers')
        tr.find_element(By.CSS_SELECTOR, 'a.btn-migrate').click()
        select = b.wait('the Live Migrate form',
                        lambda: [e for e in b.css('#live_migrate_modal select#id_host')])
        options = [o.get_attribute('value') for o in Select(select[0]).options]
        self.assertEqual(['', 'compute2'], options)  # the scheduler, or the other host that is up
        b.choose_host('compute2')
        b.shot('3-live-migrate-form')
        b.css('#live_migrate_modal input[type=submit]')[0].click()

        row = b.wait('the new migration on the Migrations tab',
                     lambda: b.migration_row(name), timeout=30)
        self.assertTrue(any('accepted' in m or 'Live migration' in m for m in b.messages()),
                        b.messages())
        # Rows in progress refresh themselves: mark the page, never reload it, and wait.
        b.d.execute_script('window.ferryNoReload = true;')
        seen = [row['status']]
        log('migration row appeared as %s (%s)' % (row['status'], row['phase']))
        if row['status'] not in FINAL:
            self.assertTrue(row['polling'], 'a row in progress is not set to refresh itself')

        def completed():
            r = b.migration_row(name)
            if r and r['status'] != seen[-1]:
                seen.append(r['status'])
            return r and r['status'] in FINAL and r

        final = b.wait('the migration row to reach a final status', completed, timeout=120)
        self.assertEqual('completed', final['status'], seen)
        self.assertEqual('100%', final['progress'])
        self.assertFalse(final['polling'])
        self.assertTrue(b.d.execute_script('return window.ferryNoReload === true;'),
                        'the page was reloaded')
        log('statuses seen in the row without a reload: %s' % ' -> '.join(seen))
        b.shot('4-migrations')
        b.d.set_window_size(1280, 780)  # a smaller picture of the top rows (the README's)
        time.sleep(1)
        b.shot('4-migrations-small')
        b.d.set_window_size(1366, 900)
        after = self.cloud.where(name)
        self.assertEqual(['compute2'], list(after))
        self.assertEqual('running', after['compute2'][0])
        type(self).migration_id = final['id']

    def test_3_migration_details(self):
        b = self.browser
        self.open_tab('migrations')
        row = b.wait('the migration row', lambda: b.migration_row(self.counter))
        row['tr'].find_element(By.CSS_SELECTOR, 'a[href*="/migrations/"]').click()
        b.wait('the details page', lambda: '/migrations/%s/' % self.migration_id
               in b.d.current_url)
        text = b.wait('the timings', lambda: 'Phase timings' in b.text() and b.text())
        for label in ('Downtime (freeze)', 'Checkpoint', 'Transfer', 'Restore', 'Total',
                      'Memory image', 'Disk pre-copy', 'Total transferred', self.counter, 'compute1',
                      'compute2', 'completed'):
            self.assertIn(label, text)
        self.assertRegex(text, r'Downtime \(freeze\)\s+\d+ ms')
        self.assertNotIn('Traceback', text)
        b.shot('5-migration-details')

    def test_3b_migrations_page_by_page(self):
        """A page holds the user's page size (Horizon's default 20); Ferry's next link is the
        table's "Next" link, to a page of older, different migrations."""
        b = self.browser
        self.open_tab('migrations')
        first = [tr.get_attribute('data-object-id') for tr in b.css('table#migrations tbody tr')]
        self.assertLessEqual(len(first), 20)
        more = b.css('table#migrations a[href*="migrations_marker="]')
        if len(first) < 20:
            self.assertEqual([], more, 'a Next link on a page that is not full')
            return
        self.assertTrue(more, 'a full page without a Next link')  # above and below the table
        more[0].click()
        b.wait('the next page', lambda: 'migrations_marker=' in b.d.current_url)
        second = [tr.get_attribute('data-object-id') for tr in b.css('table#migrations tbody tr')]
        self.assertTrue(second)
        self.assertEqual(set(), set(first) & set(second))

    def test_4_abort_before_the_freeze(self):
        b, cloud = self.browser, self.cloud
        restart_compute('compute2', {'delayPreMigrationMs': HOLD_MS})
        try:
            name = cloud.counter('abort')
            before = cloud.where(name)['compute1']
            self.wait_host_up('compute2')  # its agent was just restarted
            tr = self.wait_migratable(name)
            tr.find_element(By.CSS_SELECTOR, 'a.btn-migrate').click()
            b.wait('the Live Migrate form', lambda: b.css('#live_migrate_modal select#id_host'))
            b.choose_host('compute2')
            b.css('#live_migrate_modal input[type=submit]')[0].click()
            # Held in the prepare step (the shell exists, nothing frozen): the row stays the
            # same while held, so Horizon's refresh does not replace it under the click.
            row = b.wait('the migration held in pre-migrating/prepare, with its Abort action',
                         lambda: ((lambda r: r and (r['status'], r['phase']) == (
                             'pre-migrating', 'prepare') and r['tr'].find_elements(
                             By.CSS_SELECTOR, 'button[id$="__action_abort"]') and r)
                             (b.migration_row(name))), timeout=30)
            time.sleep(1.5)  # one more refresh of the row: it must come back unchanged
            row = b.migration_row(name)
            self.assertEqual(('pre-migrating', 'prepare'), (row['status'], row['phase']))
            row['tr'].find_element(By.CSS_SELECTOR, 'button[id$="__action_abort"]').click()
            b.shot('6-abort-confirm')
            b.confirm_modal().click()
            b.wait('the abort message', lambda: any('Abort requested' in m
                                                    for m in b.messages()), timeout=30)
            final = b.wait('the migration row to reach a final status', lambda: (
                (lambda r: r and r['status'] in FINAL and r)(b.migration_row(name))),
                timeout=HOLD_MS / 1000 + 60)
            self.assertEqual('cancelled', final['status'])
            self.assertEqual([], final['tr'].find_elements(By.CSS_SELECTOR,
                                                           'button[id$="__action_abort"]'))
            b.shot('7-aborted')
            now = cloud.where(name)
            self.assertEqual(['compute1'], list(now), 'left something on the target')
            self.assertEqual(before, now['compute1'], 'the container was stopped or restarted')
            type(self).abort_name = name
        finally:
            restart_compute('compute2')

    def test_5_batch_live_migrate(self):
        b = self.browser
        # The container the abort left on compute1 (or a new one if that step failed).
        name = getattr(self, 'abort_name', None) or self.cloud.counter('batch')
        tr = self.wait_listed('containers', name)
        # Horizon's themable checkbox: the label is what a user clicks (the input is hidden).
        tr.find_element(By.CSS_SELECTOR, '.themable-checkbox label').click()
        self.assertTrue(tr.find_element(By.CSS_SELECTOR,
                                        'input.table-row-multi-select').is_selected())
        button = b.wait('the batch action to be enabled by the selection', lambda: [
            e for e in b.css('#containers__action_live_migrate_selected')
            if 'disabled' not in (e.get_attribute('class') or '').split()])[0]
        button.click()  # not a dangerous action: Horizon posts it without a confirmation
        b.wait('the batch message', lambda: any('Live migration' in m for m in b.messages()),
               timeout=30)
        self.open_tab('migrations')

        def done():
            r = b.migration_row(name)  # the newest row of this container comes first
            return r and r['status'] in FINAL and r
        final = b.wait('the batch migration to end', done, timeout=120)
        self.assertEqual('completed', final['status'])
        self.assertEqual(['compute2'], list(self.cloud.where(name)))  # the scheduler's choice

    def test_5b_migrate_all_off_a_host_then_enable_it(self):
        """The Hosts tab's evacuation: compute2 (where the counter now runs) is disabled and
        emptied to compute1; Enable Host lets the scheduler use it again."""
        b, cloud, name = self.browser, self.cloud, self.counter
        self.assertIn('compute2', cloud.where(name))
        tr = self.wait_listed('hosts', 'compute2')
        tr.find_element(By.CSS_SELECTOR, 'a.btn-evacuate').click()
        b.wait('the evacuation form', lambda: b.css('#evacuate_host_modal select#id_target_host'))
        options = [o.get_attribute('value') for o in
                   Select(b.css('#evacuate_host_modal select#id_target_host')[0]).options]
        self.assertEqual(['', 'compute1'], options)
        b.shot('7b-evacuate-form')
        b.css('#evacuate_host_modal input[type=submit]')[0].click()
        b.wait('the evacuation message', lambda: any('Evacuation' in m for m in b.messages()),
               timeout=30)
        # The counter's newest row is the evacuation's move (compute2 -> compute1) once it is
        # there; until then it is the move of test_2 (compute1 -> compute2).
        final = b.wait('the counter to move off compute2', lambda: (
            (lambda r: r and r['route'].startswith('compute2') and r['status'] in FINAL and r)
            (b.migration_row(name))), timeout=180)
        self.assertEqual('completed', final['status'])
        self.assertEqual(['compute1'], list(cloud.where(name)))
        tr = self.wait_listed('hosts', 'compute2')
        self.assertIn('disabled', tr.text)
        b.shot('7c-host-disabled')
        tr.find_element(By.CSS_SELECTOR, 'button[id$="__action_enable"]').click()
        b.wait('the host enabled', lambda: any('Enabled host' in m for m in b.messages()),
               timeout=30)
        tr = self.wait_listed('hosts', 'compute2')
        self.assertNotIn('disabled', tr.text)
        self.assertEqual([], tr.find_elements(By.CSS_SELECTOR, 'button[id$="__action_enable"]'))

    def test_6_ferry_refusal_is_a_message(self):
        b, cloud = self.browser, self.cloud
        name = cloud.counter('gone')
        tr = self.wait_migratable(name)
        tr.find_element(By.CSS_SELECTOR, 'a.btn-migrate').click()
        b.wait('the Live Migrate form', lambda: b.css('#live_migrate_modal select#id_host'))
        cloud.remove(name)  # gone before the form is sent; wait for Ferry to notice
        time.sleep(8)
        b.css('#live_migrate_modal input[type=submit]')[0].click()
        msg = b.wait('a refusal message', lambda: [m for m in b.messages() if 'refused' in m],
                     timeout=30)
        self.assertIn(name, msg[0])
        self.assertRegex(msg[0], r'not found|could not be found|HTTP 404')
        self.assertNotIn('Traceback', b.text())
        b.shot('8-refused')

    def test_7_demo_user_has_no_migrate_action(self):
        b = self.browser
        b.login(self.demo['username'], self.demo['password'])
        for tab in ('containers', 'migrations'):
            b.get(TAB % tab)
            time.sleep(1)
            self.assertEqual([], b.css('a.btn-migrate'))
            self.assertEqual([], b.css('#containers__action_live_migrate_selected'))
            self.assertEqual([], b.css('button[id$="__action_abort"]'))
            self.assertEqual([], b.css('table#containers, table#migrations'))
        text = b.text()
        self.assertNotIn('/auth/login', b.d.current_url)  # logged in, as demo
        self.assertIn('demo', b.css('.navbar, header')[0].text)
        self.assertIn('not authorized', text)
        self.assertNotIn('Container Migrations', text)
        b.shot('9-demo-user')


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(HorizonPanelTest)
    t0 = time.time()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    # A failed setUpClass is an error without a test run: never a negative count.
    passed = max(result.testsRun - failed - skipped, 0)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    report = {
        'numPassedTests': passed, 'numFailedTests': failed, 'numPendingTests': skipped,
        'numTodoTests': 0, 'numRuntimeErrorTestSuites': 0,
        'testResults': [{'name': os.path.abspath(__file__),
                         'status': 'failed' if failed else 'passed'}],
        'startTime': int(t0 * 1000),
    }
    with open(os.path.join(os.path.dirname(RESULTS), 'horizon-browser.json'), 'w') as f:
        json.dump(report, f)
    print('horizon browser test: %d passed, %d failed, %d skipped (screenshots in %s)'
          % (passed, failed, skipped, RESULTS))
    return 0 if result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
