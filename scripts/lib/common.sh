# Shared shell helpers for Ferry's scripts: progress lines, root check, paths.
# shellcheck shell=bash

FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export FERRY_ROOT

_ferry_t0=$(date +%s)

step() { # step "what is happening"
  printf '\n\033[1m==> [%4ss] %s\033[0m\n' "$(( $(date +%s) - _ferry_t0 ))" "$*"
}

info() { printf '    %s\n' "$*"; }

die() {
  printf '\033[31mERROR: %s\033[0m\n' "$*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run this as root (it installs packages and starts network namespaces)"
}
