/**
 * Ferry's policy rules and their defaults, documented one by one (oslo.policy's
 * DocumentedRuleDefault). An operator overrides any of them in policy.yaml; the sample
 * file (etc/ferry/policy.yaml, `ferry-manage policy sample`) is generated from this list.
 *
 * Secure RBAC, as Nova's policies since Wallaby: Keystone's default roles reader < member < admin
 * (each implies the ones below it, so a member's token also carries reader). Migrating, aborting
 * and everything about hosts and evacuations is for administrators, as Nova's live migration;
 * a project's readers (so its members too) list and show their own project's migrations and
 * containers. The old admin-only defaults of those reads stay as deprecated rules: with
 * `[oslo_policy] enforce_new_defaults = false` either default lets a caller through.
 */

export interface PolicyOperation {
  method: string;
  path: string;
}

/** What a token is scoped to (oslo.policy's scope types); an unscoped token counts as project, as there. */
export type ScopeType = 'system' | 'domain' | 'project';

/** A rule's previous default (oslo.policy's DeprecatedRule), kept for a release or more. */
export interface DeprecatedRule {
  /** The rule's previous name: the same name when only the default changed. */
  name: string;
  check_str: string;
  /** Why it changed, for the sample file and the log. */
  reason: string;
  /** The release that deprecated it. */
  since: string;
}

export interface RuleDefault {
  name: string;
  /** oslo.policy check string. */
  check_str: string;
  description: string;
  /** The API calls the rule guards (empty for helper rules used by other rules). */
  operations: PolicyOperation[];
  /**
   * The token scopes the rule is meant for (oslo.policy's scope_types): `project` for a
   * project's resources (migrations, containers), `system` too for the deployment itself
   * (hosts, evacuations). Absent for helper rules, which other rules reach: any scope.
   */
  scope_types?: readonly ScopeType[];
  deprecated_rule?: DeprecatedRule;
}

/** The rule names the API enforces. */
export const POLICY = {
  contextIsAdmin: 'context_is_admin',
  adminApi: 'admin_api',
  projectReaderApi: 'project_reader_api',
  projectMemberApi: 'project_member_api',
  projectReaderOrAdmin: 'project_reader_or_admin',
  projectMemberOrAdmin: 'project_member_or_admin',
  migrationCreate: 'ferry:migration:create',
  migrationDelete: 'ferry:migration:delete',
  migrationForceComplete: 'ferry:migration:force_complete',
  migrationGet: 'ferry:migration:get',
  migrationGetAll: 'ferry:migration:get_all',
  migrationAllProjects: 'ferry:migration:all_projects',
  hostGetAll: 'ferry:host:get_all',
  hostUpdate: 'ferry:host:update',
  hostEvacuate: 'ferry:host:evacuate',
  evacuationGet: 'ferry:evacuation:get',
  evacuationGetAll: 'ferry:evacuation:get_all',
  containerGetAll: 'ferry:container:get_all',
  containerAllProjects: 'ferry:container:all_projects',
} as const;

/** The release whose defaults replaced the admin-only reads. */
const SECURE_RBAC_SINCE = '0.2.0';
const SECURE_RBAC_REASON =
  "Ferry's defaults now know Keystone's reader, member and admin roles: a project's readers (and members, " +
  "whose role implies reader) list and show their own project's migrations and containers, which were admin-only.";

/** The pre-RBAC default of a read that project readers may now do. */
function adminOnlyBefore(name: string): DeprecatedRule {
  return { name, check_str: 'rule:admin_api', reason: SECURE_RBAC_REASON, since: SECURE_RBAC_SINCE };
}

const PROJECT: readonly ScopeType[] = ['project'];
const SYSTEM_OR_PROJECT: readonly ScopeType[] = ['system', 'project'];

