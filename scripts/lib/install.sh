# Installation functions, shared by scripts/install.sh and the DevStack plugin.
# shellcheck shell=bash

FERRY_APT_PACKAGES=(
  # the two compute hosts and CRIU's runtime needs (socat: post-copy's page-server relay into a host's namespace)
  docker.io iproute2 iptables arping util-linux procps socat
  # the benchmark's peer: Podman with runc (Debian's crun has no CRIU support)
  podman runc
  # the data channel's CA and host certificates (dev cloud, DevStack)
  openssl
  # the development cloud's control plane
  rabbitmq-server keystone
  # [database] connection = mysql+pymysql://... (the dev cloud's --db mariadb, the repository tests' MariaDB leg)
  mariadb-server mariadb-client
  # the dev cloud's --db galera and the Galera tests: the replication provider, rsync state transfers
  galera-4 rsync
  # OpenStack clients, the interop peer and the CLI plugin's base
  python3-openstackclient python3-oslo.messaging python3-osc-lib python3-setuptools
  # test images are built locally from these binaries
  busybox-static redis-server
  # ... and the applications nobody here wrote (src/devcloud/images.ts: ferry/postgres, ferry/nginx)
  postgresql-15 nginx
  # CRIU build dependencies (docs/platform-facts.md)
  build-essential patch pkgconf xz-utils libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
  protobuf-compiler libnl-3-dev libnet1-dev libcap-dev libbsd-dev libnftables-dev
  libgnutls28-dev uuid-dev python3-protobuf
  # linting the DevStack plugin
  shellcheck
  # the Horizon panel, the tempest plugin, and the browser test that drives the panel
  openstack-dashboard python3-tempest chromium chromium-driver python3-selenium
)

ferry_install_apt_packages() {
  local missing=() p
  for p in "${FERRY_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    info "all ${#FERRY_APT_PACKAGES[@]} Debian packages already installed"
    return 0
  fi
  info "installing ${#missing[@]} Debian packages: ${missing[*]}"
  apt-get update -q
  # Services must not start from the package scripts: the development cloud starts its own.
  local had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy -eq 1 ] || printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    | grep -E '^(Setting up|Unpacking) ' | sed 's/^/    /' || true
  [ $had_policy -eq 1 ] || rm -f /usr/sbin/policy-rc.d
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || die "package $p did not install"
  done
}

