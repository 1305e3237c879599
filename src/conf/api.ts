/** [api] options: the REST API service (address, Keystone catalog endpoint and region, policy file, body and page limits, the admin project). */
import { boolOpt, intOpt, strOpt } from './opts.js';

export const apiOpts = {
  bind_host: strOpt('127.0.0.1', 'Address ferry-api listens on.'),
  bind_port: intOpt(9517, 'Port ferry-api listens on.', 1),
  workers: intOpt(1, 'ferry-api processes serving the port together (node:cluster); each has its own bus connection. 1: a single process.', 1),
  public_endpoint: strOpt('', 'URL registered in the Keystone catalog; default http://<bind_host>:<bind_port>/v1.'),
  region_name: strOpt('RegionOne', 'Keystone region of the endpoints Ferry registers.'),
  policy_file: strOpt('/etc/ferry/policy.yaml', 'YAML policy overrides (oslo.policy rule syntax).'),
  register_endpoints: boolOpt(true, 'Register the ferry service and its endpoints in the Keystone catalog when ferry-api starts (idempotent).'),
  max_body_bytes: intOpt(65536, 'Largest request body accepted.', 1024),
  max_limit: intOpt(
    1000,
    'Most items one page of a list returns (GET /v1/migrations, /v1/containers), also when the caller asks for more or sets no limit; a `next` link leads on.',
    1,
  ),
  admin_project_name: strOpt(
    'admin',
    "The admin project (Keystone's [resource] admin_project_name): the admin role gives administrator rights (context_is_admin) only in this project, or in a system-scoped token. Empty: trust the is_admin_project flag Keystone puts in the token.",
  ),
  admin_project_domain_name: strOpt('Default', "Domain of the admin project (Keystone's [resource] admin_project_domain_name)."),
};
