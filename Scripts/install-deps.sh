#!/usr/bin/env bash
# Installs what building and testing need and a fresh Debian 12 + Swift 6.3 machine may lack.
# Needs root for apt-get; without it, says what to install and stops.
set -euo pipefail
command -v swift >/dev/null || { echo "install-deps: swift is not on PATH; install Swift 6.3 first" >&2; exit 1; }
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
# Servers installed for the tests and benchmarks (mariadb, nginx, haproxy) are started by the
# tests themselves: keep their packages from starting system services meanwhile.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
# Quiet: one line per package; apt's own output only when it fails.
log=$(mktemp)
trap 'rm -f "$log" ${created_policy:+/usr/sbin/policy-rc.d}' EXIT
if ! apt-get update -qq >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps: apt-get update failed" >&2
  exit 1
fi
for package in "${missing[@]}"; do
  echo "install-deps: installing $package" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: installing $package failed" >&2
    exit 1
  fi
done
