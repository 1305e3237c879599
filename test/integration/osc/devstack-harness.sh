#!/usr/bin/env bash
# Runs Ferry's DevStack plugin functions outside DevStack: DevStack's helpers are stubbed
# here (iniset/inidelete really edit the INI file; the Keystone, process and package
# helpers append their arguments to $CALLS). Usage:
#   CALLS=/tmp/calls WORK=/tmp/dir bash devstack-harness.sh 'configure_ferry' ['more shell'...]
# Every argument is evaluated in order after settings and lib/ferry are sourced.
# The globals below are read by the sourced plugin files.
# shellcheck disable=SC2034
set -euo pipefail
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HARNESS_DIR/../../.." && pwd)
: "${CALLS:?}" "${WORK:?}"

record() { printf '%s\n' "$*" >> "$CALLS"; }

# --- DevStack's globals as stack.sh would have them ----------------------------------
DEST=$WORK/opt/stack
DATA_DIR=$WORK/data
STACK_USER=$(id -un)
SERVICE_HOST=192.0.2.10
HOST_IP=192.0.2.11
SERVICE_PROTOCOL=http
SERVICE_LISTEN_ADDRESS=0.0.0.0
SERVICE_TIMEOUT=60
REGION_NAME=RegionTwo
KEYSTONE_SERVICE_URI=http://192.0.2.10/identity
SERVICE_PASSWORD=devstack-service-secret
SERVICE_PROJECT_NAME=service
SERVICE_DOMAIN_NAME=Default
MEMCACHE_SERVERS=localhost:11211
SSL_BUNDLE_FILE=/opt/stack/data/ca-bundle.pem
ENABLED_SERVICES=${ENABLED_SERVICES:-key,rabbit}
# The plugin code is this checkout (DevStack would have cloned it to $DEST/ferry).
FERRY_DIR=$REPO
FERRY_CONF_DIR=$WORK/etc/ferry
FERRY_DOCKER_DAEMON_JSON=$WORK/etc/docker/daemon.json
FERRY_CRIU_RUNC_CONF=$WORK/etc/criu/runc.conf

# --- stubs of DevStack's functions --------------------------------------------------
die() { local line=$1; shift; echo "DIE[$line]: $*" >&2; record "die $*"; exit 3; }
echo_summary() { record "echo_summary $*"; }
sudo() { "$@"; }
is_service_enabled() {
    local s
    for s in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0
    done
    return 1
}
# As DevStack's: a service that local.conf disabled stays disabled.
DISABLED_SERVICES=${DISABLED_SERVICES:-}
enable_service() {
    local s
    for s in "$@"; do
        [[ ",$DISABLED_SERVICES," == *",$s,"* ]] && continue
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] || ENABLED_SERVICES+=",$s"
    done
}
_ini() { /usr/bin/python3 - "$@" <<'PYEOF'
import configparser, sys
op, path, section, opt = sys.argv[1:5]
c = configparser.RawConfigParser(default_section='__none__')
c.optionxform = str
c.read(path)
if op == 'set':
    if not c.has_section(section):
        c.add_section(section)
    c.set(section, opt, sys.argv[5])
elif c.has_section(section):
    c.remove_option(section, opt)
with open(path, 'w') as f:
    c.write(f)
PYEOF
}
iniset() { record "iniset $*"; _ini set "$@"; }
inidelete() { record "inidelete $*"; _ini del "$@"; }
get_transport_url() { echo "rabbit://stackrabbit:rabbit-secret@192.0.2.10:5672/"; }
# What DevStack's lib/keystone writes (its options, including ones Ferry does not read).
configure_keystone_authtoken_middleware() {
    local conf=$1 user=$2 section=${3:-keystone_authtoken}
    record "configure_keystone_authtoken_middleware $*"
    iniset "$conf" "$section" auth_type password
    iniset "$conf" "$section" interface public
    iniset "$conf" "$section" auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$conf" "$section" username "$user"
    iniset "$conf" "$section" password "$SERVICE_PASSWORD"
    iniset "$conf" "$section" user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf" "$section" project_name "$SERVICE_PROJECT_NAME"
    iniset "$conf" "$section" project_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf" "$section" cafile "$SSL_BUNDLE_FILE"
    iniset "$conf" "$section" memcached_servers "$MEMCACHE_SERVERS"
    if [[ -n "${4:-}" ]]; then iniset "$conf" "$section" service_type "$4"; fi
}
create_service_user() { record "create_service_user $*"; }
get_or_create_service() { record "get_or_create_service $*"; echo "svc-id-1"; }
get_or_create_endpoint() { record "get_or_create_endpoint $*"; echo "ep-id-1"; }
run_process() { record "run_process $*"; }
stop_process() { record "stop_process $*"; }
install_package() { record "install_package $*"; }
restart_service() { record "restart_service $*"; }
wait_for_service() { record "wait_for_service $*"; }

# --- the plugin, as DevStack loads it ------------------------------------------------
# shellcheck source=devstack/settings
source "$REPO/devstack/settings"
# shellcheck source=devstack/lib/ferry
source "$REPO/devstack/lib/ferry"

for step in "$@"; do
    eval "$step"
done
