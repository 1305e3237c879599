#!/usr/bin/env bash
# npm run bench [-- options]: downtime benchmarks of Ferry beside the manual Docker procedure and
# raw CRIU, on the development cloud (brought up here if needed). Results in results/.
# Options: see `node dist/cmd/bench.js --help` (e.g. --quick, --runs N, --workloads a,b).
# --control-plane: the conductor at scale over a simulated engine (see --control-plane --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " == *" --control-plane "* ]]; then
  # The conductor at scale over a simulated engine: no root, no dev cloud, only the build.
  npm run --silent build
  FERRY_LOG_LEVEL="${FERRY_LOG_LEVEL:-warn}" exec node dist/cmd/bench.js "$@"
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: run as root (CRIU, network namespaces, Docker engines)" >&2
  exit 1
fi
echo "==> install check" >&2
bash scripts/install.sh
echo "==> development cloud" >&2
node dist/cmd/devcloud.js up
echo "==> benchmark" >&2
FERRY_LOG_LEVEL="${FERRY_LOG_LEVEL:-warn}" exec node dist/cmd/bench.js "$@"
