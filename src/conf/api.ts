import { boolOpt, intOpt, strOpt } from './opts.js';

export const apiOpts = {
  bind_host: strOpt('127.0.0.1', 'Address ferry-api listens on.'),
  bind_port: intOpt(9517, 'Port ferry-api listens on.', 1),
  public_endpoint: strOpt('', 'URL registered in the Keystone catalog; default http://<bind_host>:<bind_port>/v1.'),
  region_name: strOpt('RegionOne', 'Keystone region of the endpoints Ferry registers.'),
  policy_file: strOpt('/etc/ferry/policy.yaml', 'YAML policy overrides (oslo.policy rule syntax).'),
  register_endpoints: boolOpt(true, 'Register the ferry service and its endpoints in the Keystone catalog when ferry-api starts (idempotent).'),
  max_body_bytes: intOpt(65536, 'Largest request body accepted.', 1024),
};
