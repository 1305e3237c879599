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

# Lists the processes, other than this shell, that hold this shell's standard output open: a
# daemon that inherited it keeps a caller's pipe open after the run ends.
report_output_holders() {
  local out pid fd holders=()
  out=$(readlink "/proc/$$/fd/1") || return 0
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$pid" = "$$" ] && continue
    [ "$pid" = "$BASHPID" ] && continue
    for fd in 1 2; do
      if [ "$(readlink "/proc/$pid/fd/$fd" 2>/dev/null)" = "$out" ]; then
        holders+=("$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100)")
        break
      fi
    done
  done
  # The follower that prints the log (.ci/run's tail) holds it by design.
  local h
  for h in "${holders[@]}"; do
    case "$h" in *"tail -n +1 -f --pid"*) continue ;; esac
    info "still holds this run's output: $h"
  done
}
