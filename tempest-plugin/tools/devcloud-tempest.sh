#!/usr/bin/env bash
# Runs Ferry's tempest plugin as OpenStack CI does, against the development cloud: a tempest
# workspace (default .devcloud/tempest), its etc/tempest.conf written from
# `ferry-devcloud status --json`, then `tempest run --regex ferry_tempest_plugin`.
# Usage: tempest-plugin/tools/devcloud-tempest.sh [tempest run options...]
# Environment: FERRY_TEMPEST_WORKSPACE (the workspace), FERRY_TEMPEST_CONCURRENCY (default 1),
# FERRY_TEMPEST_REPORT (also write the counts as a jest-style JSON report there).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WS=${FERRY_TEMPEST_WORKSPACE:-$ROOT/.devcloud/tempest}
cd "$ROOT"

command -v tempest >/dev/null || { echo "tempest is not installed (scripts/install.sh)" >&2; exit 1; }
plugins=$(tempest list-plugins)
[[ "$plugins" == *ferry_tests* ]] \
  || { echo "ferry_tempest_plugin is not installed (scripts/install.sh)" >&2; exit 1; }

# Exit 3: a part of the cloud is down; the description is still printed (the tests say what fails).
rc=0
status=$(node dist/cmd/devcloud.js status --json) || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "ferry-devcloud status failed (exit $rc)" >&2; exit 1; }
if [ ! -d "$WS/etc" ]; then
  # One registered workspace name per workspace path; a registration left by a workspace
  # whose folder was deleted (a new dev cloud) is replaced.
  name=ferry-devcloud-$(printf '%s' "$WS" | sha256sum | cut -c1-8)
  tempest workspace remove --name "$name" >/dev/null 2>&1 || true
  mkdir -p "$(dirname "$WS")"
  tempest init --name "$name" "$WS" >/dev/null 2>&1 \
    || { echo "tempest init $WS failed" >&2; tempest init --name "$name" "$WS"; exit 1; }
fi
printf '%s' "$status" | /usr/bin/python3 "$ROOT/tempest-plugin/tools/write_tempest_conf.py" "$WS"
echo "    tempest workspace $WS (config $WS/etc/tempest.conf)" >&2

if [ -z "${FERRY_TEMPEST_REPORT:-}" ]; then
  cd "$WS"
  exec tempest run --regex ferry_tempest_plugin --concurrency "${FERRY_TEMPEST_CONCURRENCY:-1}" "$@"
fi
# With FERRY_TEMPEST_REPORT=FILE: also a report in the shape of jest's JSON (for the summary).
rm -f "$FERRY_TEMPEST_REPORT"
rc=0
(cd "$WS" && tempest run --regex ferry_tempest_plugin --concurrency "${FERRY_TEMPEST_CONCURRENCY:-1}" "$@") \
  2>&1 | tee "$WS/last-run.log" || rc=$?
/usr/bin/python3 "$ROOT/tempest-plugin/tools/tempest_report.py" "$WS/last-run.log" "$FERRY_TEMPEST_REPORT" || rc=1
exit $rc
