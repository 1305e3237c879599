"""The python-openstackclient plugin hooks (``openstack.cli.extension`` entry point).

OSC loads this module, adds ``build_option_parser``'s options to its global ones, loads the
commands of the ``openstack.container_migration.v1`` group and, on first use,
``make_client(instance)`` builds our client from its authenticated keystoneauth1 session.
"""
import logging
import re

from osc_lib import utils

from ferryclient.v1 import client as v1_client

LOG = logging.getLogger(__name__)

DEFAULT_API_VERSION = '1'
API_VERSION_OPTION = 'os_container_migration_api_version'
API_NAME = 'container_migration'
API_VERSIONS = {
    '1': 'ferryclient.v1.client.Client',
}


def check_api_version(check_version):
    """OSC's hook for --os-container-migration-api-version: '1' (negotiate the highest both
    know) or a microversion 1.N; anything else stops with a clear message. True: OSC's own
    check of API_VERSIONS (major versions only) is skipped."""
    if not re.match(r'^1(\.(0|[1-9][0-9]*))?$', str(check_version)):
        raise ValueError(
            'Invalid --os-container-migration-api-version %s: give 1 (the highest this client '
            'and the server both know) or a microversion 1.N (this client knows %s to %s)'
            % (check_version, v1_client.MIN_API_VERSION, v1_client.MAX_API_VERSION))
    return True


def _cli_option(instance, name):
    """An option of ours from OSC's merged cloud config (argparse, env, clouds.yaml)."""
    opts = getattr(instance, '_cli_options', None)
    config = getattr(opts, 'config', None) or {}
    return config.get(name)


def make_client(instance):
    """Returns a Ferry API client bound to OSC's session, region and interface."""
    version = instance._api_version.get(API_NAME, DEFAULT_API_VERSION)
    check_api_version(version)
    endpoint = _cli_option(instance, 'container_migration_endpoint')
    LOG.debug('Instantiating container-migration client (endpoint override %s)', endpoint)
    return v1_client.Client(
        session=instance.session,
        interface=instance.interface,
        region_name=instance.region_name,
        endpoint_override=endpoint or None,
        # '1' (the default): negotiated with the server; '1.N': that microversion.
        api_version=str(version),
    )


def build_option_parser(parser):
    """Hook to add global options."""
    parser.add_argument(
        '--os-container-migration-api-version',
        metavar='<container-migration-api-version>',
        default=utils.env('OS_CONTAINER_MIGRATION_API_VERSION'),
        help='Container migration (Ferry) API microversion 1.N; default: the '
             'highest both this client and the server know '
             '(Env: OS_CONTAINER_MIGRATION_API_VERSION)',
    )
    parser.add_argument(
        '--os-container-migration-endpoint',
        metavar='<url>',
        default=utils.env('OS_CONTAINER_MIGRATION_ENDPOINT'),
        help='Ferry API endpoint to use instead of the one in the Keystone catalog '
             '(Env: OS_CONTAINER_MIGRATION_ENDPOINT)',
    )
    return parser
