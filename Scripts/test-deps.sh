#!/usr/bin/env bash
# Installs what the tests need beyond the build (servers, tools, the Prometheus parser);
# Scripts/test.sh and Scripts/sanitize.sh both run it.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/install-deps.sh libsystemd-dev libyaml-dev pkg-config systemd mandoc python3 python3-pip golang-go mariadb-server mariadb-client python3-seccomp etcd-server
# The metrics test parses /metrics with the reference Prometheus parser.
python3 -c 'import prometheus_client' 2>/dev/null ||
  python3 -m pip install --quiet --root-user-action=ignore prometheus_client ||
  python3 -m pip install --quiet --break-system-packages prometheus_client
