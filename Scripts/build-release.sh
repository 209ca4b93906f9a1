#!/usr/bin/env bash
# Builds the release binary, .build/release/tcp-fallback, with its build dependencies.
#
# The Swift runtime and Foundation are linked in statically (--static-swift-stdlib): the
# binary then runs on a machine without the Swift toolchain (it needs only libc, libstdc++ and
# libsystemd), and it maps only the runtime code it uses: RSS at start is about 15 MiB
# instead of 18 MiB, of which the shared libraries of the runtime were most.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/install-deps.sh libsystemd-dev libyaml-dev pkg-config
swift build -c release --product tcp-fallback --static-swift-stdlib >&2
