#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root, from the repository:
#   contrib/quickstart.sh run    install what is missing, build, and run
#                                collectd in the foreground with the plugin
#                                and write_prometheus on :9103
#   contrib/quickstart.sh test   the same set-up, then every test
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
packages=(gcc make autoconf automake libtool pkg-config libc6-dev libmnl-dev
  check collectd-core collectd-dev libmicrohttpd12 libprotobuf-c1 iproute2
  procps python3)
# The tests also start the real receivers, build the .deb, set NAT rules
# in their namespaces (nft) to compare with conntrack, and judge the
# per-destination figure by a real proxy (haproxy) and client (curl).
test_packages=(prometheus graphite-carbon python3-whisper influxdb
  influxdb-client valgrind debhelper dpkg-dev lintian man-db nftables
  conntrack haproxy curl)

# Packages with a daemon (prometheus, influxdb) start it on install; the
# tests start their own, on loopback in a namespace. Debian's policy-rc.d
# hook stops that for the duration of the install.
apt_install_without_starting_services() {
  local policy=/usr/sbin/policy-rc.d ours=
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy
    chmod 755 $policy
    ours=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@"
  if [ -n "$ours" ]; then
    rm -f $policy
    trap - EXIT
  fi
}

install_missing() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
      grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run as root to install: ${missing[*]}" >&2
    exit 1
  fi
  apt_install_without_starting_services "${missing[@]}"
}

build_plugin() {
  (cd "$top" && { [ -x configure ] || autoreconf -fi; })
  mkdir -p "$build"
  cd "$build"
  [ -f Makefile ] || "$top/configure" --enable-werror
  make -j"$(nproc)"
}

# collectd loads plugins from one directory and refuses symlinks: copy the
# built module next to copies of the stock plugins it runs with.
run_collectd() {
  local run=$build/run stock
  stock=$(collectd -h | sed -n 's/^ *Plugin directory *//p')
  mkdir -p "$run/plugins"
  cp "$build/src/.libs/ephemeral_ports.so" "$stock/write_prometheus.so" \
    "$stock/logfile.so" "$run/plugins/"
  cat >"$run/collectd.conf" <<CONF
BaseDir "$run"
PIDFile "$run/collectd.pid"
PluginDir "$run/plugins"
Interval 10

LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File stdout
  Timestamp true
  PrintSeverity true
</Plugin>

Include "$top/collectd.conf.d/ephemeral_ports.conf"

LoadPlugin write_prometheus
<Plugin write_prometheus>
  Port "9103"
</Plugin>
CONF
  echo "quickstart: serving http://localhost:9103/metrics (Ctrl-C stops)"
  exec collectd -f -C "$run/collectd.conf"
}

case "${1:-}" in
run)
  install_missing "${packages[@]}"
  build_plugin
  run_collectd
  ;;
test)
  install_missing "${packages[@]}" "${test_packages[@]}"
  build_plugin
  make check VERBOSE=1 AM_COLOR_TESTS=no
  make check-package VERBOSE=1 AM_COLOR_TESTS=no
  ;;
*)
  echo "usage: $0 run|test" >&2
  exit 2
  ;;
esac
