#!/usr/bin/env bash
# Split writes with three proxies as a group (-etcd-group) and as three independent proxies,
# side by side: see Benchmarks/group-split.py for what it does and prints.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/install-deps.sh etcd-server python3 iproute2
Scripts/build-release.sh
exec python3 Benchmarks/group-split.py "$PWD/.build/release/tcp-fallback"
