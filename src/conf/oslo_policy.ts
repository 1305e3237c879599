/**
 * [oslo_policy] options: how ferry-api applies its policy defaults (src/identity/policies.ts), as
 * oslo.policy's options of those names. Mutable: ferry-api builds its rules again on SIGHUP.
 * The policy file itself stays `[api] policy_file`.
 */
import { boolOpt } from './opts.js';

export const osloPolicyOpts = {
  enforce_new_defaults: boolOpt(
    true,
    'Enforce the new default rules alone. False: a rule whose default changed (the reads project readers may now do) lets a caller through with its new or its deprecated default, so an administrator granted access through the old default (e.g. an overridden admin_api) keeps it while the deployment moves over; `ferry-status upgrade check` warns while it is false. A rule set in the policy file is enforced as written either way.',
    { mutable: true },
  ),
  enforce_scope: boolOpt(
    false,
    "Refuse a token whose scope (system, domain or project) is not one of the rule's scope_types (shown in the policy sample), with a 403 invalid_scope. False: the request is judged by the rule alone and the mismatch is logged once per rule and scope.",
    { mutable: true },
  ),
};
