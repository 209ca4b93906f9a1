#!/usr/bin/env bash
# Runs the whole test suite: unit tests and end-to-end tests with real sockets and processes.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/test-deps.sh
swift build --build-tests
swift test --skip-build "$@"
