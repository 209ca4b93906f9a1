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
echo "install-deps: installing ${missing[*]}" >&2
# Servers installed for the tests and benchmarks (mariadb, nginx, haproxy) are started by the
# tests themselves: keep their packages from starting system services meanwhile.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
