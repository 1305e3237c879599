import { intOpt, strOpt } from './opts.js';

/** keystonemiddleware's option names, so an operator's existing section works unchanged. */
export const keystoneAuthtokenOpts = {
  www_authenticate_uri: strOpt('http://127.0.0.1:5000/v3', 'Public Keystone URL announced in WWW-Authenticate.'),
  auth_url: strOpt('http://127.0.0.1:5000/v3', 'Keystone URL the service authenticates against.'),
  auth_type: strOpt('password', 'Only password is supported.', { choices: ['password'] }),
  username: strOpt('ferry', 'Service user.'),
  password: strOpt('', 'Service user password.', { secret: true }),
  project_name: strOpt('service', 'Service project.'),
  user_domain_name: strOpt('Default', 'Domain of the service user.'),
  project_domain_name: strOpt('Default', 'Domain of the service project.'),
  region_name: strOpt('RegionOne', 'Keystone region.'),
  token_cache_time: intOpt(300, 'Seconds a validated token is cached.', 0),
  http_request_max_retries: intOpt(3, 'Retries on connection errors to Keystone.', 0),
  http_connect_timeout: intOpt(10, 'Seconds a request to Keystone may take before it counts as a connection error.', 1),
};
