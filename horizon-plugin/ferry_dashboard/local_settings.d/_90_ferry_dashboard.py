# Horizon settings snippet of Ferry's dashboard (installed into local_settings.d): Ferry's
# policy rules, so that the panel hides what Ferry would refuse. The defaults mirror Ferry's
# own (migrating is admin-only); the operator's overrides are Ferry's policy.yaml when this
# machine has one, else the plugin's empty file. Executed inside Horizon's settings module.
import os as _ferry_os

try:
    import ferry_dashboard as _ferry_dashboard
    _ferry_conf = _ferry_os.path.join(_ferry_os.path.dirname(_ferry_dashboard.__file__), 'conf')
    _ferry_policy = _ferry_os.environ.get('FERRY_POLICY_FILE') or '/etc/ferry/policy.yaml'
    if not _ferry_os.path.isfile(_ferry_policy):
        _ferry_policy = _ferry_os.path.join(_ferry_conf, 'container-migration_policy.yaml')
    POLICY_FILES['container-migration'] = _ferry_policy  # noqa: F821 (Horizon's settings)
    DEFAULT_POLICY_FILES['container-migration'] = _ferry_os.path.join(  # noqa: F821
        _ferry_conf, 'default_policies', 'container-migration.yaml')
except ImportError:
    pass
