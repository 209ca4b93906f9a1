#!/usr/bin/env bash
# Runs tcp-fallback (release build) and HAProxy (tcp mode) side by side on 127.0.0.1 and
# prints, for each, what a relay costs and delivers, with the ratio tcp-fallback / HAProxy:
#
#   Benchmarks/run.sh [--rounds N] [--seconds S] [--maxthreads N] [--mode unpinned|pinned|both]
#                     [--binary PATH] [--idle N] [--only MEASURES] [--balance MODE]
#                     [-- TCP-FALLBACK FLAGS...]
#
#   short connections   wrk, "Connection: close" (one TCP connection per request): connections
#                       per second, and the proxy's CPU time per connection
#   keep-alive          wrk, 16 keep-alive connections: requests per second, CPU per request,
#                       latency p50 and p99
#   long streams        iperf3, 4 parallel streams: Gbit/s, and proxy CPU seconds per GB
#   idle connections    N (default 10000) connections held open through a fresh proxy, each
#                       having carried one byte both ways: the proxy's RSS at start, and its
#                       RSS growth per held connection
#   system calls        strace -c on the proxy over 2000 short connections: calls per connection,
#                       in total and for the most frequent calls
#
# CPU time is the proxy's utime + stime from /proc/PID/stat over the run (utime alone is printed
# too: what the proxy's own code costs, the rest is the kernel's TCP work for it); on a small machine
# shared with the load generators and backends it varies less from run to run than the rates.
#
# Both proxies get the same number of threads: tcp-fallback runs one data loop per CPU it may
# use, capped by -maxthreads (default 4), so loops = min(maxthreads, CPUs for the proxy), passed
# to it as -maxthreads and to HAProxy as nbthread. Modes (default: both, one table each):
#   unpinned  everything may run on every CPU, as in production
#   pinned    each proxy under test runs on CPU 0 alone (taskset -c 0, so 1 loop/thread); load
#             generators and backends share CPU 1: the proxy's work is not mixed with theirs
#
# --only takes a comma-separated subset of: short,keepalive,streams,idle,syscalls (default: all).
# Flags after -- are passed to tcp-fallback (e.g. -- -splice=false).
#
# Each measurement runs N rounds (default 3), alternating the proxies; the median is reported.
# Both proxies front one backend as primary, with a dead port as backup (a failover set-up).
# With --balance roundrobin|leastconn|first, the short-connection and keep-alive measures go
# through 3 backends instead (three nginx servers), spread by tcp-fallback's -balance MODE and
# HAProxy's "balance MODE" (first: HAProxy's "balance first"); each backend counts its
# requests, and the report adds how far the busiest backend is from an even third.
# The proxy is built with Scripts/build-release.sh unless --binary PATH
# (or TCP_FALLBACK_BINARY=PATH) names one already built.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
seconds=5
maxthreads=4
mode=both
binary=${TCP_FALLBACK_BINARY:-}
idle_wanted=10000
short_count=2000    # connections made while strace counts system calls
only=short,keepalive,streams,idle,syscalls
balance=
extra_flags=()
usage() { echo "usage: $0 [--rounds N] [--seconds S] [--maxthreads N] [--mode unpinned|pinned|both] [--binary PATH] [--idle N] [--only MEASURES] [--balance MODE] [-- FLAGS...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --maxthreads) maxthreads=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --idle) idle_wanted=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --balance) balance=$2; shift 2 ;;
    --) shift; extra_flags=("$@"); break ;;
    *) usage ;;
  esac
done
case "$balance" in
  ""|first|roundrobin|leastconn) ;;
  *) usage ;;
esac
case "$mode" in
  unpinned|pinned) modes=("$mode") ;;
  both) modes=(unpinned pinned) ;;
  *) usage ;;
esac