# version_ge A B: true when version A >= B (dotted numbers)
# CRIU's page server (post-copy) asks for a pipe of ~3.3 MB; above fs.pipe-max-size (1 MiB by
# default) the kernel refuses unless the caller has CAP_SYS_RESOURCE, which root lacks in the
# containers Ferry is developed and tested in (docs/platform-facts.md). Raised for this boot;
# ferry-compute raises it again when a post-copy runs. Hosts whose root has the capability need nothing.
FERRY_PIPE_MAX_SIZE=4194304
ferry_raise_pipe_max_size() {
  local now
  now=$(cat /proc/sys/fs/pipe-max-size 2>/dev/null || echo 0)
  if [ "$now" -ge "$FERRY_PIPE_MAX_SIZE" ]; then
    info "fs.pipe-max-size is $now (post-copy needs $FERRY_PIPE_MAX_SIZE)"
  elif echo "$FERRY_PIPE_MAX_SIZE" > /proc/sys/fs/pipe-max-size 2>/dev/null; then
    info "fs.pipe-max-size raised from $now to $FERRY_PIPE_MAX_SIZE (CRIU's page server, post-copy)"
  else
    info "WARNING: cannot raise fs.pipe-max-size ($now) to $FERRY_PIPE_MAX_SIZE: ferry-compute reports post-copy unsupported here"
  fi
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

criu_usable() { # criu_usable BINARY
  local bin=$1 v
  [ -x "$bin" ] || return 1
  v=$("$bin" --version 2>/dev/null | awk '/^Version:/ {print $2}')
  [ -n "$v" ] && version_ge "$v" 4.2 || return 1
  "$bin" check >/dev/null 2>&1
}

# Ferry's change to CRIU: root here may lack CAP_SYS_RESOURCE, and then an unpatched CRIU cannot
# dump any process of another user (docs/operations.md, "CRIU and non-root processes").
FERRY_CRIU_PATCH="$FERRY_ROOT/scripts/criu/0001-rlimits-from-proc-on-eperm.patch"

# A build carries the patch when `criu --version` says so and the stamp beside the binary holds
# this patch file's sha256 (a changed patch rebuilds CRIU).
criu_patched() { # criu_patched BINARY
  local bin=$1
  "$bin" --version 2>/dev/null | grep -qx 'Ferry-patch: rlimits-from-proc' || return 1
  [ "$(cat "$bin.ferry-patch" 2>/dev/null)" = "$(sha256sum "$FERRY_CRIU_PATCH" | awk '{print $1}')" ]
}

# CRIU 4.2+ with Ferry's patch that passes `criu check`: the one found if it is such a build,
# else built from Debian's newer source package (docs/platform-facts.md: bookworm's 3.17 and 4.1
# cannot dump TCP sockets here) with the patch applied.
ferry_install_criu() {
  local found
  [ -f "$FERRY_CRIU_PATCH" ] || die "Ferry's CRIU patch is missing: $FERRY_CRIU_PATCH"
  found=$(command -v criu || true)
  if [ -n "$found" ] && criu_usable "$found"; then
    if criu_patched "$found"; then
      info "CRIU $("$found" --version | awk '/^Version:/ {print $2}') at $found has Ferry's patch and passes criu check"
      return 0
    fi
    info "CRIU at $found lacks Ferry's patch ($(basename "$FERRY_CRIU_PATCH")) or an older one is built in: rebuilding"
  fi
  local build=/var/cache/ferry/criu-build src_list=/etc/apt/sources.list.d/ferry-criu-src.list
  mkdir -p "$build"
  local mirror
  # The mirror is whatever this machine already uses; never hard-code a host name.
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources"
  info "fetching CRIU source from Debian's newer suites (mirror from debian.sources)"
  printf 'deb-src %s sid main\ndeb-src %s experimental main\n' "$mirror" "$mirror" > "$src_list"
  apt-get update -q -o Dir::Etc::sourcelist="$src_list" -o Dir::Etc::sourceparts=- >/dev/null
  local versions v got="" refused=""
  versions=$(apt-cache showsrc criu 2>/dev/null | awk '/^Version:/ {print $2}' | sort -rV | uniq)
  for v in $versions; do
    version_ge "${v%%-*}" 4.2 || continue
    info "trying criu $v"
    rm -rf "${build:?}"/*
    (cd "$build" && apt-get source --download-only "criu=$v" >/dev/null 2>&1) || true
    ls "$build"/criu_*.orig.tar.* >/dev/null 2>&1 || continue
    # The newest source the patch applies to; one it does not fit is named, then an older one tried.
    if (cd "$build" && tar xf criu_*.orig.tar.* && cd criu-*/ && patch -p1 --forward --batch --dry-run <"$FERRY_CRIU_PATCH" >patch.log 2>&1); then
      got=$v
      break
    fi
    info "WARNING: Ferry's CRIU patch does not apply to criu $v ($(grep -m1 -i 'failed\|can.t find\|reversed' "$build"/criu-*/patch.log || echo 'see patch.log'))"
    refused="$refused $v"
  done
  rm -f "$src_list"
  apt-get update -q >/dev/null # back to bookworm only
  if [ -z "$got" ] && [ -n "$refused" ]; then
    die "Ferry's CRIU patch ($FERRY_CRIU_PATCH) applies to none of the CRIU sources Debian offers (tried:$refused): update the patch for that CRIU"
  fi
  [ -n "$got" ] || die "no CRIU >= 4.2 source could be downloaded from Debian"
  info "building CRIU $got with $(basename "$FERRY_CRIU_PATCH") (about 30 s on 2 cores)"
  (cd "$build"/criu-*/ && patch -p1 --forward --batch <"$FERRY_CRIU_PATCH" >>patch.log 2>&1) \
    || die "Ferry's CRIU patch failed to apply to criu $got; see $build/criu-*/patch.log"
  (cd "$build"/criu-*/ && make -j"$(nproc)" criu >build.log 2>&1) \
    || die "CRIU build failed; see $build/criu-*/build.log"
  install -m 0755 "$build"/criu-*/criu/criu /usr/local/sbin/criu
  sha256sum "$FERRY_CRIU_PATCH" | awk '{print $1}' > /usr/local/sbin/criu.ferry-patch
  hash -r
  criu_usable /usr/local/sbin/criu || die "the built CRIU does not pass 'criu check'"
  criu_patched /usr/local/sbin/criu || die "the built CRIU does not report Ferry's patch in 'criu --version'"
  info "installed $(/usr/local/sbin/criu --version | head -1) with Ferry's patch as /usr/local/sbin/criu"
}

