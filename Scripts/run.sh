#!/usr/bin/env bash
# Builds the release binary (when the sources changed) and runs it with the given arguments:
#   Scripts/run.sh [flags] <local-address:port> <remote-address:port> [<remote-address:port>...]
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/build-release.sh
exec .build/release/tcp-fallback "$@"
