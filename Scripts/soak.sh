#!/usr/bin/env bash
# Soak test: many connections through tcp-fallback with random faults, then checks that the
# proxy's descriptors are back at the baseline and its RSS is flat.
#
#   Scripts/soak.sh [--connections N] [--binary PATH] [--concurrency C] [--seed S] [-- soak.py flags]
#
# Defaults: 100000 connections, .build/release/tcp-fallback (built with
# `Scripts/build-release.sh` when missing), concurrency 200, seed 1.
# Flags after `--` go to Scripts/soak.py run: --warmup N (1000), --kill-every N, --restart-delay S
# (0.5), --checkpoints N (10), --weights "kind=w,..." (the mix, e.g. "crstdl=0" or
# "echo=0,crst=100"), --only KIND[,KIND] (e.g. crstdl), --trim auto|on|off, --rss-slack-mib M,
# --trim-slack-mib M (4), --progress S, --conn-timeout S (30), --settle S (5).
#
# Scripts/soak.py starts two backends on 127.0.0.1 (kernel-chosen ports) and the proxy
# (-quiet -probe-delay=200ms -timeout=1s -maxthreads=2), runs a warm-up of 1000 connections,
# takes the proxy's descriptor count (/proc/PID/fd, pipes apart) and VmRSS as the baseline, then runs the
# connections, each of a random kind: verified echoes, half-closes from either side, resets
# from either side, slow readers on either side, a backend that never answers, slow downloads,
# clients that close at once. Backend 0 is SIGKILLed every 10,000 connections (every N/5, at
# least 1,000, in runs under 50,000) and restarted on its port 0.5 s later; connections cut by
# a kill are counted, not failed. Every 10% of the run it waits until no client connection is
# open (a quiet checkpoint) and measures again.
#
# It passes (exit 0) when no connection failed its checks, the proxy's descriptors other than
# pipes at the end equal the baseline, its pipe ends are within its pools' bound (16 empty
# pipes kept per data loop for splice), its RSS at the end is within the allocator's retention of the baseline
# (concurrency x 512 KiB) and, after malloc_trim(0) called in it through gdb, within 4 MiB of
# the baseline's, the proxy is alive, and no checkpoint found a connection left open at a
# backend; otherwise exit 1. Progress goes to stderr, the summary to stdout; the logs of a
# failed run are kept (failures.txt lists every failed connection).
set -euo pipefail
cd "$(dirname "$0")/.."

connections=100000
binary=
concurrency=200
seed=1
extra=()
usage() { echo "usage: $0 [--connections N] [--binary PATH] [--concurrency C] [--seed S] [-- soak.py flags]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) [ $# -ge 2 ] || usage; connections=$2; shift 2 ;;
    --connections=*) connections=${1#*=}; shift ;;
    --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --concurrency) [ $# -ge 2 ] || usage; concurrency=$2; shift 2 ;;
    --concurrency=*) concurrency=${1#*=}; shift ;;
    --seed) [ $# -ge 2 ] || usage; seed=$2; shift 2 ;;
    --seed=*) seed=${1#*=}; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) usage ;;
  esac
done
for value in "$connections" "$concurrency" "$seed"; do
  [[ $value =~ ^[0-9]+$ ]] || usage
done

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "soak: needs python3 >= 3.11 (asyncio.timeout)" >&2; exit 1; }

if [ -z "$binary" ]; then
  binary=.build/release/tcp-fallback
  if [ ! -x "$binary" ]; then
    Scripts/build-release.sh
  fi
fi
[ -x "$binary" ] || { echo "soak: $binary is not an executable" >&2; exit 1; }
# gdb calls malloc_trim(0) in the proxy at the checkpoints, for the RSS of memory in use.
command -v gdb >/dev/null || Scripts/install-deps.sh gdb ||
  echo "soak: without gdb, RSS is only checked raw (within the allocator's retention)" >&2
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

# Descriptors: the proxy holds two per open connection, the client one, each backend one,
# all inherited from this shell's limit. Raise the soft limit towards the hard one.
need=$((concurrency * 4 + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then ulimit -n "$need"; else ulimit -n "$hard"; fi
  [ "$(ulimit -n)" -ge $((concurrency * 4 + 64)) ] ||
    { echo "soak: descriptor limit $(ulimit -n) is too low for concurrency $concurrency" >&2; exit 1; }
fi

# Over a thousand connections a second through loopback leave more sockets in TIME_WAIT
# than there are ephemeral ports; Linux reuses them for new outgoing connections only with
# net.ipv4.tcp_tw_reuse 1, or 2 (loopback only, the default).
if [ "$(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo 2)" = 0 ]; then
  echo "soak: net.ipv4.tcp_tw_reuse is 0: connects may fail with EADDRNOTAVAIL; sysctl -w net.ipv4.tcp_tw_reuse=2" >&2
fi

work=$(mktemp -d /tmp/tcp-fallback-soak.XXXXXX)
runner=
# soak.py keeps $work/pids up to date with the processes it started and has not reaped yet
# (proxy, backends); whatever is listed when this script ends is killed, by pid.
cleanup() {
  local pid
  if [ -n "$runner" ]; then kill -9 "$runner" 2>/dev/null || true; wait "$runner" 2>/dev/null || true; fi
  if [ -f "$work/pids" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done <"$work/pids"
  fi
  if [ "${keep:-0}" = 1 ]; then echo "soak: logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s)
rc=0
python3 "$PWD/Scripts/soak.py" run --binary "$binary" --workdir "$work" --connections "$connections" \
  --concurrency "$concurrency" --seed "$seed" ${extra[@]+"${extra[@]}"} &
runner=$!
wait "$runner" || rc=$?
runner=
echo "soak: finished in $(( $(date +%s) - start )) s, exit status $rc" >&2
# Keep the logs of a failed run (proxy.log, backend*.log, samples.tsv) for a look.
[ "$rc" = 0 ] || keep=1
exit "$rc"
