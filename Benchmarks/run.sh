#!/usr/bin/env bash
# Runs tcp-fallback (release build) and HAProxy (tcp mode) side by side on 127.0.0.1 and
# prints, for each, throughput of long streams, connections per second of short
# connections, and request/response latency, with the ratio tcp-fallback / HAProxy.
#
#   Benchmarks/run.sh [--rounds N] [--seconds S] [--maxthreads N]
#
# Each measurement runs N rounds (default 3), alternating the proxies, and the median is
# reported. Load: iperf3 (throughput, 4 streams), wrk with "Connection: close" (one TCP
# connection per request) and wrk with keep-alive at a modest concurrency (latency), all
# against one backend (iperf3 server / nginx) behind a primary + backup configuration.
# The proxy's CPU time per short connection is printed too: on a 2-core machine shared with
# the load generator and the backend it varies less from run to run than the rate.
#
# Short connections also run through two bare relays, to tell what costs what:
# Benchmarks/NIOFloor, the cheapest correct SwiftNIO relay (swift-nio's example glue
# handlers, nothing else), the floor for a data path made of two NIO channels; and
# Benchmarks/EpollFloor, a Swift relay written straight on epoll as HAProxy is.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
seconds=5
maxthreads=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --maxthreads) maxthreads=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--seconds S] [--maxthreads N]" >&2; exit 2 ;;
  esac
done

Scripts/install-deps.sh libsystemd-dev pkg-config haproxy wrk iperf3 nginx-light python3
swift build -c release --product tcp-fallback >&2
swift build -c release --package-path Benchmarks/NIOFloor >&2
swift build -c release --package-path Benchmarks/EpollFloor >&2
binary=.build/release/tcp-fallback
floor_binary=Benchmarks/NIOFloor/.build/release/nio-floor
epoll_binary=Benchmarks/EpollFloor/.build/release/epoll-floor

work=$(mktemp -d /tmp/tcp-fallback-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 did not open" >&2; exit 1; }

iperf_port=$(free_port); http_port=$(free_port); dead_port=$(free_port)
tf_iperf=$(free_port); tf_http=$(free_port); ha_iperf=$(free_port); ha_http=$(free_port); floor_http=$(free_port); epoll_http=$(free_port)

# Backends: an iperf3 server and nginx answering a small body.
iperf3 -s -p "$iperf_port" -B 127.0.0.1 >/dev/null 2>&1 & pids+=($!)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$http_port; location / { return 200 "hello\n"; } }
}
CONF
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' & pids+=($!)

# The same failover set-up for both proxies: the backend first, a dead port as fallback.
threads_flag=()
[ -n "$maxthreads" ] && threads_flag=(-maxthreads="$maxthreads")
"$binary" -quiet "${threads_flag[@]}" 127.0.0.1:"$tf_iperf" 127.0.0.1:"$iperf_port" 127.0.0.1:"$dead_port" & pids+=($!)
"$binary" -quiet "${threads_flag[@]}" 127.0.0.1:"$tf_http" 127.0.0.1:"$http_port" 127.0.0.1:"$dead_port" & pids+=($!)
tf_pid=$!
"$floor_binary" "$floor_http" "$http_port" "${maxthreads:-4}" & pids+=($!)
floor_pid=$!
"$epoll_binary" "$epoll_http" "$http_port" "${maxthreads:-4}" & pids+=($!)
epoll_pid=$!
cat > "$work/haproxy.cfg" <<CONF
global
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
listen iperf
  bind 127.0.0.1:$ha_iperf
  server primary 127.0.0.1:$iperf_port check inter 2s
  server replica 127.0.0.1:$dead_port check inter 2s backup
listen http
  bind 127.0.0.1:$ha_http
  server primary 127.0.0.1:$http_port check inter 2s
  server replica 127.0.0.1:$dead_port check inter 2s backup