packages=(haproxy wrk iperf3 nginx-light python3 strace util-linux iproute2)
if [ -z "$binary" ]; then
  Scripts/install-deps.sh "${packages[@]}"
  Scripts/build-release.sh
  binary=.build/release/tcp-fallback
else
  Scripts/install-deps.sh "${packages[@]}"
fi
[ -x "$binary" ] || { echo "$binary: not an executable" >&2; exit 1; }
if [ "$mode" != unpinned ] && ! taskset -c 0,1 true 2>/dev/null; then
  echo "pinned mode needs CPUs 0 and 1; run with --mode unpinned" >&2; exit 1
fi

# Idle connections need descriptors: two per relayed connection in the proxy. Take up to
# 65536 (more than the hard limit needs privilege a container may lack), hold fewer
# connections when that is not enough, and give HAProxy a maxconn that fits: it refuses to
# start when its maxconn needs more descriptors than it may open.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nofile=$(ulimit -n)
ha_maxconn=$(( (nofile - 100) / 2 ))
[ "$ha_maxconn" -gt 30000 ] && ha_maxconn=30000
idle=$idle_wanted
if [ "$idle" -gt $((ha_maxconn - 100)) ]; then
  idle=$(( (ha_maxconn - 100) / 100 * 100 ))
  echo "only $nofile descriptors per process: holding $idle idle connections, not $idle_wanted" >&2
fi

# The rates need an otherwise idle machine; CPU per unit, RSS and system calls matter less.
load_before=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$load_before" 'BEGIN {exit !(l > 0.5)}' &&
  echo "load average $load_before before the run: something else is running, rates will be noisy" >&2

