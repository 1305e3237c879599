/**
 * Ferry's policy rules and their defaults, documented one by one (oslo.policy's
 * DocumentedRuleDefault). An operator overrides any of them in policy.yaml; the sample
 * file (etc/ferry/policy.yaml, `ferry-manage policy sample`) is generated from this list.
 * Migrating is admin-only by default, like Nova's live migration.
 */

export interface PolicyOperation {
  method: string;
  path: string;
}

export interface RuleDefault {
  name: string;
  /** oslo.policy check string. */
  check_str: string;
  description: string;
  /** The API calls the rule guards (empty for helper rules used by other rules). */
  operations: PolicyOperation[];
}

/** The rule names the API enforces. */
export const POLICY = {
  contextIsAdmin: 'context_is_admin',
  adminApi: 'admin_api',
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
    name: POLICY.migrationCreate,
    check_str: 'rule:admin_api',
    description:
      'Live-migrate a running container to another compute host (the target is given, or chosen by the conductor).',
    operations: [{ method: 'POST', path: '/v1/containers/{container}/migrate' }],
  },
  {
    name: POLICY.migrationDelete,
    check_str: 'rule:admin_api',
    description:
      'Abort a migration: before the freeze it is cancelled; after it, the container is rolled back to its source host. ' +
      'The target is the migration (project_id: the container\'s project, else the requester\'s; user_id: who asked).',
    operations: [{ method: 'DELETE', path: '/v1/migrations/{migration_id}' }],
  },
  {
    name: POLICY.migrationForceComplete,
    check_str: 'rule:admin_api',
    description:
      "Force a migration to complete (Nova's force-complete): before the freeze it switches to post-copy, where both hosts permit it. " +
      'The target is the migration (project_id: the container\'s project, else the requester\'s; user_id: who asked).',
    operations: [{ method: 'POST', path: '/v1/migrations/{migration_id}/action' }],
  },
  {
    name: POLICY.migrationGet,
    check_str: 'rule:admin_api',
    description: 'Show one migration. The target is the migration (project_id: the container\'s project, else the requester\'s; user_id: who asked).',
    operations: [{ method: 'GET', path: '/v1/migrations/{migration_id}' }],
  },
  {
    name: POLICY.migrationGetAll,
    check_str: 'rule:admin_api',
    description:
      'List migrations (filters: container, status, source_host, dest_host, user_id, project_id, changes-since, changes-before; ' +
      'paging: limit, marker, sort_key, sort_dir). Without ferry:migration:all_projects only the caller\'s project is listed.',
    operations: [{ method: 'GET', path: '/v1/migrations' }],
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
  },
  {
    name: POLICY.hostGetAll,
    check_str: 'rule:admin_api',
    description: 'List the compute hosts with their state, Docker and CRIU versions and container counts.',
    operations: [{ method: 'GET', path: '/v1/hosts' }],
  },
  {
    name: POLICY.hostUpdate,
    check_str: 'rule:admin_api',
    description:
      'Enable or disable a compute host (status, disabled_reason), as Nova\'s compute service update: the scheduler never ' +
      'chooses a disabled host as a target; containers on it run on and may be migrated away.',
    operations: [{ method: 'PUT', path: '/v1/hosts/{host}' }],
  },
  {
    name: POLICY.hostEvacuate,
    check_str: 'rule:admin_api',
    description:
      'Evacuate a compute host: live-migrate every running container on it to other hosts (target_host, max_parallel), ' +
      'disabling the host first when it is enabled. Containers that cannot be moved are listed with the reason.',
    operations: [{ method: 'POST', path: '/v1/hosts/{host}/evacuate' }],
  },
  {
    name: POLICY.evacuationGet,
    check_str: 'rule:admin_api',
    description: 'Show one evacuation: each container of the host with its migration and outcome, and counts by status.',
    operations: [{ method: 'GET', path: '/v1/evacuations/{evacuation_id}' }],
  },
  {
    name: POLICY.evacuationGetAll,
    check_str: 'rule:admin_api',
    description: 'List evacuations, newest first (filters: host, limit).',
    operations: [{ method: 'GET', path: '/v1/evacuations' }],
  },
  {
    name: POLICY.containerGetAll,
    check_str: 'rule:admin_api',
    description: 'List the containers on all compute hosts. Without ferry:container:all_projects only the caller\'s project\'s containers are listed.',
    operations: [{ method: 'GET', path: '/v1/containers' }],
  },
  {
    name: POLICY.containerAllProjects,
    check_str: 'rule:admin_api',
    description:
      "Reach every project's containers, labelled or not. Without it, a caller reaches only containers labelled " +
      'org.openstack.project_id=<their project> (set by whoever created the container): another project\'s or an ' +
      'unlabelled one is "not found" (404), exactly as one that does not exist, and a token without a project reaches none (403).',
    operations: [
      { method: 'GET', path: '/v1/containers' },
      { method: 'POST', path: '/v1/containers/{container}/migrate' },
    ],
  },
];
