/**
 * Every error Ferry raises on purpose is a FerryError with a stable `code`.
 * The `kind` says what sort of failure it is; only the API layer turns a kind into an
 * HTTP status (src/api/errors.ts), and the bus serializes the class name so that a
 * remote peer (TypeScript or Python oslo.messaging) can rebuild it.
 */
export type ErrorKind =
  | 'invalid' // the caller sent something wrong
  | 'unauthorized' // no or bad credentials
  | 'forbidden' // policy says no
  | 'not_found'
  | 'conflict' // the request clashes with the current state
  | 'unavailable' // a dependency (host, bus, identity) is not there right now
  | 'timeout'
  | 'not_acceptable' // the caller asked for an API microversion this server does not have
  | 'internal';

export class FerryError extends Error {
  static readonly code: string = 'ferry_error';
  static readonly kind: ErrorKind = 'internal';
  readonly details: Record<string, unknown>;

  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }

  get code(): string {
    return (this.constructor as typeof FerryError).code;
  }

  get kind(): ErrorKind {
    return (this.constructor as typeof FerryError).kind;
  }
}

function define(code: string, kind: ErrorKind, name: string): typeof FerryError {
  // A named class per code keeps `instanceof` and stack traces readable.
  const cls = {
    [name]: class extends FerryError {
      static override readonly code = code;
      static override readonly kind = kind;
    },
  }[name];
  Object.defineProperty(cls, 'name', { value: name });
  registry.set(name, cls);
  return cls;
}

const registry = new Map<string, typeof FerryError>();

/** Look an error class up by its class name (as carried in an oslo.messaging failure). */
export function errorClassByName(name: string): typeof FerryError | undefined {
  return registry.get(name);
}

export function allErrorClasses(): ReadonlyMap<string, typeof FerryError> {
  return registry;
}

// ---- the registry: one line per error, codes never change once released ----
export const InvalidInput = define('invalid_input', 'invalid', 'InvalidInput');
/** An OpenStack-API-Version header that does not parse ("container-migration X.Y" or "latest"). */
export const InvalidApiVersion = define('invalid_api_version', 'invalid', 'InvalidApiVersion');
/** A well-formed microversion outside the range this server has; the message names the range. */
export const ApiVersionNotAvailable = define('api_version_not_available', 'not_acceptable', 'ApiVersionNotAvailable');
export const ConfigError = define('config_error', 'invalid', 'ConfigError');
export const NotAuthenticated = define('not_authenticated', 'unauthorized', 'NotAuthenticated');
export const PolicyNotAuthorized = define('policy_not_authorized', 'forbidden', 'PolicyNotAuthorized');
/** The caller may act only within their project, and their token has none (domain- or system-scoped, or unscoped). */
export const ProjectScopeRequired = define('project_scope_required', 'forbidden', 'ProjectScopeRequired');
/** [oslo_policy] enforce_scope: the token's scope (system, domain, project) is not one the rule is meant for. */
export const InvalidScope = define('invalid_scope', 'forbidden', 'InvalidScope');
export const ContainerNotFound = define('container_not_found', 'not_found', 'ContainerNotFound');
export const MigrationNotFound = define('migration_not_found', 'not_found', 'MigrationNotFound');
export const HostNotFound = define('host_not_found', 'not_found', 'HostNotFound');
/** A message speaks for a compute host its sender may not speak for (src/conductor/reporter.ts). */
export const HostIdentityMismatch = define('host_identity_mismatch', 'forbidden', 'HostIdentityMismatch');
export const ImageNotFound = define('image_not_found', 'not_found', 'ImageNotFound');
export const HostDown = define('host_down', 'conflict', 'HostDown');
export const NoValidHost = define('no_valid_host', 'conflict', 'NoValidHost');
/** The named host is disabled by the operator (host maintenance): it takes no migrations. */
export const HostDisabled = define('host_disabled', 'conflict', 'HostDisabled');
export const EvacuationNotFound = define('evacuation_not_found', 'not_found', 'EvacuationNotFound');
export const InvalidMigrationState = define('invalid_migration_state', 'conflict', 'InvalidMigrationState');
/** An agent's record of a migration was asked to go to a stage that cannot follow its current one (compute/records.ts). */
export const InvalidStageTransition = define('invalid_stage_transition', 'conflict', 'InvalidStageTransition');
export const MigrationPreCheckError = define('migration_precheck_failed', 'conflict', 'MigrationPreCheckError');
/** A container spec holds a field outside the allow-list of what Ferry moves (src/compute/docker/allowlist.ts): nothing was created. */
export const ContainerSpecRefused = define('container_spec_refused', 'conflict', 'ContainerSpecRefused');
export const MigrationInProgress = define('migration_in_progress', 'conflict', 'MigrationInProgress');
export const MigrationAborted = define('migration_aborted', 'conflict', 'MigrationAborted');
export const CheckpointFailed = define('checkpoint_failed', 'internal', 'CheckpointFailed');
export const TransferFailed = define('transfer_failed', 'internal', 'TransferFailed');
export const RestoreFailed = define('restore_failed', 'internal', 'RestoreFailed');
export const RollbackFailed = define('rollback_failed', 'internal', 'RollbackFailed');
export const EngineError = define('engine_error', 'internal', 'EngineError');
export const IdentityUnavailable = define('identity_unavailable', 'unavailable', 'IdentityUnavailable');
export const MessagingUnavailable = define('messaging_unavailable', 'unavailable', 'MessagingUnavailable');
export const MessagingTimeout = define('messaging_timeout', 'timeout', 'MessagingTimeout');
/** A step's outcome could not be learned before its deadline (host or bus unreachable): the operator must check. */
export const OutcomeUnknown = define('outcome_unknown', 'unavailable', 'OutcomeUnknown');
/** The target already runs the migrated container: it must not be rolled back (there would be no running copy). */
export const TargetRunsContainer = define('target_runs_container', 'conflict', 'TargetRunsContainer');
/** A request arrived after its caller's deadline: it was dropped without running. */
export const RequestExpired = define('request_expired', 'timeout', 'RequestExpired');
export const UnsupportedVersion = define('unsupported_version', 'invalid', 'UnsupportedVersion');
/**
 * A call needs a newer RPC version than `[upgrade_levels]` lets this service send (a rolling
 * upgrade is under way, or the cap is pinned): details name the method, the version it needs and the cap.
 */
