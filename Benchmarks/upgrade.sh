#!/usr/bin/env bash
# An upgrade under load: clients connect through tcp-fallback all along while `ctl upgrade`
# hands the listening sockets to a new process. Prints the connection rate per 100 ms around
# the upgrade, the failures (there should be none), whether the connections held across it
# lasted, and how the old process ended.
#
#   Benchmarks/upgrade.sh [--binary PATH] [--seconds S] [--parallel N] [--held N]
#
# The proxy is built with Scripts/build-release.sh unless --binary PATH names one already built.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${TCP_FALLBACK_BINARY:-}
seconds=6
parallel=8
held=16
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --held) held=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--seconds S] [--parallel N] [--held N]" >&2; exit 2 ;;
  esac
done
Scripts/install-deps.sh python3
if [ -z "$binary" ]; then
  Scripts/build-release.sh
  binary=.build/release/tcp-fallback
fi
binary=$(realpath "$binary")
work=$(mktemp -d /tmp/tcp-fallback-upgrade.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${new_pid:-}" ] && kill "$new_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend=$(free_port)
port=$(free_port)
python3 Benchmarks/clients.py echo-server "$backend" & pids+=($!)
"$binary" -control "$work/control.sock" -shutdown-grace 60s -close-on-down=false 127.0.0.1:"$port" 127.0.0.1:"$backend" 2>"$work/proxy.log" &
old_pid=$!
pids+=("$old_pid")
for _ in $(seq 100); do [ -S "$work/control.sock" ] && break; sleep 0.05; done

python3 Benchmarks/clients.py rate "$port" "$seconds" "$parallel" "$held" >"$work/rate.json" &
load=$!
sleep "$(python3 -c "print($seconds / 3)")"
upgrade_at=$(date +%s.%N)
answer=$("$binary" ctl -control "$work/control.sock" upgrade) || { echo "upgrade failed: $answer" >&2; cat "$work/proxy.log" >&2; exit 1; }
upgrade_done=$(date +%s.%N)
new_pid=$(sed -n 's/^PID \([0-9]*\).*/\1/p' <<<"$answer")
wait "$load"
# The held connections closed with the load: the old process exits once they are done.
old_status=0
wait "$old_pid" || old_status=$?
python3 - "$work/rate.json" "$seconds" "$upgrade_at" "$upgrade_done" "$answer" "$old_status" <<'PY'
import json, statistics, sys
result = json.load(open(sys.argv[1]))
seconds, took = float(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3])
buckets = result["buckets"]
around = buckets[int(seconds / 3 * 10) - 5: int(seconds / 3 * 10) + 15]  # 0.5 s before to 1.5 s after
print(f"upgrade: {sys.argv[5]} (ctl answered in {took:.2f} s)")
print(f"connections: {sum(buckets)} in {seconds:g} s, {sum(buckets) / seconds:.0f} per second; failed: {sum(result['failures'].values())} {result['failures'] or ''}")
print(f"per 100 ms: median {statistics.median(buckets):.0f}, lowest {min(buckets)} overall, lowest {min(around)} from 0.5 s before to 1.5 s after the upgrade began")
print("around the upgrade:", " ".join(str(b) for b in around))
print(f"held connections (a byte each way every 100 ms throughout): {result['lasted']} of {result['held']} lasted")
print(f"old process: exit status {sys.argv[6]}")
PY
