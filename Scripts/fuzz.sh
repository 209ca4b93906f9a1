#!/usr/bin/env bash
# Fuzzes the parsers of bytes from MySQL servers (Sources/MySQLFuzzer) with libFuzzer and
# AddressSanitizer, starting from the seeds in Fuzz/corpus/mysql:
#
#   Scripts/fuzz.sh [SECONDS]     (default 60)
#
# New inputs that reach new code are kept in .build-fuzz/corpus (not committed); a crash is
# written to .build-fuzz/crash-* and the script fails. Replay one with
#   swift build --product MySQLFuzzer && .build/debug/MySQLFuzzer .build-fuzz/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
Scripts/install-deps.sh libsystemd-dev libyaml-dev pkg-config
swift build --product MySQLFuzzer --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld >&2
mkdir -p .build-fuzz/corpus
.build-fuzz/debug/MySQLFuzzer -max_total_time="$seconds" -artifact_prefix=.build-fuzz/ -max_len=4096 \
  .build-fuzz/corpus Fuzz/corpus/mysql
