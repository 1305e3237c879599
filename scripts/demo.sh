#!/usr/bin/env bash
# The main job: installs what is missing, brings up the development cloud (RabbitMQ,
# Keystone, two compute hosts with Docker and CRIU, Ferry's services) and live-migrates
# the demo containers through Ferry's REST API, printing progress and downtime.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need_root
cd "$FERRY_ROOT"

bash scripts/install.sh
step "development cloud, then live migration of the demo containers"
node dist/cmd/devcloud.js demo
