"""Writes WORKSPACE/etc/tempest.conf (and the accounts file it names) for the development cloud
from `ferry-devcloud status --json` on stdin: Keystone, its admin, demo (member) and
demo-reader users as pre-provisioned accounts, only Ferry available, and the [container_migration]
options the workload tests need (each host's Docker engine, the tenant network, the client
namespace). Usage: ... | /usr/bin/python3 write_tempest_conf.py WORKSPACE"""
import configparser
import json
import os
import sys


def main(workspace):
    status = json.load(sys.stdin)
    ks = status['keystone']
    admin = ks['admin']
    hosts = [h for h in status['hosts'] if h['state'] == 'up']
    conf = configparser.ConfigParser()
    conf.optionxform = str
    conf['DEFAULT'] = {
        'log_dir': os.path.join(workspace, 'logs'),
        'log_file': 'tempest.log',
        'debug': 'false',
    }
    demo = ks['demo']
    accounts = os.path.join(workspace, 'etc', 'accounts.yaml')
    conf['auth'] = {
        'admin_username': admin['username'],
        'admin_password': admin['password'],
        'admin_project_name': admin['project_name'],
        'admin_domain_name': admin['user_domain_name'],
        # Pre-provisioned accounts: Ferry's admin is the admin role in the admin project
        # ([api] admin_project_name), which tempest's dynamic credentials (a new project per
        # test class) would never be. The demo user is the project member.
        'use_dynamic_credentials': 'false',
        'test_accounts_file': accounts,
        'create_isolated_networks': 'false',
    }
    conf['oslo_concurrency'] = {'lock_path': os.path.join(workspace, 'lock')}
    conf['identity'] = {
        'uri_v3': ks['auth_url'],
        'auth_version': 'v3',
        'region': 'RegionOne',
        'v3_endpoint_type': 'publicURL',
    }
    conf['identity-feature-enabled'] = {'api_v2': 'false', 'api_v3': 'true'}
    conf['service_available'] = {
        'ferry': 'true',
        'nova': 'false', 'neutron': 'false', 'cinder': 'false', 'glance': 'false',
        'swift': 'false',
    }
    conf['container_migration'] = {
        'catalog_type': 'container-migration',
        'endpoint_type': 'publicURL',
        'build_timeout': '180',
        'hosts': ','.join(h['name'] for h in hosts[:2]),
        'docker_hosts': ','.join('%s:%s' % (h['name'], h['docker_host']) for h in hosts),
        'fabric_network': status['fabric']['network'],
        'client_netns': status['fabric']['client_netns'],
    }
    os.makedirs(os.path.join(workspace, 'etc'), exist_ok=True)
    os.makedirs(os.path.join(workspace, 'logs'), exist_ok=True)
    os.makedirs(os.path.join(workspace, 'lock'), exist_ok=True)
    accounts_list = [
        {'username': admin['username'], 'password': admin['password'],
         'project_name': admin['project_name'], 'domain_name': admin['user_domain_name'],
         'types': ['admin']},
        {'username': demo['username'], 'password': demo['password'],
         'project_name': demo['project_name'], 'domain_name': demo['user_domain_name'],
         'roles': ['member']},
    ]
    reader = ks.get('reader')
    if reader:
        # Only the reader role in demo: tempest's project_reader (secure RBAC tests).
        accounts_list.append(
            {'username': reader['username'], 'password': reader['password'],
             'project_name': reader['project_name'], 'domain_name': reader['user_domain_name'],
             'roles': ['reader']})
    with open(accounts, 'w') as f:
        # JSON is YAML: the accounts tempest hands out (admin, a member and a reader of demo).
        json.dump(accounts_list, f, indent=2)
    with open(os.path.join(workspace, 'etc', 'tempest.conf'), 'w') as f:
        f.write('# Written by tempest-plugin/tools/write_tempest_conf.py for the development '
                'cloud.\n')
        conf.write(f)


if __name__ == '__main__':
    main(sys.argv[1])