ferry_install_node_deps() { # ferry_install_node_deps DIR
  local dir=$1
  if [ -f "$dir/node_modules/.package-lock.json" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    info "node_modules is up to date"
  else
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  fi
  info "building TypeScript"
  (cd "$dir" && npx tsc -p tsconfig.json) || die "TypeScript build failed"
}

# The OpenStack client plugin (osc-plugin/, Python package ferryclient) for Debian's
# /usr/bin/python3, which has python3-openstackclient: offline, without pip. setuptools
# writes the package metadata (entry points) with `egg_info`; the package and that
# metadata are copied into /usr/local/lib/python3.X/dist-packages, replacing any earlier
# copy, so re-running it is harmless and picks up changes.
ferry_install_osc_plugin() { # ferry_install_osc_plugin DIR
  local dir=$1 py=${FERRY_OSC_PYTHON:-/usr/bin/python3} site tmp
  [ -f "$dir/setup.cfg" ] || die "no osc plugin in $dir"
  "$py" -c 'import openstackclient, osc_lib, setuptools' 2>/dev/null \
    || die "$py lacks python3-openstackclient, python3-osc-lib or python3-setuptools"
  site=${FERRY_OSC_SITE:-$("$py" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')}
  tmp=$(mktemp -d)
  # egg_info writes into the tree it runs in: run it on a copy, keep the checkout clean.
  cp -r "$dir/setup.py" "$dir/setup.cfg" "$dir/ferryclient" "$tmp/"
  if ! (cd "$tmp" && "$py" setup.py -q egg_info --egg-base "$tmp" >/dev/null 2>"$tmp/egg_info.log"); then
    cat "$tmp/egg_info.log" >&2
    rm -rf "$tmp"
    die "setup.py egg_info failed for $dir"
  fi
  local egg version
  egg=$(find "$tmp" -maxdepth 1 -name '*.egg-info' -type d | head -1)
  version=$(awk '/^Version:/ {print $2; exit}' "$egg/PKG-INFO")
  mkdir -p "$site"
  rm -rf "$site/ferryclient" "$site"/python_ferryclient-*.egg-info
  find "$tmp/ferryclient" -name __pycache__ -prune -exec rm -rf {} +
  rm -rf "$tmp/ferryclient/tests"
  cp -r "$tmp/ferryclient" "$site/ferryclient"
  cp -r "$egg" "$site/python_ferryclient-$version.egg-info"
  "$py" -m compileall -q "$site/ferryclient" >/dev/null || true
  rm -rf "$tmp"
  "$py" -c 'import importlib.metadata as m; eps = [e.name for e in m.entry_points(group="openstack.cli.extension")]; assert "container_migration" in eps, eps' \
    || die "the openstack.cli.extension entry point of ferryclient is not visible to $py"
  info "ferryclient $version installed for $py in $site"
}

# A Python package of this repository (setup.cfg + package dir) for /usr/bin/python3, offline,
# the way ferry_install_osc_plugin does it: `egg_info` on a copy writes the metadata (entry
# points), then the package and its metadata replace any earlier copy in the site directory.
ferry_install_py_package() { # ferry_install_py_package DIR PACKAGE DIST_NAME
  local dir=$1 pkg=$2 dist=$3 py=${FERRY_PY:-/usr/bin/python3} site tmp egg version
  [ -f "$dir/setup.cfg" ] || die "no Python package in $dir"
  site=${FERRY_PY_SITE:-$("$py" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')}
  tmp=$(mktemp -d)
  cp -r "$dir/setup.py" "$dir/setup.cfg" "$dir/$pkg" "$tmp/"
  if ! (cd "$tmp" && "$py" setup.py -q egg_info --egg-base "$tmp" >/dev/null 2>"$tmp/egg_info.log"); then
    cat "$tmp/egg_info.log" >&2
    rm -rf "$tmp"
    die "setup.py egg_info failed for $dir"
  fi
  egg=$(find "$tmp" -maxdepth 1 -name '*.egg-info' -type d | head -1)
  version=$(awk '/^Version:/ {print $2; exit}' "$egg/PKG-INFO")
  mkdir -p "$site"
  rm -rf "${site:?}/$pkg" "$site/${dist//-/_}"-*.egg-info
  find "$tmp/$pkg" -name __pycache__ -prune -exec rm -rf {} +
  cp -r "$tmp/$pkg" "$site/$pkg"
  cp -r "$egg" "$site/${dist//-/_}-$version.egg-info"
  "$py" -m compileall -q "$site/$pkg" >/dev/null || true
  rm -rf "$tmp"
  info "$pkg $version installed for $py in $site"
}

# The tempest plugin (tempest-plugin/, ferry_tempest_plugin): `tempest list-plugins` shows it.
ferry_install_tempest_plugin() { # ferry_install_tempest_plugin DIR
  local py=${FERRY_PY:-/usr/bin/python3}
  "$py" -c 'import tempest.test_discover.plugins' 2>/dev/null || die "$py lacks python3-tempest"
  ferry_install_py_package "$1" ferry_tempest_plugin ferry-tempest-plugin
  "$py" -c 'import importlib.metadata as m; eps = [e.name for e in m.entry_points(group="tempest.test_plugins")]; assert "ferry_tests" in eps, eps' \
    || die "the tempest.test_plugins entry point of ferry_tempest_plugin is not visible to $py"
}

# The Horizon plugin (horizon-plugin/, ferry_dashboard): the package, its enabled file in
# Horizon's local/enabled, and its settings snippet (Ferry's policy rules) in local_settings.d.
ferry_install_dashboard_plugin() { # ferry_install_dashboard_plugin DIR
  local dir=$1 py=${FERRY_PY:-/usr/bin/python3} dash enabled settings_d f
  dash=${FERRY_HORIZON_DIR:-$("$py" -c 'import os, openstack_dashboard; print(os.path.dirname(openstack_dashboard.__file__))' 2>/dev/null)} \
    || die "$py lacks openstack-dashboard (Horizon)"
  enabled=$dash/local/enabled
  settings_d=${FERRY_HORIZON_SETTINGS_D:-$dash/local/local_settings.d}
  ferry_install_py_package "$dir" ferry_dashboard ferry-dashboard
  mkdir -p "$enabled" "$settings_d"
  for f in "$dir"/ferry_dashboard/enabled/_[0-9]*.py; do
    install -m 0644 "$f" "$enabled/$(basename "$f")"
  done
  for f in "$dir"/ferry_dashboard/local_settings.d/_[0-9]*.py; do
    install -m 0644 "$f" "$settings_d/$(basename "$f")"
  done
  info "Horizon panel enabled in $enabled, settings in $settings_d"
}
