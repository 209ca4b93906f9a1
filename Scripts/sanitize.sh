#!/usr/bin/env bash
# Builds the proxy and its tests with AddressSanitizer, then with ThreadSanitizer, and runs the
# end-to-end tests (real sockets, the sanitized proxy binary in its own processes and in the
# test process) under each. Any report fails the run.
#
#   Scripts/sanitize.sh [address|thread]...      (default: both)
#
# Each sanitizer builds into its own folder (.build-asan, .build-tsan): a first build takes a
# few minutes each.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/test-deps.sh

sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(address thread)
for sanitizer in "${sanitizers[@]}"; do
  case "$sanitizer" in
    address) scratch=.build-asan ;;
    thread) scratch=.build-tsan ;;
    *) echo "sanitize: unknown sanitizer \"$sanitizer\" (use address or thread)" >&2; exit 2 ;;
  esac
  echo "sanitize: building with -sanitize=$sanitizer in $scratch" >&2
  swift build --build-tests --scratch-path "$scratch" -Xswiftc -sanitize="$sanitizer" >&2
  # halt_on_error: the first report fails the process (and so the test that started it).
  # Leak checking is off: the Swift runtime's own allocations kept until exit would be
  # reported by every process; descriptors and memory are checked by the tests and soak.
  # One test at a time: run all at once, sanitized and on two cores, the tests that block a
  # thread of the shared task pool starve the others for tens of seconds, past the timeouts
  # of the proxy (the control socket's 30s idle limit) and of the test servers (10s).
  echo "sanitize: end-to-end tests under $sanitizer" >&2
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=0:abort_on_error=1 \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    swift test --skip-build --scratch-path "$scratch" --filter EndToEndTests --no-parallel
done
echo "sanitize: clean under ${sanitizers[*]}" >&2
