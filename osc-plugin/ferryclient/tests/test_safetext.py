"""Names and messages from the API reach the terminal without escapes: a container named with
terminal escape sequences shows them as visible text, in lists, shows and error lines.

Run: cd osc-plugin && /usr/bin/python3 -m unittest discover -v
"""
import unittest

from keystoneauth1 import session as ks_session

from ferryclient import exceptions
from ferryclient.safetext import clean, printable
from ferryclient.tests import fakeapi
from ferryclient.tests.fakeapi import FakeFerry
from ferryclient.v1 import client as v1_client

# Sets the window title, then turns the rest of the screen red.
EVIL = 'web\x1b]0;owned\x07\x1b[31m\u202egnp.exe'


class PrintableTest(unittest.TestCase):
    def test_escapes_become_visible_text(self):
        self.assertEqual(printable(EVIL), 'web\\x1b]0;owned\\x07\\x1b[31m\\u202egnp.exe')
        self.assertEqual(printable('a\x9bb\x7fc\x00'), 'a\\x9bb\\x7fc\\x00')

    def test_plain_text_newlines_and_tabs_untouched(self):
        self.assertEqual(printable('redis-1 on compute2\n\tline two é ✓'), 'redis-1 on compute2\n\tline two é ✓')

    def test_clean_walks_keys_lists_and_leaves_other_values(self):
        self.assertEqual(clean({'n\x1b': ['\x1b[2J', 3, None, True]}), {'n\\x1b': ['\\x1b[2J', 3, None, True]})


class ClientTest(unittest.TestCase):
    def setUp(self):
        fakeapi.CONTAINERS[EVIL] = 'compute1'
        self.fake = FakeFerry().__enter__()
        self.client = v1_client.Client(ks_session.Session(), endpoint_override=self.fake.url)

    def tearDown(self):
        self.fake.__exit__()
        del fakeapi.CONTAINERS[EVIL]

    def assertNoEscapes(self, text):
        self.assertNotIn('\x1b', text)
        self.assertNotIn('\x07', text)
        self.assertNotIn('\u202e', text)

    def test_names_in_answers_are_printable(self):
        m = self.client.migrate(EVIL, host='compute2')
        self.assertEqual(m['container_name'], printable(EVIL))
        shown = self.client.get_migration(m['uuid'])
        self.assertNoEscapes(str(shown))
        for listed in self.client.list_migrations():
            self.assertNoEscapes(str(listed))

    def test_names_in_error_lines_are_printable(self):
        with self.assertRaises(exceptions.NotFound) as cm:
            self.client.migrate('gone\x1b[2J')
        self.assertNoEscapes(str(cm.exception))
        self.assertIn('gone\\x1b[2J', str(cm.exception))


if __name__ == '__main__':
    unittest.main()