CONF
haproxy -q -f "$work/haproxy.cfg" & pids+=($!)
ha_pid=$!
for port in $iperf_port $http_port $tf_iperf $tf_http $ha_iperf $ha_http $floor_http $epoll_http; do wait_port "$port"; done
sleep 0.5

throughput() {  # Gbit/s received over 4 parallel streams
  iperf3 -c 127.0.0.1 -p "$1" -P 4 -t "$seconds" -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
connections() {  # new connections per second (one request each), and the proxy's CPU microseconds per connection
  local before after output
  before=$(cpu_ticks "$2")
  output=$(wrk -t2 -c64 -d"${seconds}s" -H "Connection: close" "http://127.0.0.1:$1/" 2>/dev/null)
  after=$(cpu_ticks "$2")
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1} /^Requests\/sec/ {rate = $2}
    END {printf "%.0f %.0f\n", rate, ticks / hz * 1e6 / n}' <<<"$output"
}
latency() {  # p50 and p99 in microseconds, keep-alive, 16 connections
  wrk -t2 -c16 -d"${seconds}s" --latency "http://127.0.0.1:$1/" 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
def us(v, u): return float(v) * {"us": 1, "ms": 1000, "s": 1e6}[u]
found = {p: us(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
print("%.0f %.0f" % (found["50"], found["99"]))'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A results
for round in $(seq "$rounds"); do
  echo "round $round of $rounds..." >&2
  for who in tf ha; do
    if [ $who = tf ]; then ip=$tf_iperf; hp=$tf_http; pid=$tf_pid; else ip=$ha_iperf; hp=$ha_http; pid=$ha_pid; fi
    results[$who,gbps]+="$(throughput "$ip") "
    read -r rate cpu <<<"$(connections "$hp" "$pid")"
    results[$who,cps]+="$rate "
    results[$who,cpu]+="$cpu "
    read -r p50 p99 <<<"$(latency "$hp")"
    results[$who,p50]+="$p50 "
    results[$who,p99]+="$p99 "
  done
  read -r rate cpu <<<"$(connections "$floor_http" "$floor_pid")"
  results[floor,cps]+="$rate "
  results[floor,cpu]+="$cpu "
  read -r rate cpu <<<"$(connections "$epoll_http" "$epoll_pid")"
  results[epoll,cps]+="$rate "
  results[epoll,cpu]+="$cpu "
done

value() { tr ' ' '\n' <<<"${results[$1,$2]}" | grep -v '^$' | median; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "tcp-fallback $("$binary" --version) vs $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $(nproc) cores, median of $rounds rounds of ${seconds}s"
printf '%-34s %14s %14s %10s\n' "measure" "tcp-fallback" "HAProxy" "ratio"
for row in "gbps:throughput, 4 streams (Gbit/s):higher" "cps:connections per second:higher" "cpu:CPU per connection (us):lower" "p50:latency p50 (us):lower" "p99:latency p99 (us):lower"; do
  IFS=: read -r key label better <<<"$row"
  tf=$(value tf "$key"); ha=$(value ha "$key")
  printf '%-34s %14s %14s %10s  (%s is better)\n' "$label" "$tf" "$ha" "$(ratio "$tf" "$ha")" "$better"
done
echo
echo "Bare relays on the same short connections (Benchmarks/NIOFloor, Benchmarks/EpollFloor):"
printf '%-34s %14s %14s %14s\n' "measure" "NIO floor" "epoll floor" "HAProxy"
for row in "cps:connections per second" "cpu:CPU per connection (us)"; do
  IFS=: read -r key label <<<"$row"
  floor=$(value floor "$key"); epoll=$(value epoll "$key"); ha=$(value ha "$key")
  printf '%-34s %14s %14s %14s\n' "$label" "$floor" "$epoll" "$ha"
  printf '%-34s %14s %14s\n' "  ratio to HAProxy" "$(ratio "$floor" "$ha")" "$(ratio "$epoll" "$ha")"
done
