"""Post-copy and Nova's force-complete through the REST API: `"post_copy": true` is accepted
where both hosts can and may (the migration completes with mode post-copy and every byte of its
memory counted), refused with a 409 that says why where not; force-complete of a migration that
has ended is a 409, of an unknown one a 404, by a member a 403."""
from tempest import config
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from ferry_tempest_plugin.tests import base

CONF = config.CONF
UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000'


def error_message(exc):
    """The `message` of Ferry's error body (tempest keeps the body under `error`)."""
    body = getattr(exc, 'resp_body', None)
    return body.get('message', '') if isinstance(body, dict) else str(body or exc)


class PostCopyTest(base.BaseContainerMigrationTest):
    needs_workloads = True

    def post_copy_refusals(self):
        """Why the source or the target cannot do post-copy, as they report it (empty: both can)."""
        hosts = {h['name']: h for h in self.client.list_hosts()['hosts']}
        why = []
        for name in (self.source, self.target):
            support = (hosts[name].get('modes') or {}).get('post_copy')
            if not support:
                why.append(name)  # an agent that does not report its modes: named in the refusal
            elif not support['ok']:
                why.append(support['reason'])
        return why

    @decorators.idempotent_id('6de839c5-fc0e-4554-8924-a02aea9ce6bf')
    def test_post_copy_accepted_or_refused_with_the_reason(self):
        name = self.start_workload('postcopy', CONF.container_migration.counter_image)
        refusals = self.post_copy_refusals()
        if refusals:
            ex = self.assertRaises(lib_exc.Conflict, self.client.migrate_container, name,
                                   host=self.target, post_copy=True)
            message = error_message(ex)
            self.assertIn('post-copy is not possible', message)
            for why in refusals:
                self.assertIn(why, message)
            self.assertEqual([], self.client.list_migrations(container=name)['migrations'])
            self.assertEqual('running', self.docker.state(self.source, name))
            return
        m = self.migrate(name, self.target, post_copy=True)
        self.assertEqual(('accepted', 'post-copy'), (m['status'], m['mode']))
        final = self.wait_final(m['uuid'])
        self.assertEqual('completed', final['status'], final.get('error'))
        self.assertEqual('post-copy', final['mode'])
        self.assertGreater(final['memory_total_bytes'], 0)
        self.assertEqual(final['memory_total_bytes'], final['memory_processed_bytes'])
        self.assertEqual(0, final['memory_remaining_bytes'])
        self.assertEqual('running', self.docker.state(self.target, name))
        self.assertIsNone(self.docker.state(self.source, name))

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('04a1e80e-1d35-42e9-9a3c-d14f7a09f7a6')
    def test_force_complete_a_completed_migration(self):
        name = self.start_workload('forced-done', CONF.container_migration.counter_image)
        m = self.migrate(name, self.target)
        self.assertEqual('completed', self.wait_final(m['uuid'])['status'])
        ex = self.assertRaises(lib_exc.Conflict, self.client.force_complete_migration, m['uuid'])
        self.assertIn('already completed', error_message(ex))
        self.assertRaises(lib_exc.Forbidden, self.member_client.force_complete_migration,
                          m['uuid'])
        after = self.client.show_migration(m['uuid'])['migration']
        self.assertEqual(('completed', 'stop-and-copy'), (after['status'], after['mode']))


class PostCopyNegativeTest(base.BaseContainerMigrationTest):

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('a7d4ae1a-14c6-4e72-9ce1-5e98651dd0cd')
    def test_force_complete_unknown_migration(self):
        self.assertRaises(lib_exc.NotFound, self.client.force_complete_migration, UNKNOWN_UUID)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('f13ca286-ad92-4f7d-be99-6431813a89a5')
    def test_post_copy_must_be_true_or_false(self):
        ex = self.assertRaises(lib_exc.BadRequest, self.client.migrate_container,
                               'ferry-tempest-no-such-container', post_copy='yes')
        self.assertIn('post_copy', error_message(ex))