export const DEFAULT_POLICIES: readonly RuleDefault[] = [
  {
    name: POLICY.contextIsAdmin,
    check_str: 'role:admin and (is_admin_project:True or system_scope:all)',
    description:
      'Decides what an administrator is: a request whose token passes this rule gets is_admin in its request context. ' +
      "Keystone's convention: the admin role in the admin project ([api] admin_project_name, or Keystone's is_admin_project " +
      'flag when that is empty), or a system-scoped token; the admin role in any other project is not enough.',
    operations: [],
  },
  {
    name: POLICY.adminApi,
    check_str: 'is_admin:True or rule:context_is_admin',
    description: 'Default rule for administrative APIs: the request context is admin.',
    operations: [],
  },
  {
    name: POLICY.projectReaderApi,
    check_str: 'role:reader and project_id:%(project_id)s',
    description: "The reader role (which member and admin imply) in the target's project.",
    operations: [],
  },
  {
    name: POLICY.projectMemberApi,
    check_str: 'role:member and project_id:%(project_id)s',
    description:
      "The member role (which admin implies) in the target's project. No default uses it; it is there for overrides " +
      "such as letting a project's members migrate their own containers.",
    operations: [],
  },
  {
    name: POLICY.projectReaderOrAdmin,
    check_str: 'rule:project_reader_api or rule:context_is_admin',
    description: "A reader of the target's project, or an administrator.",
    operations: [],
  },
  {
    name: POLICY.projectMemberOrAdmin,
    check_str: 'rule:project_member_api or rule:context_is_admin',
    description: "A member of the target's project, or an administrator. No default uses it; it is there for overrides.",
    operations: [],
  },
  {
    name: POLICY.migrationCreate,
    check_str: 'rule:admin_api',
    description: 'Live-migrate a running container to another compute host (the target is given, or chosen by the conductor).',
    operations: [{ method: 'POST', path: '/v1/containers/{container}/migrate' }],
    scope_types: PROJECT,
  },
  {
    name: POLICY.migrationDelete,
    check_str: 'rule:admin_api',
    description:
      'Abort a migration: before the freeze it is cancelled; after it, the container is rolled back to its source host. ' +
      "The target is the migration (project_id: the container's project, else the requester's; user_id: who asked).",
    operations: [{ method: 'DELETE', path: '/v1/migrations/{migration_id}' }],
    scope_types: PROJECT,
  },
  {
    name: POLICY.migrationForceComplete,
    check_str: 'rule:admin_api',
    description:
      "Force a migration to complete (Nova's force-complete): before the freeze it switches to post-copy, where both hosts permit it. " +
      "The target is the migration (project_id: the container's project, else the requester's; user_id: who asked).",
    operations: [{ method: 'POST', path: '/v1/migrations/{migration_id}/action' }],
    scope_types: PROJECT,
  },
  {
    name: POLICY.migrationGet,
    check_str: 'rule:project_reader_or_admin',
    description: "Show one migration. The target is the migration (project_id: the container's project, else the requester's; user_id: who asked).",
    operations: [{ method: 'GET', path: '/v1/migrations/{migration_id}' }],
    scope_types: PROJECT,
    deprecated_rule: adminOnlyBefore(POLICY.migrationGet),
  },
  {
    name: POLICY.migrationGetAll,
    check_str: 'rule:project_reader_or_admin',
    description:
      'List migrations (filters: container, status, source_host, dest_host, user_id, project_id, changes-since, changes-before; ' +
      "paging: limit, marker, sort_key, sort_dir). Without ferry:migration:all_projects only the caller's project is listed.",
    operations: [{ method: 'GET', path: '/v1/migrations' }],
    scope_types: PROJECT,
    deprecated_rule: adminOnlyBefore(POLICY.migrationGetAll),
  },
  {
    name: POLICY.migrationAllProjects,
    check_str: 'rule:admin_api',
    description:
      "See every project's migrations. Without it, lists hold only the caller's project's migrations and another " +
      'project\'s migration is answered "not found" (404), exactly as one that does not exist.',
    operations: [
      { method: 'GET', path: '/v1/migrations' },
      { method: 'GET', path: '/v1/migrations/{migration_id}' },
      { method: 'DELETE', path: '/v1/migrations/{migration_id}' },
    ],
    scope_types: PROJECT,
  },
  {
    name: POLICY.hostGetAll,
    check_str: 'rule:admin_api',
    description: 'List the compute hosts with their state, Docker and CRIU versions and container counts.',
    operations: [{ method: 'GET', path: '/v1/hosts' }],
    scope_types: SYSTEM_OR_PROJECT,
  },
  {
    name: POLICY.hostUpdate,
    check_str: 'rule:admin_api',
    description:
      "Enable or disable a compute host (status, disabled_reason), as Nova's compute service update: the scheduler never " +
      'chooses a disabled host as a target; containers on it run on and may be migrated away.',
    operations: [{ method: 'PUT', path: '/v1/hosts/{host}' }],
    scope_types: SYSTEM_OR_PROJECT,
  },
  {
    name: POLICY.hostEvacuate,
    check_str: 'rule:admin_api',
    description:
      'Evacuate a compute host: live-migrate every running container on it to other hosts (target_host, max_parallel), ' +
      'disabling the host first when it is enabled. Containers that cannot be moved are listed with the reason.',
    operations: [{ method: 'POST', path: '/v1/hosts/{host}/evacuate' }],
    scope_types: SYSTEM_OR_PROJECT,
  },
  {
    name: POLICY.evacuationGet,
    check_str: 'rule:admin_api',
    description: 'Show one evacuation: each container of the host with its migration and outcome, and counts by status.',
    operations: [{ method: 'GET', path: '/v1/evacuations/{evacuation_id}' }],
    scope_types: SYSTEM_OR_PROJECT,
  },
  {
    name: POLICY.evacuationGetAll,
    check_str: 'rule:admin_api',
    description: 'List evacuations, newest first (filters: host, limit).',
    operations: [{ method: 'GET', path: '/v1/evacuations' }],
    scope_types: SYSTEM_OR_PROJECT,
  },
  {
    name: POLICY.containerGetAll,
    check_str: 'rule:project_reader_or_admin',
    description: "List the containers on all compute hosts. Without ferry:container:all_projects only the caller's project's containers are listed.",
    operations: [{ method: 'GET', path: '/v1/containers' }],
    scope_types: PROJECT,
    deprecated_rule: adminOnlyBefore(POLICY.containerGetAll),
  },
  {
    name: POLICY.containerAllProjects,
    check_str: 'rule:admin_api',
    description:
      "Reach every project's containers, labelled or not. Without it, a caller reaches only containers labelled " +
      "org.openstack.project_id=<their project> (set by whoever created the container): another project's or an " +
      'unlabelled one is "not found" (404), exactly as one that does not exist, and a token without a project reaches none (403).',
    operations: [
      { method: 'GET', path: '/v1/containers' },
      { method: 'POST', path: '/v1/containers/{container}/migrate' },
    ],
    scope_types: PROJECT,
  },
];
