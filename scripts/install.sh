#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Installs everything Ferry's development cloud, tests and demo need on a Debian 12 machine.
# Idempotent: a second run only checks, in seconds.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/install.sh"
need_root

step "Debian packages"
ferry_install_apt_packages
step "CRIU 4.2+"
ferry_install_criu
step "fs.pipe-max-size for CRIU's page server (post-copy)"
ferry_raise_pipe_max_size
step "npm packages and TypeScript build"
ferry_install_node_deps "$FERRY_ROOT"
if [ -d "$FERRY_ROOT/osc-plugin" ] && declare -F ferry_install_osc_plugin >/dev/null; then
  step "openstack CLI plugin"
  ferry_install_osc_plugin "$FERRY_ROOT/osc-plugin"
fi
if [ -d "$FERRY_ROOT/horizon-plugin" ] && declare -F ferry_install_dashboard_plugin >/dev/null; then
  step "Horizon plugin (ferry_dashboard) and tempest plugin (ferry_tempest_plugin)"
  ferry_install_dashboard_plugin "$FERRY_ROOT/horizon-plugin"
  ferry_install_tempest_plugin "$FERRY_ROOT/tempest-plugin"
fi
step "installed"