work=$(mktemp -d /tmp/tcp-fallback-bench.XXXXXX)
pids=()          # everything started and not yet stopped
started=""       # the PID of the last spawn
strace_pid=""
spawn() { "$@" & started=$!; pids+=("$started"); }
running() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
stop() {  # PID...: SIGTERM, SIGKILL what is left after 3 s (tcp-fallback lets open connections finish)
  local pid keep=() alive
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=0
    for pid in "$@"; do running "$pid" && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do [[ " $* " == *" $pid "* ]] || keep+=("$pid"); done
  pids=("${keep[@]}")
}
detach_strace() {  # SIGTERM makes strace detach from the proxy (left running) and write its counts
  [ -n "$strace_pid" ] || return 0
  kill -TERM "$strace_pid" 2>/dev/null || true
  for _ in $(seq 100); do running "$strace_pid" || break; sleep 0.1; done
  stop "$strace_pid"
  strace_pid=""
}
cleanup() {
  detach_strace
  [ ${#pids[@]} -eq 0 ] || stop "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() {  # until PORT listens; ss rather than a test connection, which would be load
  for _ in $(seq 200); do
    [ -n "$(ss -Htln "sport = :$1")" ] && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; exit 1
}
available_cpus() {  # as tcp-fallback counts them: its affinity mask, capped by the cgroup's cpu.max quota
  local cpus group quota period
  cpus=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')
  group=$(sed -n 's/^0:://p' /proc/self/cgroup)
  if read -r quota period 2>/dev/null <"/sys/fs/cgroup${group%/}/cpu.max" && [ "$quota" != max ]; then
    quota=$(( (quota + period - 1) / period ))
    [ "$quota" -lt "$cpus" ] && cpus=$quota
  fi
  echo "$cpus"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }  # user space only; the rest is the kernel's
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# --- Per mode: CPU placement, backends, proxies ---

haproxy_config() {  # FILE NAME:PORT:BACKEND_PORT...: the same failover set-up as tcp-fallback's
  local file=$1 name port backend
  shift
  cat > "$file" <<CONF
global
  nbthread $loops
  maxconn $ha_maxconn
defaults
  mode tcp
  maxconn $ha_maxconn
  timeout connect 5s
  timeout client 1m
  timeout server 1m
CONF
  for listener in "$@"; do
    IFS=: read -r name port backend <<<"$listener"
    if [ "$backend" = balanced ]; then
      printf 'listen %s\n  bind 127.0.0.1:%s\n  balance %s\n' "$name" "$port" "$balance" >> "$file"
      for index in 0 1 2; do
        printf '  server s%s 127.0.0.1:%s check inter 2s\n' "$index" "${balanced_ports[$index]}" >> "$file"
      done
      continue
    fi
    cat >> "$file" <<CONF
listen $name
  bind 127.0.0.1:$port
  server primary 127.0.0.1:$backend check inter 2s
  server replica 127.0.0.1:$dead_port check inter 2s backup
CONF
  done
}
start_tcp_fallback() {  # PORT BACKEND_PORT|balanced; sets started
  local backends=(127.0.0.1:"$2" 127.0.0.1:"$dead_port")
  if [ "$2" = balanced ]; then
    backends=()
    for port in "${balanced_ports[@]}"; do backends+=(127.0.0.1:"$port"); done
    backends=(-balance "$balance" "${backends[@]}")
  fi
  spawn "${proxy_cpu[@]}" "$binary" -quiet -maxthreads="$loops" "${extra_flags[@]}" 127.0.0.1:"$1" "${backends[@]}"
}
start_haproxy() {  # CONFIG; sets started
  spawn "${proxy_cpu[@]}" haproxy -q -f "$1"
}

start_mode() {  # unpinned|pinned: sets proxy_cpu, load_cpu, loops; starts backends and proxies
  local cpus
  if [ "$1" = pinned ]; then
    proxy_cpu=(taskset -c 0); load_cpu=(taskset -c 1); cpus=1
  else
    proxy_cpu=(); load_cpu=(); cpus=$(available_cpus)
  fi
  loops=$(( maxthreads < cpus ? maxthreads : cpus ))
  mode_pids=()
  iperf_port=$(free_port); http_port=$(free_port); echo_port=$(free_port); dead_port=$(free_port)
  tf_iperf=$(free_port); tf_http=$(free_port); ha_iperf=$(free_port); ha_http=$(free_port)

  # Backends, with the load generators: an iperf3 server, nginx answering a small body, and
  # an echo server that holds idle connections.
  spawn "${load_cpu[@]}" iperf3 -s -p "$iperf_port" -B 127.0.0.1 >/dev/null 2>&1; mode_pids+=("$started")
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
CONF
  balanced_ports=()
  if [ -n "$balance" ]; then
    # Three backends for --balance, each counting its requests in a log of its own.
    echo '  log_format count "x";' >> "$work/nginx/nginx.conf"
    for index in 0 1 2; do
      balanced_ports+=("$(free_port)")
      echo "  server { listen 127.0.0.1:${balanced_ports[$index]}; access_log $work/nginx/backend$index.log count buffer=64k flush=100ms; location / { return 200 \"hello\\n\"; } }" >> "$work/nginx/nginx.conf"
    done
  fi
  echo "}" >> "$work/nginx/nginx.conf"
  spawn "${load_cpu[@]}" nginx -c "$work/nginx/nginx.conf" -g 'daemon off;'; mode_pids+=("$started")
  spawn "${load_cpu[@]}" python3 Benchmarks/clients.py echo-server "$echo_port"; mode_pids+=("$started")

  # The proxies for the load tests; the idle test starts fresh ones of its own.
  start_tcp_fallback "$tf_iperf" "$iperf_port"; tf_iperf_pid=$started; mode_pids+=("$started")
  http_backend=$http_port
  if [ -n "$balance" ]; then http_backend=balanced; fi
  start_tcp_fallback "$tf_http" "$http_backend"; tf_http_pid=$started; mode_pids+=("$started")
  haproxy_config "$work/haproxy.cfg" "iperf:$ha_iperf:$iperf_port" "http:$ha_http:$http_backend"
  start_haproxy "$work/haproxy.cfg"; ha_pid=$started; mode_pids+=("$started")
  for port in $iperf_port $http_port $echo_port $tf_iperf $tf_http $ha_iperf $ha_http "${balanced_ports[@]}"; do wait_listen "$port"; done
  sleep 0.5
}

# --- Measures: each adds one value per round to results[mode,who,key] ---

declare -A results
add() {  # KEY VALUE
  [[ "$2" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || { echo "$mode $who $1: not a number: '$2'" >&2; exit 1; }
  results[$mode,$who,$1]+="$2 "
}

backend_counts() {  # requests each of the --balance backends logged so far
  sleep 0.3  # nginx flushes its buffered log lines every 100 ms
  for index in 0 1 2; do wc -l < "$work/nginx/backend$index.log" 2>/dev/null || echo 0; done | tr '\n' ' '
}
spread() {  # BEFORE AFTER (counts): how far the busiest backend is from an even third, in points of %
  python3 -c '
import sys
before, after = [int(v) for v in sys.argv[1].split()], [int(v) for v in sys.argv[2].split()]
served = [a - b for a, b in zip(after, before)]
total = sum(served)
print("%.1f" % (max(served) * 100.0 / total - 100.0 / 3 if total else 0))
' "$1" "$2"
}

short_connections() {  # PORT PID: new connections per second (one request each), CPU µs per connection (all, user space)
  local before after user_before user_after output rate cpu user counts
  if [ -n "$balance" ]; then counts=$(backend_counts); fi
  before=$(cpu_ticks "$2"); user_before=$(user_ticks "$2")
  output=$("${load_cpu[@]}" wrk -t2 -c64 -d"${seconds}s" -H "Connection: close" "http://127.0.0.1:$1/" 2>/dev/null)
  after=$(cpu_ticks "$2"); user_after=$(user_ticks "$2")
  if [ -n "$balance" ]; then add cps_spread "$(spread "$counts" "$(backend_counts)")"; fi
  read -r rate cpu user <<<"$(awk -v ticks=$((after - before)) -v uticks=$((user_after - user_before)) -v hz="$hz" '
    /requests in/ {n = $1} /^Requests\/sec/ {rate = $2}
    END {if (n) printf "%.0f %.1f %.1f\n", rate, ticks / hz * 1e6 / n, uticks / hz * 1e6 / n}' <<<"$output")"
  add cps "$rate"; add cps_cpu "$cpu"; add cps_user "$user"
}

keep_alive() {  # PORT PID: requests per second over 16 keep-alive connections, CPU µs per request, p50, p99 (µs)
  local before after user_before user_after output rps cpu user p50 p99 counts
  if [ -n "$balance" ]; then counts=$(backend_counts); fi
  before=$(cpu_ticks "$2"); user_before=$(user_ticks "$2")
  output=$("${load_cpu[@]}" wrk -t2 -c16 -d"${seconds}s" --latency "http://127.0.0.1:$1/" 2>/dev/null)
  after=$(cpu_ticks "$2"); user_after=$(user_ticks "$2")
  if [ -n "$balance" ]; then add rps_spread "$(spread "$counts" "$(backend_counts)")"; fi
  read -r rps cpu user p50 p99 <<<"$(python3 -c '
import re, sys
text, ticks, uticks, hz = sys.stdin.read(), int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def us(v, u): return float(v) * {"us": 1, "ms": 1000, "s": 1e6}[u]
found = {p: us(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
requests = int(re.search(r"^\s*(\d+) requests in", text, re.M).group(1))
rate = float(re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M).group(1))
print("%.0f %.1f %.1f %.0f %.0f" % (rate, ticks / hz * 1e6 / requests, uticks / hz * 1e6 / requests, found["50"], found["99"]))
' $((after - before)) $((user_after - user_before)) "$hz" <<<"$output")"
  add rps "$rps"; add rps_cpu "$cpu"; add rps_user "$user"; add p50 "$p50"; add p99 "$p99"
}

long_streams() {  # PORT PID: Gbit/s received over 4 parallel streams, proxy CPU seconds per GB
  local before after gbps cpu
  before=$(cpu_ticks "$2")
  "${load_cpu[@]}" iperf3 -c 127.0.0.1 -p "$1" -P 4 -t "$seconds" -J >"$work/iperf.json" 2>/dev/null || true
  after=$(cpu_ticks "$2")
  read -r gbps cpu <<<"$(python3 -c '
import json, sys
received = json.load(open(sys.argv[1]))["end"]["sum_received"]
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
print("%.2f %.3f" % (received["bits_per_second"] / 1e9, ticks / hz / (received["bytes"] / 1e9)))
' "$work/iperf.json" $((after - before)) "$hz")"
  add gbps "$gbps"; add gb_cpu "$cpu"
}

idle_connections() {  # a fresh proxy: its RSS at start (KiB), and RSS growth per held connection (bytes)
  local port pid before after client held
  port=$(free_port)
  if [ "$who" = tf ]; then
    start_tcp_fallback "$port" "$echo_port"
  else
    haproxy_config "$work/idle.cfg" "idle:$port:$echo_port"
    start_haproxy "$work/idle.cfg"
  fi
  pid=$started
  wait_listen "$port"
  sleep 0.5
  before=$(rss_kib "$pid")
  spawn "${load_cpu[@]}" python3 Benchmarks/clients.py hold "$port" "$idle" >"$work/hold.out"
  client=$started
  until grep -q '^ready' "$work/hold.out"; do
    running "$client" || { echo "$mode $who: the idle clients failed" >&2; exit 1; }
    sleep 0.1
  done
  sleep 2  # held, idle: let the proxy finish whatever it defers
  after=$(rss_kib "$pid")
  # Each connection echoed a byte, so it reached the backend; count them there too.
  held=$(ss -Htn state established "( dport = :$echo_port )" | wc -l)
  [ "$held" -ge "$idle" ] || echo "$mode $who: only $held of $idle connections reached the backend" >&2
  stop "$client"
  stop "$pid"
  add rss_start "$before"
  add rss_conn $(( (after - before) * 1024 / idle ))
}

system_calls() {  # PORT PID: system calls per short connection, over $short_count connections
  local threads completed
  threads=$(ls "/proc/$2/task" | wc -l)
  spawn "${load_cpu[@]}" strace -f -c -o "$work/strace.out" -p "$2" 2>"$work/strace.err"
  strace_pid=$started
  # strace says "Process N attached" for each thread; count only once all are.
  for _ in $(seq 100); do
    [ "$(grep -c attached "$work/strace.err")" -ge "$threads" ] && break
    sleep 0.05
  done
  sleep 0.2
  completed=$("${load_cpu[@]}" python3 Benchmarks/clients.py short "$1" "$short_count" 8)
  detach_strace
  [ "$completed" -eq "$short_count" ] || echo "$mode $who: $completed of $short_count short connections succeeded" >&2
  # strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall; the last is "total".
  awk -v mode="$mode" -v who="$who" -v n="$completed" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 {print mode, who, $NF, $4, n}' "$work/strace.out" >>"$work/syscalls"
  add syscalls "$(awk '$NF == "total" {printf "%.1f", $4 / '"$completed"'}' "$work/strace.out")"
}

# --- Run ---

wanted() { [[ ",$only," == *",$1,"* ]]; }

declare -A mode_loops
for mode in "${modes[@]}"; do
  start_mode "$mode"
  mode_loops[$mode]=$loops
  for round in $(seq "$rounds"); do
    echo "$mode: round $round of $rounds ($loops loops/threads)..." >&2
    for who in tf ha; do
      if [ $who = tf ]; then ip=$tf_iperf; hp=$tf_http; ipid=$tf_iperf_pid; hpid=$tf_http_pid
      else ip=$ha_iperf; hp=$ha_http; ipid=$ha_pid; hpid=$ha_pid; fi
      wanted short && short_connections "$hp" "$hpid"
      wanted keepalive && keep_alive "$hp" "$hpid"
      wanted streams && long_streams "$ip" "$ipid"
      wanted idle && idle_connections
      wanted syscalls && system_calls "$hp" "$hpid"
    done
  done
  stop "${mode_pids[@]}"
done

# --- Report ---

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
value() {  # MODE WHO KEY: the median, or nothing when not measured
  local values=${results[$1,$2,$3]:-}
  [ -n "$values" ] || return 0
  tr ' ' '\n' <<<"$values" | grep -v '^$' | median
}
ratio() { python3 -c "print('%.2f' % ($1 / $2) if $2 else '-')"; }
echo
echo "tcp-fallback $("$binary" --version) vs $(haproxy -v | head -1 | awk '{print "HAProxy", $3}'), $(nproc) cores," \
  "loops (tcp-fallback -maxthreads, HAProxy nbthread):$(for m in "${modes[@]}"; do printf ' %s %s' "$m" "${mode_loops[$m]}"; done)," \
  "median of $rounds rounds of ${seconds}s, load average before $load_before"
[ -z "$balance" ] || echo "short connections and keep-alive through 3 backends, tcp-fallback -balance $balance, HAProxy balance $balance"
for mode in "${modes[@]}"; do
  echo
  if [ "$mode" = pinned ]; then
    echo "pinned: each proxy on CPU 0 alone (taskset -c 0), load generators and backends on CPU 1"
  else
    echo "unpinned: proxies, load generators and backends on any CPU"
  fi
  printf '%-40s %14s %14s %8s\n' "measure" "tcp-fallback" "HAProxy" "ratio"
  for row in \
    "cps:short connections per second:higher" \
    "cps_cpu:CPU per short connection (us):lower" \
    "cps_user:  of which in user space (us):lower" \
    "cps_spread:  busiest backend above a third (points of %):lower" \
    "rps:keep-alive requests per second:higher" \
    "rps_cpu:CPU per keep-alive request (us):lower" \
    "rps_user:  of which in user space (us):lower" \
    "rps_spread:  busiest backend above a third (points of %):lower" \
    "p50:keep-alive latency p50 (us):lower" \
    "p99:keep-alive latency p99 (us):lower" \
    "gbps:long streams, 4 streams (Gbit/s):higher" \
    "gb_cpu:CPU per GB of long streams (s):lower" \
    "rss_start:RSS at start (KiB):lower" \
    "rss_conn:RSS per idle connection (bytes, $idle held):lower" \
    "syscalls:system calls per short connection:lower"; do
    IFS=: read -r key label better <<<"$row"
    tf=$(value "$mode" tf "$key"); ha=$(value "$mode" ha "$key")
    [ -n "$tf" ] || continue  # not measured (--only)
    printf '%-40s %14s %14s %8s  (%s is better)\n' "$label" "$tf" "$ha" "$(ratio "$tf" "$ha")" "$better"
  done
  wanted syscalls || continue
  echo "most frequent system calls per short connection (mean of $rounds rounds of $short_count connections):"
  for who in tf ha; do
    awk -v mode="$mode" -v who="$who" '
      $1 == mode && $2 == who && $3 != "total" {calls[$3] += $4} $1 == mode && $2 == who && $3 == "total" {n += $5}
      END {for (c in calls) printf "%s %.2f\n", c, calls[c] / n}' "$work/syscalls" |
      sort -k2,2nr | head -8 | awk -v name="$([ $who = tf ] && echo tcp-fallback || echo HAProxy)" '
        {line = line sprintf("%s%s %s", NR > 1 ? ", " : "", $1, $2)} END {printf "  %-14s %s\n", name ":", line}'
  done
done