export const RPCVersionCapped = define('rpc_version_capped', 'conflict', 'RPCVersionCapped');
export const NoSuchMethod = define('no_such_method', 'invalid', 'NoSuchMethod');
// data channel (src/compute/datachannel/status.ts gives them their HTTP statuses there)
export const ChannelTokenMissing = define('channel_token_missing', 'unauthorized', 'ChannelTokenMissing');
export const ChannelTokenRefused = define('channel_token_refused', 'forbidden', 'ChannelTokenRefused');
export const PartNotPlanned = define('part_not_planned', 'forbidden', 'PartNotPlanned');
export const PartAlreadySent = define('part_already_sent', 'conflict', 'PartAlreadySent');
export const TransferQuotaExceeded = define('transfer_quota_exceeded', 'invalid', 'TransferQuotaExceeded');
export const UnsafeArchive = define('unsafe_archive', 'invalid', 'UnsafeArchive');
export const TransferCorrupted = define('transfer_corrupted', 'invalid', 'TransferCorrupted');
export const InsufficientStorage = define('insufficient_storage', 'unavailable', 'InsufficientStorage');
export const NoSuchResource = define('no_such_resource', 'not_found', 'NoSuchResource');
export const MethodNotAllowed = define('method_not_allowed', 'invalid', 'MethodNotAllowed');
/** An extraction whose plan was replaced or forgotten (re-plan, rollback): it stops at once and writes nothing more. */
export const ExtractionOutdated = define('extraction_outdated', 'conflict', 'ExtractionOutdated');
/** This conductor no longer holds the claim of a migration or evacuation (its lease ran out and another conductor took it): it stops writing. */
export const ClaimLost = define('claim_lost', 'conflict', 'ClaimLost');
/** The database failed or could not be reached. */
export const DatabaseError = define('database_error', 'unavailable', 'DatabaseError');
/** A failure raised by a remote peer whose class Ferry does not know. */
export const RemoteError = define('remote_error', 'internal', 'RemoteError');
// post-copy (lazy pages)
/** The host cannot do post-copy (no uffd-noncoop, CRIU too old); the message says which. */
export const PostCopyUnsupported = define('post_copy_unsupported', 'conflict', 'PostCopyUnsupported');
/** A post-copy did not finish: the page server or the lazy-pages daemon failed or was aborted. */
export const PostCopyFailed = define('post_copy_failed', 'internal', 'PostCopyFailed');
/** Neutron did not answer, or answered with a server error: nothing is known to have changed. */
export const NetworkUnavailable = define('network_unavailable', 'unavailable', 'NetworkUnavailable');
/** Neutron has no such network, subnet, port, binding or agent. */
export const NetworkResourceNotFound = define('network_resource_not_found', 'not_found', 'NetworkResourceNotFound');
/** Neutron refused a request (its 400 or 409, e.g. a binding on a port that is not a compute port). */
export const NetworkRequestRefused = define('network_request_refused', 'conflict', 'NetworkRequestRefused');
