#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs every test of Ferry on this machine: installs what is missing, brings up the
# development cloud (RabbitMQ, Keystone, two Docker engines with CRIU, Ferry's services),
# then lint, unit tests and integration tests against those real services.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need_root
cd "$FERRY_ROOT"

bash scripts/install.sh

# Tests that need another shape (Neutron, Galera, a RabbitMQ cluster, more hosts) change it and put it back.
step "development cloud"
node dist/cmd/devcloud.js up

step "lint (eslint, prettier's format, tsc on the tests, shellcheck)"
npx eslint src test
npx prettier --check "src/**/*.ts" "test/**/*.ts"
npx tsc --noEmit -p tsconfig.test.json
shellcheck -x scripts/*.sh scripts/lib/*.sh .ci/run

mkdir -p results
# Reports of earlier runs must not stand in for steps that crash now.
rm -f results/jest-unit.json results/jest-integration.json results/tempest.json results/horizon-browser.json
export NODE_OPTIONS=--experimental-vm-modules
export FERRY_LOG_LEVEL=${FERRY_LOG_LEVEL:-warn}
status=0

step "unit tests"
npx jest --selectProjects unit --json --outputFile=results/jest-unit.json || status=1

step "integration tests (real RabbitMQ, Keystone, Docker engines, CRIU; one file at a time)"
# The fault tests write one row each for README's "Faults survived" table: this run's rows only.
rm -f results/faults.jsonl
# No --forceExit: a test that leaves a socket, timer or child process open shows as "Jest did not exit".
# Bounded (about 20 minutes on 2 cores): a jest kept alive by such a leak fails the run here, with its
# report already written, instead of holding CI until its own limit.
timeout -k 30 3000 npx jest --selectProjects integration --runInBand --testTimeout=300000 \
  --json --outputFile=results/jest-integration.json || { status=1; info "integration tests failed, or jest did not exit (a leaked handle)"; }

node scripts/faults-table.mjs > results/faults-table.md && echo "    faults survived: results/faults-table.md" || status=1

step "tempest: tempest run --regex ferry_tempest_plugin (API and scenario tests, dev cloud's workspace)"
FERRY_TEMPEST_REPORT=results/tempest.json tempest-plugin/tools/devcloud-tempest.sh || status=1

step "Horizon in a browser (headless Chromium, Selenium; screenshots in results/horizon/)"
/usr/bin/python3 test/integration/horizon/browser_test.py || status=1

report_output_holders

step "summary (jest, tempest, browser)"
node scripts/jest-summary.mjs results/jest-unit.json results/jest-integration.json \
  results/tempest.json results/horizon-browser.json || status=1
exit $status
